"""Copies of a model that compute the same numbers in forms the TFLite converter handles better.

`exportable` (kernels that are TFLite builtins), `centered_layer_norms` (no NEG op, for 16x8),
`with_max_query_blocks` (fewer tensors live at once, for TFLite Micro's arena) and `with_blockwise_softmax`
(accurate int8 softmax over wide rows). Each reaches layers at any depth (`rewrite_layers`).
"""

from __future__ import annotations

import keras

from keras_sparse.layers import CenteredLayerNormalization, SparseMultiHeadAttention, SparseTransformerEncoder
from keras_sparse.rewrites.layer_tree import walk
from keras_sparse.rewrites.rewrite_layers import rewrite_layers
from keras_sparse.validation import optional_positive_int

EXPORT_FORMS = {"sparse": "segment"}
"""Kernels that cannot be exported to TFLite builtins, and their builtins-only twins (same numbers)."""


def _copy_with(model: keras.Model, change) -> keras.Model:
    """A copy of `model` (`rewrite_layers` with no replacement) after `change(layer)` on each of its layers."""
    copy = rewrite_layers(model, lambda layer: None)
    for _, _, layer in walk(copy):
        change(layer)
    return copy


def exportable(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` whose sparse attention layers, at any depth, use kernels that export to TFLite
    builtins.

    Layers with `implementation="sparse"` (tf.sparse ops, which no TFLite runtime has), including the
    attention of `SparseTransformerEncoder`s, switch to `"segment"`, which computes the same numbers with GATHER
    and UNSORTED_SEGMENT_* builtins. Other layers and all weights are unchanged.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(64, 8))
    >>> attention = ks.layers.SparseMultiHeadAttention(
    ...     num_heads=2, key_dim=4, pattern=ks.patterns.SlidingWindow(8), implementation="sparse")
    >>> ks.exportable(keras.Model(x, attention(x, x))).layers[1].implementation
    'segment'
    """

    def change(layer):
        if isinstance(layer, (SparseMultiHeadAttention, SparseTransformerEncoder)):
            layer.implementation = EXPORT_FORMS.get(layer.implementation, layer.implementation)

    return _copy_with(model, change)


def centered_layer_norms(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` whose `keras.layers.LayerNormalization` layers, at any depth, are
    `CenteredLayerNormalization`.

    Same weights and outputs (to float32 rounding), and no NEG op, which TFLite's 16x8 mode lacks:
    `converters.to_tflite` applies it for `quantization="int16x8"`. `SparseTransformerEncoder`s get
    `centered_layer_norm=True`.

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
    """Returns a copy of `model` whose sparse attention layers, at any depth, compute at most
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

    def change(layer):
        if isinstance(layer, SparseMultiHeadAttention) and layer.max_query_blocks is None:
            layer.max_query_blocks = max_query_blocks

    return _copy_with(model, change)


def with_blockwise_softmax(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` whose sparse attention layers, at any depth, set `blockwise_softmax`.

    The same numbers in float; in int8 files the attention weights keep their precision on wide rows
    (see `keras_sparse.kernels.blockwise_softmax`). `converters.to_tflite` applies it for int8.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(64, 8))
    >>> attention = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=ks.patterns.SlidingWindow(8))
    >>> ks.rewrites.with_blockwise_softmax(keras.Model(x, attention(x, x))).layers[1].blockwise_softmax
    True
    """

    def change(layer):
        if isinstance(layer, SparseMultiHeadAttention):
            layer.blockwise_softmax = True

    return _copy_with(model, change)
