"""`AxialPositionEmbedding`: Reformer's factorized position vectors, two small tables for a long sequence."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_sparse.validation import invalid_argument, is_integer, sequence_shape


def _pair(name: str, value) -> tuple[int, int]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(is_integer(v) and v > 0 for v in value):
        raise invalid_argument(name, "two positive integers", f"{name}={value!r}")
    return int(value[0]), int(value[1])


@keras.saving.register_keras_serializable(package="keras_sparse")
class AxialPositionEmbedding(keras.layers.Layer):
    """Position vectors from two tables: position p gets `concat(rows[p // columns], columns_table[p % columns])`.

    Reformer's axial position encoding (transformers' `AxialPositionEmbeddings` in eval mode): a sequence
    of up to `axial_shape[0] * axial_shape[1]` positions needs `axial_shape[0] * axial_dims[0] +
    axial_shape[1] * axial_dims[1]` weights instead of one vector per position. Like
    `PositionEmbedding`, it returns vectors shaped like its `(batch, seq_len, dim)` input, to be added
    to it, with `dim == sum(axial_dims)`.

    Args:
        axial_shape: two ints `(rows, columns)`, transformers' `axial_pos_shape`.
        axial_dims: two ints, the features each table gives (transformers' `axial_pos_embds_dim`).
        initializer: of both tables. Defaults to `RandomNormal(stddev=1.0)` (transformers' `axial_norm_std`).

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> layer = ks.layers.AxialPositionEmbedding(axial_shape=(4, 8), axial_dims=(4, 4))
    >>> tuple(layer(np.zeros((2, 30, 8), "float32")).shape)
    (2, 30, 8)

    Reference: Kitaev et al. 2020, "Reformer: The Efficient Transformer".
    """

    def __init__(self, axial_shape, axial_dims, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.axial_shape, self.axial_dims = _pair("axial_shape", axial_shape), _pair("axial_dims", axial_dims)
        self.initializer = keras.initializers.get(initializer or keras.initializers.RandomNormal(stddev=1.0))
        self.supports_masking = True

    def build(self, input_shape):
        if sequence_shape("inputs", input_shape)[-1] != sum(self.axial_dims):
            raise ValueError(
                f"Received inputs of {input_shape[-1]} features; the axial tables give {sum(self.axial_dims)} "
                f"(axial_dims={self.axial_dims}). Make `axial_dims` sum to the hidden size."
            )
        self.row_table = self.add_weight(
            shape=(self.axial_shape[0], self.axial_dims[0]), initializer=self.initializer, name="row_table"
        )
        self.column_table = self.add_weight(
            shape=(self.axial_shape[1], self.axial_dims[1]), initializer=self.initializer, name="column_table"
        )

    def call(self, inputs):
        seq_len = inputs.shape[1]
        rows, columns = self.axial_shape
        if seq_len is None or seq_len > rows * columns:
            raise ValueError(
                f"Received an input of {seq_len} positions; axial_shape={self.axial_shape} gives "
                f"{rows * columns}. Use a static length of at most {rows * columns}."
            )
        needed_rows = -(-seq_len // columns)
        row_part = ops.broadcast_to(self.row_table[:needed_rows, None, :], (needed_rows, columns, self.axial_dims[0]))
        column_part = ops.broadcast_to(self.column_table[None], (needed_rows, columns, self.axial_dims[1]))
        table = ops.reshape(ops.concatenate([row_part, column_part], axis=-1), (needed_rows * columns, -1))
        table = ops.cast(table[:seq_len], self.compute_dtype)
        return ops.broadcast_to(table[None], ops.shape(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "axial_shape": self.axial_shape,
            "axial_dims": self.axial_dims,
            "initializer": keras.initializers.serialize(self.initializer),
        }
