"""`finalize`: the pruned model rebuilt physically smaller (fewer heads, fewer units, learned layouts)."""

from __future__ import annotations

import keras
import numpy as np

from keras_sparse.layers import SparseMultiHeadAttention
from keras_sparse.patterns import Intersection, Learned, PerHead
from keras_sparse.pruning.attention_blocks import as_learned
from keras_sparse.pruning.masks import role_of
from keras_sparse.pruning.report import NO_STATE, pruning_rows
from keras_sparse.pruning.sites import attached_mask, is_attention, without_masks
from keras_sparse.pruning.structures import Neurons, numpy
from keras_sparse.rewrites import rewrite_layers


def kept_heads(layer) -> np.ndarray | None:
    """Indices of the heads an attention layer keeps, or None if heads were not pruned."""
    mask = attached_mask(layer, "kernel", "heads")
    return None if mask is None else np.flatnonzero(mask.kept("query"))


def _select_heads(pattern, heads: np.ndarray, num_heads: int):
    """The pattern of the kept `heads` only (shared patterns are unchanged)."""
    if pattern.num_heads is None:
        return pattern
    expanded = pattern.for_heads(num_heads)
    if isinstance(expanded, Learned):
        return Learned(expanded.blocks[heads], expanded.block_size)
    if isinstance(expanded, Intersection):
        return Intersection(*(_select_heads(p, heads, num_heads) for p in (expanded.first, expanded.second)))
    return PerHead([expanded.head(int(h)) for h in heads])


def attention_config(layer) -> dict:
    """The config of `layer` finalized: kept heads only, a learned layout as plain data, no masks."""
    config = without_masks(layer.get_config(), layer)
    heads = kept_heads(layer)
    if isinstance(layer, SparseMultiHeadAttention):
        pattern = as_learned(layer) if layer.built_seq_len and not layer.pattern.dynamic else layer.pattern
        if heads is not None:
            pattern = _select_heads(pattern, heads, layer.num_heads)
        config["pattern"] = pattern
    if heads is not None:
        config["num_heads"] = len(heads)
    return config


def attention_weights(layer) -> list[np.ndarray]:
    """`layer`'s weights with the pruned heads cut out, in the order of its `weights`."""
    heads = kept_heads(layer)
    values = []
    for variable in layer.weights:
        value = numpy(variable)
        if heads is not None:
            role, weight = role_of(variable), variable.path.split("/")[-1]
            if role == "attention_output":
                value = value[heads] if weight == "kernel" else value
            else:
                value = np.take(value, heads, axis=1 if weight == "kernel" else 0)
        values.append(value)
    return values


def kept_units(dense) -> np.ndarray | None:
    """Indices of the units a Dense keeps under neurons pruning, or None."""
    mask = attached_mask(dense, "kernel", "neurons")
    return None if mask is None else np.flatnonzero(mask.kept())


def pair_weights(first, second, between=()) -> tuple[list, list]:
    """Weights of a (first, second) Dense pair with the pruned units cut out of both.

    A removed unit still sends `activation(0)` (0.5 for a sigmoid) to `second`: that constant is
    folded into `second`'s bias so the outputs do not change.
    """
    units = kept_units(first)
    first_values = [numpy(v) for v in first.weights]
    second_values = [numpy(v) for v in second.weights]
    if units is None:
        return first_values, second_values
    removed = np.setdiff1d(np.arange(first.units), units)
    signal = keras.ops.convert_to_numpy(first.activation(keras.ops.zeros((1, 1))))
    for layer in between:
        signal = keras.ops.convert_to_numpy(layer(signal, training=False))
    folded = float(np.ravel(signal)[0]) * second_values[0][removed].sum(axis=0)
    if np.any(folded):
        if not second.use_bias:
            raise ValueError(
                f"Cannot finalize the pruned units of '{first.name}': its activation is not zero at 0 and "
                f"'{second.name}' has no bias to fold the removed units' constant output into."
            )
        second_values[1] = second_values[1] + folded
    first_values[0] = first_values[0][:, units]
    if first.use_bias:
        first_values[1] = first_values[1][units]
    second_values[0] = second_values[0][units]
    return first_values, second_values


def finalize(model: keras.Model) -> keras.Model:
    """A new model with what pruning removed taken out: same outputs, fewer parameters and FLOPs.

    Pruned heads leave their attention layers (`num_heads` shrinks, per-head patterns follow);
    pruned units leave their Dense pairs; learned attention layouts become `patterns.Learned` data;
    n:m and block zeros stay (for TFLite's sparse weight encoding), their masks go. The new model has
    no pruning constraints. The original is unchanged. Custom layers that contain pruned layers
    provide `finalized()` returning their smaller copy.

    Example:

    >>> import keras, numpy as np, keras_sparse as ks
    >>> x = keras.Input((8,))
    >>> model = keras.Model(x, keras.layers.Dense(2)(keras.layers.Dense(4)(x)))
    >>> pair = ks.pruning.Neurons().targets(model, lambda layer: True)[0]
    >>> ks.pruning.Neurons().set_kept(pair, np.array([True, False, True, False]))
    >>> ks.pruning.finalize(model).layers[1].units
    2
    """
    if not pruning_rows(model):
        raise ValueError(NO_STATE)
    new_weights, first_layers = {}, set()
    for first, second, between in Neurons().targets(model, lambda _: True):
        new_weights[id(first)], new_weights[id(second)] = pair_weights(first, second, between)
        first_layers.add(id(first))

    def replace(layer):
        if hasattr(layer, "finalized"):
            return layer.finalized()
        if is_attention(layer):
            new_weights[id(layer)] = attention_weights(layer)
            return layer.__class__.from_config(attention_config(layer))
        if not hasattr(layer, "kernel_constraint"):
            return None
        config = without_masks(layer.get_config(), layer)
        if id(layer) in first_layers:
            config["units"] = new_weights[id(layer)][0].shape[-1]
        return layer.__class__.from_config(config)

    def transfer(old, new):
        if hasattr(old, "finalized"):
            return
        new.set_weights(new_weights.get(id(old), old.get_weights()))

    return rewrite_layers(model, replace, transfer)
