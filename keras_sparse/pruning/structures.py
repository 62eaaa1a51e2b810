"""The pruning structures: what a unit is, how important it is, and which masks remove it.

Each structure finds its targets in a model, prunes a target to a sparsity (monotonically:
a removed unit never returns, since its weights are zero), and reports the sparsity it reached.
`attention_blocks` lives in `attention_blocks.py`; the others are here.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_sparse.pruning import selection
from keras_sparse.pruning.composites import neuron_pairs
from keras_sparse.pruning.masks import ANY_ROLE
from keras_sparse.pruning.sites import (
    apply_mask,
    attach_mask,
    attached_mask,
    is_attention,
    is_dense,
    model_layers,
    projections,
)


def numpy(variable) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(variable))


def _head_axis(projection, weight: str) -> int | None:
    """Heads sit on axis 1 of a projection's kernel (d, H, dim) and axis 0 of its bias (H, dim); the output
    projection's kernel is (H, dim, d), and its bias (d,) has no heads."""
    if projection.name == "attention_output":
        return 0 if weight == "kernel" else None
    return 1 if weight == "kernel" else 0


class Heads:
    """Whole attention heads of `MultiHeadAttention` layers (`SparseMultiHeadAttention` included).

    Importance of head h: `||W_value[h]|| * ||W_output[h]||` (Frobenius norms), the largest gain
    from the layer's value input to its output through that head. At least one head stays.
    """

    name = "heads"

    def targets(self, model, accept):
        return [layer for layer in model_layers(model) if is_attention(layer) and accept(layer)]

    def kept(self, layer) -> np.ndarray:
        mask = attached_mask(layer, "kernel", self.name)
        kept = None if mask is None else mask.kept("query")
        return np.ones(layer.num_heads, dtype=bool) if kept is None else kept

    def importance(self, layer) -> np.ndarray:
        value, output = numpy(layer._value_dense.kernel), numpy(layer._output_dense.kernel)
        per_head = lambda w, axis: np.sqrt((np.moveaxis(w, axis, 0) ** 2).reshape(w.shape[axis], -1).sum(1))  # noqa: E731
        return per_head(value, 1) * per_head(output, 0)

    def prune(self, layer, sparsity: float) -> None:
        alive = self.kept(layer)
        kept = selection.keep_largest(
            self.importance(layer), selection.keep_count(layer.num_heads, sparsity), alive=alive
        )
        self.set_kept(layer, kept)

    def set_kept(self, layer, kept: np.ndarray) -> None:
        for weight in ("kernel", "bias"):
            mask = attach_mask(layer, weight, self.name)
            for projection in projections(layer):
                axis = _head_axis(projection, weight)
                if axis is not None and getattr(projection, weight, None) is not None:
                    mask.set_mask(projection.name, kept, axis=axis)
            apply_mask(layer, weight)

    def sparsity(self, layer) -> float:
        return 1.0 - self.kept(layer).mean()


ELEMENTWISE = (keras.layers.Activation, keras.layers.Dropout, keras.layers.ReLU)


def _following_dense(layer):
    """`(dense, between)`: the Dense that only `layer`'s output reaches through elementwise layers, or None."""
    current, between = layer, []
    while len(current._outbound_nodes) == 1:
        consumer = current._outbound_nodes[0].operation
        if isinstance(consumer, keras.layers.Dense):
            return consumer, tuple(between)
        if not isinstance(consumer, ELEMENTWISE):
            return None
        between.append(consumer)
        current = consumer
    return None


class Neurons:
    """Hidden units of feed-forward pairs: a Dense whose outputs feed only another Dense.

    Pairs `(first, second, between)` are found in the graphs of functional and Sequential models,
    nested ones included (`between`: the Activation / Dropout layers in between), inside the Transformer
    blocks `keras_sparse.pruning.composites` knows (ours and keras-hub's), and inside custom layers that
    list theirs with a `prunable_neuron_pairs()` method returning `(first, second)` pairs. A block's pair is
    pruned if its first Dense or the block itself is accepted by `layers=`. Importance of
    unit j: `||W_in[:, j]|| * ||W_out[j, :]||`. The first Dense's column and bias are masked;
    `finalize` removes them and folds `activation(0) * W_out[j]` (zero for relu, gelu, tanh)
    into the second Dense's bias, so outputs do not change.
    """

    name = "neurons"

    def targets(self, model, accept):
        pairs = []
        for layer in model_layers(model):
            inner = neuron_pairs(layer)
            if inner:
                pairs.extend((first, second, ()) for first, second in inner if accept(layer) or accept(first))
            elif isinstance(layer, keras.layers.Dense) and accept(layer) and layer._outbound_nodes:
                following = _following_dense(layer)
                if following is not None:
                    pairs.append((layer, *following))
        unique = {id(pair[0]): pair for pair in pairs}  # a custom layer's pair may also be in the graph
        return list(unique.values())

    def kept(self, pair) -> np.ndarray:
        mask = attached_mask(pair[0], "kernel", self.name)
        return np.ones(pair[0].units, dtype=bool) if mask is None else mask.kept()

    def prune(self, pair, sparsity: float) -> None:
        first, second, _ = pair
        norms_in = np.sqrt((numpy(first.kernel) ** 2).sum(axis=0))
        norms_out = np.sqrt((numpy(second.kernel) ** 2).sum(axis=1))
        kept = selection.keep_largest(
            norms_in * norms_out, selection.keep_count(first.units, sparsity), alive=self.kept(pair)
        )
        self.set_kept(pair, kept)

    def set_kept(self, pair, kept: np.ndarray) -> None:
        first = pair[0]
        attach_mask(first, "kernel", self.name).set_mask(ANY_ROLE, kept, axis=-1)
        apply_mask(first, "kernel")
        if first.bias is not None:
            attach_mask(first, "bias", self.name).set_mask(ANY_ROLE, kept, axis=0)
            apply_mask(first, "bias")

    def sparsity(self, pair) -> float:
        return 1.0 - self.kept(pair).mean()


