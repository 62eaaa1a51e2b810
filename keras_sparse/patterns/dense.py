"""`Dense`: every query attends every key."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns.pattern import Pattern, num_blocks_for, register
from keras_sparse.validation import optional_positive_int, positive_int


@register
@dataclasses.dataclass(frozen=True)
class Dense(Pattern):
    """Full attention, as `keras.layers.MultiHeadAttention` computes it.

    Args:
        block_size: optional int. Block size for the gathered-block kernel (default 64).

    Example:

    >>> import keras_sparse as ks
    >>> bool(ks.patterns.Dense().mask(3).all())
    True
    """

    length_independent = True

    block_size: int | None = None

    def __post_init__(self):
        self._store(block_size=optional_positive_int("block_size", self.block_size))

    def allowed(self, query_index, key_index, seq_len):
        return np.ones(np.broadcast_shapes(np.shape(query_index), np.shape(key_index)), dtype=bool)

    def layout(self, seq_len, block_size=None):
        num_blocks = num_blocks_for(positive_int("seq_len", seq_len), self.resolve_block_size(block_size))
        return np.ones((num_blocks, num_blocks), dtype=bool)
