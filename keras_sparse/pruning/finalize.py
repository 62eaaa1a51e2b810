"""`finalize`: the pruned model rebuilt physically smaller (fewer heads, fewer units, learned layouts)."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from keras_sparse.layers import SparseMultiHeadAttention
from keras_sparse.model_rebuilding import copy_weights_in_order, is_graph_model, with_arguments
from keras_sparse.patterns import Intersection, Learned, PerHead
from keras_sparse.pruning.attention_blocks import as_learned
from keras_sparse.pruning.composites import Composite, composite_of
from keras_sparse.pruning.masks import role_of
from keras_sparse.pruning.report import NO_STATE, pruning_rows
from keras_sparse.pruning.sites import attached_mask, is_attention, model_layers, without_masks
from keras_sparse.pruning.structures import Neurons, numpy
from keras_sparse.rewrites import rewritable, rewrite_layers


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
    if isinstance(layer, SparseMultiHeadAttention) and "pattern" in config:  # else derived (LongformerSelfAttention)
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
    no pruning constraints and keeps the class of `model` and of every nested model. The original is
    unchanged.

    It reaches nested functional and Sequential models and the Transformer blocks that hold attention
    and feed-forward layers as attributes (`keras_sparse.pruning.composites`). keras-hub's backbones and
    tasks are rebuilt from their own arguments: their feed-forward pairs shrink when every block kept the
    same number of units (one `intermediate_dim`), and their heads cannot (keras-hub derives `key_dim` from
    `hidden_dim // num_heads`). What cannot shrink keeps its pruned weights at zero, so outputs do not
    change, and a warning names each such layer and why.

    Args:
        model: a functional or Sequential `keras.Model`, or a keras-hub backbone or task, pruned by
            `StructuredPruning` (or `set_kept`).

    Returns:
        The smaller model, of `model`'s class.

    Raises:
        ValueError: if `model` carries no pruning state, or is a subclassed model that cannot be rebuilt.

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
    full_size: list[str] = []
    small = _finalized(model, full_size)
    if full_size:
        warnings.warn(
            "finalize kept these pruned layers at full size (their pruned weights stay zero, so outputs are "
            "unchanged):\n  " + "\n  ".join(full_size),
            stacklevel=2,
        )
    return small


def _finalized(model: keras.Model, full_size: list[str]) -> keras.Model:
    if is_graph_model(model):
        return _finalized_layer_by_layer(model, full_size)
    if not rewritable(model):
        raise ValueError(
            "Received an invalid value for argument `model`, expected a functional or Sequential keras.Model or "
            f"a keras-hub backbone or task (subclassed models cannot be rebuilt smaller). Received: model={model!r}"
        )
    return _finalized_from_arguments(model, full_size)


def _structurally_pruned(layer) -> bool:
    """True if pruning removed heads or units of `layer` (the structures `finalize` takes out)."""
    return any(attached_mask(layer, "kernel", structure) is not None for structure in ("heads", "neurons"))


def _kept_inside(layer, reason: str) -> list[str]:
    """Notes for the structurally pruned layers inside `layer`, which stays at full size for `reason`."""
    inner = layer._flatten_layers(include_self=False)
    return [f"{sublayer.path}: {reason}" for sublayer in inner if _structurally_pruned(sublayer)]


def _finalized_layer_by_layer(model: keras.Model, full_size: list[str]) -> keras.Model:
    """Functional and Sequential models: each layer rebuilt smaller, nested models and blocks recursively."""
    new_weights, first_layers, ready = {}, set(), set()
    direct = {id(layer) for layer in model.layers}
    for first, second, between in Neurons().targets(model, lambda _: True):
        if id(first) in direct:  # a pair in this model's graph; nested models and blocks rebuild their own
            new_weights[id(first)], new_weights[id(second)] = pair_weights(first, second, between)
            first_layers.add(id(first))

    def replace(layer):
        if id(layer) not in direct:  # deeper layers belong to a nested model or block, rebuilt as a whole
            return None
        if isinstance(layer, keras.Model):
            ready.add(id(layer))
            return _finalized(layer, full_size)
        composite = composite_of(layer)
        if composite is not None:
            ready.add(id(layer))
            return _smaller_composite(layer, composite, full_size)
        if is_attention(layer):
            new_weights[id(layer)] = attention_weights(layer)
            return layer.__class__.from_config(attention_config(layer))
        if hasattr(layer, "kernel_constraint"):
            config = without_masks(layer.get_config(), layer)
            if id(layer) in first_layers:
                config["units"] = new_weights[id(layer)][0].shape[-1]
            return layer.__class__.from_config(config)
        full_size.extend(_kept_inside(layer, f"finalize cannot rebuild {type(layer).__name__} '{layer.name}' smaller"))
        return None

    def transfer(old, new):
        if id(old) not in ready:
            new.set_weights(new_weights.get(id(old), old.get_weights()))

    return rewrite_layers(model, replace, transfer)


def _pair_values(first, second) -> dict[int, np.ndarray]:
    """`pair_weights` keyed by variable id, for `copy_weights_in_order`."""
    cut = pair_weights(first, second)
    return {
        id(variable): value
        for dense, values in zip((first, second), cut, strict=True)
        for variable, value in zip(dense.weights, values, strict=True)
    }


def _smaller_composite(layer, composite: Composite, full_size: list[str]):
    """A copy of a Transformer block without its pruned units (and heads, where its constructor allows)."""
    values, changes = {}, dict(composite.cleared)
    first, second = getattr(layer, composite.first), getattr(layer, composite.second)
    units = kept_units(first)
    if units is not None:
        values.update(_pair_values(first, second))
        changes[composite.width_argument] = len(units)
    if composite.attention is not None:
        attention = getattr(layer, composite.attention)
        config = attention_config(attention)
        changes.update(num_heads=config["num_heads"], key_dim=config["key_dim"], pattern=config["pattern"])
        values.update(zip(map(id, attention.weights), attention_weights(attention), strict=True))
    else:
        full_size.extend(_kept_inside(layer, composite.fixed_heads_reason.format(cls=type(layer).__name__)))
    smaller = type(layer).from_config({**layer.get_config(), **changes})
    if not smaller.built:  # keras-hub's TransformerDecoder builds itself from shapes in its config
        smaller.build_from_config(layer.get_build_config())
    copy_weights_in_order(layer, smaller, values)
    return smaller


def _finalized_from_arguments(model: keras.Model, full_size: list[str]) -> keras.Model:
    """keras-hub backbones and tasks: rebuilt from their arguments, one `intermediate_dim` for every block."""
    blocks = [(block, composite_of(block)) for block in model._flatten_layers(include_self=False)]
    pairs = [(getattr(b, c.first), getattr(b, c.second), c.width_argument) for b, c in blocks if c is not None]
    pruned = [(first, second, argument) for first, second, argument in pairs if kept_units(first) is not None]
    widths = sorted({len(kept_units(first)) for first, _, _ in pruned})
    arguments = {argument: widths[0] for _, _, argument in pruned}
    smaller = with_arguments(model, **arguments) if len(widths) == 1 and len(arguments) == 1 else None
    values, shrunk = {}, set()
    if smaller is None:
        smaller = with_arguments(model)
    else:
        for first, second, _ in pruned:
            values.update(_pair_values(first, second))
            shrunk.add(id(first))
    name = type(model).__name__
    for layer in model_layers(model):
        if not _structurally_pruned(layer) or id(layer) in shrunk:
            continue
        if is_attention(layer):
            reason = f"keras-hub derives key_dim from hidden_dim // num_heads, so {name} cannot hold fewer heads"
        elif len(widths) > 1:
            reason = f"{name} builds every block from one intermediate_dim, and its blocks kept {widths} units"
        else:
            reason = f"{name} is rebuilt from its arguments, and none of them sets this layer's width"
        full_size.append(f"{layer.path}: {reason}")
    copy_weights_in_order(model, smaller, values)
    return smaller
