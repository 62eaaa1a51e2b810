"""`PositionEmbedding`: learned or sinusoidal position vectors for a fixed sequence length."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_sparse.validation import one_of, positive_int

KINDS = ("learned", "sinusoidal")


def sinusoidal_table(seq_len: int, dim: int, max_wavelength: float = 10000.0) -> np.ndarray:
    """The Transformer's sines and cosines, float32 `(seq_len, dim)`: sin on even features, cos on odd."""
    positions = np.arange(seq_len)[:, None]
    rates = max_wavelength ** (-(np.arange(dim) // 2 * 2) / dim)
    angles = positions * rates[None]
    return np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles)).astype("float32")


@keras.saving.register_keras_serializable(package="keras_sparse")
class PositionEmbedding(keras.layers.Layer):
    """Returns position vectors shaped like its `(batch, seq_len, dim)` input, to be added to it.

    As keras-hub's `PositionEmbedding` (`"learned"`, a trained `(sequence_length, dim)` table) and
    `SinePositionEncoding` (`"sinusoidal"`, fixed). The table is sliced, never gathered: in a
    `.tflite` file it is one constant (or weight) added to the tokens.

    Args:
        sequence_length: the longest sequence; inputs may be shorter.
        kind: "learned" (default) or "sinusoidal".
        initializer: for the learned table (default "glorot_uniform").

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> x = np.zeros((2, 16, 8), "float32")
    >>> tuple(ks.layers.PositionEmbedding(16, kind="sinusoidal")(x).shape)
    (2, 16, 8)
    """

    def __init__(self, sequence_length: int, kind: str = "learned", initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = positive_int("sequence_length", sequence_length)
        self.kind = one_of("kind", kind, KINDS)
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        dim = input_shape[-1]
        if self.kind == "learned":
            self.table = self.add_weight(shape=(self.sequence_length, dim), initializer=self.initializer, name="table")
        else:
            self.table = ops.convert_to_tensor(sinusoidal_table(self.sequence_length, dim))

    def call(self, inputs):
        seq_len = inputs.shape[1]
        if seq_len is not None and seq_len > self.sequence_length:
            raise ValueError(
                f"Received an input of {seq_len} positions; this PositionEmbedding has sequence_length="
                f"{self.sequence_length}. Build the model with a longer sequence_length."
            )
        table = ops.cast(self.table[: inputs.shape[1]], self.compute_dtype)
        return ops.broadcast_to(table[None], ops.shape(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "kind": self.kind,
            "initializer": keras.initializers.serialize(self.initializer),
        }
