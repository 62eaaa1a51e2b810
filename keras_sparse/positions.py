"""`extend_positions`: a model rebuilt for longer sequences, its learned position table copied to fill them.

Longformer's recipe (Beltagy et al. 2020, "Longformer: The Long-Document Transformer", section 5): a model
pretrained on 512 positions starts at 4096 with its 512 learned position vectors copied end to end, so
every window of attention sees the position differences it was trained on. Sinusoidal and rotary
encodings are defined at every position and need nothing.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_sparse.layers import PositionEmbedding, SparseMultiHeadAttention
from keras_sparse.model_rebuilding import copy_weights_in_order, is_graph_model, with_arguments
from keras_sparse.optional_keras_hub import keras_hub_layer_classes
from keras_sparse.validation import positive_int

FIXED_KERAS_HUB = ("SinePositionEncoding", "RotaryEmbedding")
"""keras-hub's position encodings that are computed, not learned: defined at any length."""


def copied_table(table: np.ndarray, new_length: int) -> np.ndarray:
    """Longformer's initialisation: `table` `(length, dim)` repeated end to end, cut to `(new_length, dim)`.

    Example:

    >>> copied_table(np.array([[0.0], [1.0], [2.0]]), 7)[:, 0]
    array([0., 1., 2., 0., 1., 2., 0.])
    """
    repeats = -(-new_length // len(table))
    return np.tile(table, (repeats, 1))[:new_length]


def _learned_table(layer):
    """The position table variable of a learned position layer (ours or keras-hub's), else None."""
    if isinstance(layer, PositionEmbedding):
        return layer.table if layer.kind == "learned" else None
    if isinstance(layer, keras_hub_layer_classes("PositionEmbedding")):
        return layer.position_embeddings
    return None


def _is_fixed(layer) -> bool:
    if isinstance(layer, PositionEmbedding):
        return layer.kind != "learned"
    return isinstance(layer, keras_hub_layer_classes(*FIXED_KERAS_HUB))


def _invalid_length(new_length, expected: str) -> ValueError:
    return ValueError(
        f"Received an invalid value for argument `new_length`, expected {expected}. Received: new_length={new_length!r}"
    )


def _longer_graph(model: keras.Model, lengths: set[int], new_length: int) -> keras.Model:
    """A functional model cloned with inputs of `new_length` where they had a position table's length."""
    for layer in model.layers:
        if _holds_positions(layer) and "sequence_length" not in layer.get_config():
            raise ValueError(
                f"its position layers are inside '{layer.name}', which has no `sequence_length` argument. Extend "
                f"'{layer.name}' and build the outer model on it"
            )

    def longer_input(tensor):
        shape = list(tensor.shape)
        if len(shape) > 1 and shape[1] in lengths:
            shape[1] = new_length
        return keras.Input(batch_shape=tuple(shape), dtype=tensor.dtype, name=tensor.name)

    def clone(layer):
        config = layer.get_config()
        if _holds_positions(layer) and "sequence_length" in config:
            config["sequence_length"] = new_length
        return layer.__class__.from_config(config)

    inputs = keras.tree.map_structure(longer_input, model.input)
    return keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)


def _holds_positions(layer) -> bool:
    """True if `layer` is or holds a position layer (`_flatten_layers` includes the layer itself)."""
    if not isinstance(layer, keras.layers.Layer):  # operations such as `x + y`
        return False
    return any(_learned_table(inner) is not None or _is_fixed(inner) for inner in layer._flatten_layers())


def extend_positions(model: keras.Model, new_length: int) -> keras.Model:
    """A copy of `model` for sequences of `new_length` tokens: Longformer's recipe for learned positions.

    Every learned position table (`keras_sparse.layers.PositionEmbedding`, keras-hub's `PositionEmbedding`,
    also inside its `TokenAndPositionEmbedding`) is copied end to end to `new_length` rows; sinusoidal and
    rotary encodings need nothing. All other weights are the model's own. With a local or causal pattern
    the copy computes, on the first tokens, what the model computes (where no layer reaches past them).

    keras-hub backbones and tasks are rebuilt from their own arguments with `max_sequence_length=new_length`,
    so they keep their class (a `BertBackbone` stays one, a task keeps its backbone's); functional models
    (such as `ks.models.SparseTransformerClassifier`) are cloned with inputs of `new_length` tokens
    wherever they had the old length. Attention must fit the new length: dense, local and block patterns
    do; a `Learned` layout is fixed to its length and raises.

    Args:
        model: a functional `keras.Model`, or a keras-hub backbone or task.
        new_length: the new number of positions, more than the model's learned table has.

    Returns:
        The longer model, of `model`'s class. `model` is unchanged.

    Raises:
        ValueError: if `new_length` is not longer than the learned table, if the model has no position
            layer, or if it cannot be rebuilt at another length (subclassed models; keras-hub models with
            no `max_sequence_length` argument; attention that does not fit `new_length`).

    Example:

    >>> import keras_sparse as ks
    >>> model = ks.models.SparseTransformerClassifier(
    ...     vocab_size=16, seq_len=128, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32,
    ...     pattern=ks.patterns.SlidingWindow(window_size=32), num_classes=2)
    >>> ks.extend_positions(model, 1024).input_shape
    (None, 1024)
    """
    new_length = positive_int("new_length", new_length)
    if not isinstance(model, keras.Model) or not (is_graph_model(model) or hasattr(model, "_operations")):
        raise ValueError(
            "Received an invalid value for argument `model`, expected a functional keras.Model or a keras-hub "
            f"backbone or task (subclassed models cannot be rebuilt at another length). Received: model={model!r}"
        )
    layers = model._flatten_layers(include_self=False)
    tables = [(layer, _learned_table(layer)) for layer in layers if _learned_table(layer) is not None]
    if not tables and not any(_is_fixed(layer) for layer in layers):
        raise ValueError(
            f"Model '{model.name}' has no position layer (keras_sparse.layers.PositionEmbedding, or keras-hub's "
            f"PositionEmbedding, {', '.join(FIXED_KERAS_HUB)}): nothing to extend."
        )
    lengths = {int(table.shape[0]) for _, table in tables} | {
        layer.sequence_length for layer in layers if isinstance(layer, PositionEmbedding)
    }
    if lengths and max(lengths) >= new_length:
        raise _invalid_length(new_length, f"more than the {max(lengths)} positions model '{model.name}' has")
    try:
        if is_graph_model(model):
            longer = _longer_graph(model, lengths, new_length)
        else:
            longer = with_arguments(model, max_sequence_length=new_length)
        for layer in [] if longer is None else longer._flatten_layers():
            if isinstance(layer, SparseMultiHeadAttention) and layer.built_seq_len is not None:
                layer.effective_pattern.check_fits(layer.built_seq_len)  # symbolic calls do not check it
    except ValueError as error:
        raise ValueError(f"Model '{model.name}' cannot be rebuilt for {new_length} tokens: {error}") from error
    if longer is None and not tables:
        raise ValueError(
            f"{type(model).__name__} '{model.name}' has only sinusoidal or rotary positions, defined at any length, "
            "and no `max_sequence_length` argument: call it with longer inputs as it is."
        )
    if longer is None:
        raise ValueError(
            f"{type(model).__name__} '{model.name}' has no `max_sequence_length` argument to rebuild it with; "
            "extend_positions takes keras-hub backbones and tasks that have one, and functional models."
        )
    values = {id(table): copied_table(keras.ops.convert_to_numpy(table), new_length) for _, table in tables}
    copy_weights_in_order(model, longer, values)
    return longer
