"""Model rewrites that swap layers or set their options and keep every weight.

`sparsify`, `exportable`, `centered_layer_norms`, `with_max_query_blocks`, `with_blockwise_softmax`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from keras_sparse.layers import CenteredLayerNormalization, SparseMultiHeadAttention, SparseTransformerEncoder
from keras_sparse.patterns import Pattern
from keras_sparse.validation import optional_positive_int

EXPORT_FORMS = {"sparse": "segment"}
"""Kernels that cannot be exported to TFLite builtins, and their builtins-only twins (same numbers)."""


def rewritable(model) -> bool:
    """True for functional and Sequential models: those that can be cloned layer by layer."""
    return isinstance(model, keras.Model) and (isinstance(model, keras.Sequential) or hasattr(model, "_operations"))


def rewrite_layers(
    model: keras.Model,
    replace: Callable[[keras.layers.Layer], keras.layers.Layer | None],
    transfer: Callable[[keras.layers.Layer, keras.layers.Layer], None] | None = None,
) -> keras.Model:
    """A copy of a functional or Sequential model where `replace(layer)` (if not None) stands for each layer.

    Each new layer then gets its weights from `transfer(old, new)`, by default the old layer's own.
    """
    if not rewritable(model):
        raise ValueError(
            "Received an invalid value for argument `model`, expected a functional or Sequential keras.Model "
            f"(subclassed models cannot be cloned layer by layer). Received: model={model!r}"
        )

    clones = []

    def clone_layer(layer):
        replacement = replace(layer)
        clone = replacement if replacement is not None else layer.__class__.from_config(layer.get_config())
        clones.append((layer, clone))
        return clone

    copy = keras.models.clone_model(model, clone_function=clone_layer)
    for old, new in clones:
        if not isinstance(new, keras.layers.Layer):  # operations such as `x + y` hold no weights
            continue
        if transfer is not None:
            transfer(old, new)
        else:
            new.set_weights(old.get_weights())
    return copy


def sparsify(model: keras.Model, pattern: Pattern, implementation: str = "auto") -> keras.Model:
    """Returns a copy of a functional or Sequential `model` whose multi-head attention layers are sparse.

    Weights are carried over, so the copy computes what `model` computes with
    `attention_mask=pattern.mask(T)` in each attention layer. The original is not changed.

    Args:
        model: a built functional or `keras.Sequential` model.
        pattern: the `keras_sparse.patterns.Pattern` every replaced layer uses.
        implementation: the kernel, as in `SparseMultiHeadAttention`.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(128, 16))
    >>> dense = keras.Model(x, keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x))
    >>> sparse = ks.sparsify(dense, pattern=ks.patterns.SlidingWindow(window_size=32))
    >>> type(sparse.layers[1]).__name__
    'SparseMultiHeadAttention'
    """
    if not isinstance(pattern, Pattern):
        raise ValueError(
            "Received an invalid value for argument `pattern`, expected a keras_sparse.patterns.Pattern. "
            f"Received: pattern={pattern!r}"
        )

    def replace(layer):
        if type(layer) is keras.layers.MultiHeadAttention:
            config = {**layer.get_config(), "pattern": pattern, "implementation": implementation}
            return SparseMultiHeadAttention.from_config(config)
        return None

    return rewrite_layers(model, replace)


def exportable(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` whose sparse attention layers use kernels that export to TFLite builtins.

    Layers with `implementation="sparse"` (tf.sparse ops, which no TFLite runtime has)
    switch to `"segment"`, which computes the same numbers with GATHER and
    UNSORTED_SEGMENT_* builtins. Other layers and all weights are unchanged.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(64, 8))
    >>> attention = ks.layers.SparseMultiHeadAttention(
    ...     num_heads=2, key_dim=4, pattern=ks.patterns.SlidingWindow(8), implementation="sparse")
    >>> ks.exportable(keras.Model(x, attention(x, x))).layers[1].implementation
    'segment'
    """

    def replace(layer):
        if isinstance(layer, SparseMultiHeadAttention) and layer.implementation in EXPORT_FORMS:
            config = {**layer.get_config(), "implementation": EXPORT_FORMS[layer.implementation]}
            return type(layer).from_config(config)
        return None

    return rewrite_layers(model, replace)


def centered_layer_norms(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` whose `keras.layers.LayerNormalization` layers are `CenteredLayerNormalization`.

    Same weights and outputs (to float32 rounding), and no NEG op, which TFLite's 16x8 mode lacks:
    `converters.to_tflite` applies it for `quantization="int16x8"`. `SparseTransformerEncoder`s get
    `centered_layer_norm=True`; norms inside other composite layers are not reached.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(4, 8))
    >>> copy = ks.centered_layer_norms(keras.Model(x, keras.layers.LayerNormalization()(x)))
    >>> type(copy.layers[1]).__name__
    'CenteredLayerNormalization'
    """

    def replace(layer):
        if type(layer) is keras.layers.LayerNormalization and not layer.rms_scaling:
            return CenteredLayerNormalization.from_config(layer.get_config())
        if isinstance(layer, SparseTransformerEncoder) and not layer.centered_layer_norm:
            return type(layer).from_config({**layer.get_config(), "centered_layer_norm": True})
        return None

    return rewrite_layers(model, replace)


def with_max_query_blocks(model: keras.Model, max_query_blocks: int) -> keras.Model:
    """Returns a copy of `model` whose sparse attention layers, encoders' included, compute at most
    `max_query_blocks` query blocks per step (the same numbers, fewer tensors live at once).

    Layers that already set `max_query_blocks` keep theirs. `converters.to_micro(max_query_blocks=...)`
    uses it.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(64, 8))
    >>> attention = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=ks.patterns.SlidingWindow(8))
    >>> ks.rewrites.with_max_query_blocks(keras.Model(x, attention(x, x)), 2).layers[1].max_query_blocks
    2
    """
    optional_positive_int("max_query_blocks", max_query_blocks)
    copy = rewrite_layers(model, lambda layer: None)
    for layer in _attention_layers(copy):
        if layer.max_query_blocks is None:
            layer.max_query_blocks = max_query_blocks
    return copy


def with_blockwise_softmax(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` whose sparse attention layers, encoders' included, set `blockwise_softmax`.

    The same numbers in float; in int8 files the attention weights keep their precision on wide rows
    (see `keras_sparse.kernels.blockwise_softmax`). `converters.to_tflite` applies it for int8.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(64, 8))
    >>> attention = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=ks.patterns.SlidingWindow(8))
    >>> ks.rewrites.with_blockwise_softmax(keras.Model(x, attention(x, x))).layers[1].blockwise_softmax
    True
    """
    copy = rewrite_layers(model, lambda layer: None)
    for layer in _attention_layers(copy):
        layer.blockwise_softmax = True
    return copy


def _attention_layers(model: keras.Model) -> list[SparseMultiHeadAttention]:
    return [layer for layer in model._flatten_layers() if isinstance(layer, SparseMultiHeadAttention)]