def _input_axes(owner) -> int:
    """How many leading kernel axes a Dense / EinsumDense contracts with its input."""
    if not hasattr(owner, "equation"):
        return 1
    inputs, rest = owner.equation.split(",")
    kernel, output = rest.split("->")
    contracted = [letter in inputs and letter not in output for letter in kernel]
    count = contracted.index(False) if False in contracted else len(contracted)
    if any(contracted[count:]):
        raise ValueError(
            f"Layer '{owner.name}' (equation {owner.equation!r}) contracts kernel axes that are not leading; "
            "n:m and block pruning need the input axes first. Leave it out with `layers=`."
        )
    return count


def _as_matrix(owner, weights: np.ndarray) -> np.ndarray:
    inputs = _input_axes(owner)
    return weights.reshape(int(np.prod(weights.shape[:inputs])), -1)


class _WeightPattern:
    """Shared by `n:m` and `blocks`: element masks on the kernels of Dense, EinsumDense and attention layers."""

    name = ""

    def targets(self, model, accept):
        return [layer for layer in model_layers(model) if (is_attention(layer) or is_dense(layer)) and accept(layer)]

    @staticmethod
    def owners(layer):
        """(role, the layer owning the kernel) pairs."""
        return [(p.name, p) for p in projections(layer)] if is_attention(layer) else [(ANY_ROLE, layer)]

    def alive(self, layer, role, owner) -> np.ndarray:
        mask = attached_mask(layer, "kernel", self.name)
        kept = None if mask is None else mask.kept(role)
        shape = _as_matrix(owner, numpy(owner.kernel)).shape
        return np.ones(shape, dtype=bool) if kept is None else kept.reshape(shape)

    def check(self, layer) -> None:
        for _, owner in self.owners(layer):
            self.check_matrix(owner, _as_matrix(owner, numpy(owner.kernel)).shape)

    def prune(self, layer, sparsity: float) -> None:
        mask = attach_mask(layer, "kernel", self.name)
        for role, owner in self.owners(layer):
            weights = numpy(owner.kernel)
            kept = self.select(_as_matrix(owner, weights), sparsity, self.alive(layer, role, owner))
            mask.set_mask(role, kept.reshape(weights.shape))
        apply_mask(layer, "kernel")

    def sparsity(self, layer) -> float:
        alive = [self.alive(layer, role, owner) for role, owner in self.owners(layer)]
        return 1.0 - sum(a.sum() for a in alive) / sum(a.size for a in alive)


class NOfM(_WeightPattern):
    """N:M sparsity (e.g. 2:4): in every M consecutive inputs of each output unit, N weights stay.

    The schedule says when; N:M fixes the sparsity (1 - N/M), applied from the first pruning step
    at which the schedule's sparsity is above zero (as tensorflow-model-optimization does).
    """

    name = "n:m"

    def __init__(self, n: int, m: int):
        if not (isinstance(n, int) and isinstance(m, int) and 0 < n < m):
            raise ValueError(
                f"Received an invalid value for argument `n_m`, expected (n, m) with 0 < n < m, e.g. (2, 4). "
                f"Received: n_m=({n!r}, {m!r})"
            )
        self.n, self.m = n, m

    def check_matrix(self, owner, shape):
        if shape[0] % self.m:
            raise ValueError(
                f"Layer '{owner.name}' has {shape[0]} inputs, not a multiple of m={self.m}: n:m pruning needs "
                f"groups of {self.m} inputs. Leave it out with `layers=` or choose m dividing {shape[0]}."
            )

    def select(self, matrix, sparsity, alive):
        return selection.n_of_m(matrix, self.n, self.m) if sparsity > 0 else alive


class Blocks(_WeightPattern):
    """Blocks of weights, named as TFLite names them: `(1, 4)` is 4 consecutive inputs of one output unit.

    Block importance is its L2 norm; the smallest `sparsity` fraction of blocks of each kernel is removed.
    """

    name = "blocks"

    def __init__(self, block_shape: tuple[int, int]):
        if not (
            isinstance(block_shape, (tuple, list))
            and len(block_shape) == 2
            and all(isinstance(v, int) and v > 0 for v in block_shape)
        ):
            raise ValueError(
                "Received an invalid value for argument `block_shape`, expected (outputs, inputs) per block, "
                f"e.g. (1, 4) or (4, 4). Received: block_shape={block_shape!r}"
            )
        self.outputs, self.inputs = block_shape

    def check_matrix(self, owner, shape):
        if shape[0] % self.inputs or shape[1] % self.outputs:
            raise ValueError(
                f"Layer '{owner.name}' has a {shape[0]} inputs x {shape[1]} outputs kernel, which "
                f"{self.outputs}x{self.inputs} blocks do not tile. Leave it out with `layers=`."
            )

    def select(self, matrix, sparsity, alive):
        return selection.blocks(matrix, (self.inputs, self.outputs), sparsity, alive)
