"""`TokenEmbedding`: Keras's `Embedding` with a plain gather (one op, on every runtime)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from keras_sparse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_sparse")
class TokenEmbedding(keras.layers.Embedding):
    """`keras.layers.Embedding` for ids in `[0, input_dim)`, looked up with one GATHER op.

    Keras's `Embedding` wraps ids around when they are negative (`ops.take`), which adds LESS and
    SELECT ops; TFLite Micro has no SELECT kernel (`converters.to_micro` rewrites it into CAST, SUB,
    MUL and ADD). This layer has the same arguments, weights, masking and config, and gives the same
    outputs for valid ids with one GATHER.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> layer = ks.layers.TokenEmbedding(10, 4)
    >>> tuple(layer(np.array([[1, 2, 3]])).shape)
    (1, 3, 4)
    """

    def __init__(self, input_dim: int, output_dim: int, *args, **kwargs):
        super().__init__(positive_int("input_dim", input_dim), positive_int("output_dim", output_dim), *args, **kwargs)

    def call(self, inputs):
        if self.quantization_mode is not None:
            return super().call(inputs)  # Keras's quantized embeddings keep their own lookup
        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        return ops.cast(tf.gather(self.embeddings, inputs), dtype=self.compute_dtype)
