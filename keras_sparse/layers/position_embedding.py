"""`PositionEmbedding`: learned or sinusoidal position vectors for a fixed sequence length; `rotary_encoding`."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_sparse.validation import one_of, positive_int, sequence_shape

KINDS = ("learned", "sinusoidal")


def _rates(dim: int, max_wavelength: float) -> np.ndarray:
    return max_wavelength ** (-(np.arange(dim) // 2 * 2) / dim)


def sinusoidal_table(seq_len: int, dim: int, max_wavelength: float = 10000.0) -> np.ndarray:
    """The Transformer's sines and cosines, float32 `(seq_len, dim)`: sin on even features, cos on odd."""
    angles = np.arange(seq_len)[:, None] * _rates(dim, max_wavelength)[None]
    return np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles)).astype("float32")


def sinusoidal_encoding(positions, dim: int, max_wavelength: float = 10000.0):
    """`sinusoidal_table`'s rows at int `positions` `(T,)` (tensors, computed at any position): float32 `(T, dim)`.

    Example:

    >>> import numpy as np
    >>> bool(np.allclose(sinusoidal_encoding(np.arange(3), 4), sinusoidal_table(3, 4), atol=1e-6))
    True
    """
    rates = ops.convert_to_tensor(_rates(dim, max_wavelength), "float32")
    phases = ops.convert_to_tensor(np.where(np.arange(dim) % 2 == 0, 0.0, np.pi / 2), "float32")  # cos = sin(+pi/2)
    return ops.sin(ops.cast(positions, "float32")[:, None] * rates + phases)  # one SIN op, no SELECT (TFLite Micro)


def rotary_encoding(x, positions, max_wavelength: float = 10000.0):
    """Rotary position embedding (RoPE; Su et al. 2021, "RoFormer"): `x` rotated by angles of its positions.

    Feature pairs `(i, i + dim / 2)` (GPT-NeoX's and keras-hub's `RotaryEmbedding`'s halves) turn by
    `position * max_wavelength ** (-2 * i / dim)`, so a query-key dot product depends on the positions only
    through their difference: attention stays unchanged under any shift, at any position.

    Args:
        x: float `(batch, T, heads, dim)`, `dim` even (projected queries or keys).
        positions: int `(T,)` (a tensor in traced functions).
        max_wavelength: float, the slowest pair's wavelength in positions.

    Returns:
        `x`'s shape and dtype. Ops: one SIN, MUL, ADD, CONCATENATION, STRIDED_SLICE (TFLite builtins).

    Example:

    >>> import numpy as np
    >>> q = np.ones((1, 2, 1, 4), "float32")
    >>> r = np.asarray(rotary_encoding(q, np.array([5, 6])))
    >>> k = np.asarray(rotary_encoding(q, np.array([3, 4])))
    >>> bool(np.isclose((r[0, 0] * k[0, 0]).sum(), (r[0, 1] * k[0, 1]).sum()))
    True
    """
    half = x.shape[-1] // 2
    rates = ops.convert_to_tensor(max_wavelength ** (-np.arange(half) / half), "float32")
    angles = ops.cast(positions, "float32")[:, None] * rates  # (T, half)
    angles = ops.concatenate([angles, angles + np.pi / 2], axis=-1)  # cos = sin(+pi/2): one SIN op
    waves = ops.cast(ops.sin(angles), x.dtype)[None, :, None, :]
    sin, cos = waves[..., :half], waves[..., half:]
    first, second = x[..., :half], x[..., half:]
    return ops.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


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
        dim = sequence_shape("inputs", input_shape)[-1]
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
