"""`Dense`: every query attends every key."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns.pattern import Pattern, check_positive_int, check_seq_len, num_blocks_for, register


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
        if self.block_size is not None:
            object.__setattr__(self, "block_size", check_positive_int("block_size", self.block_size))

    def allowed(self, query_index, key_index, seq_len):
        return np.ones(np.broadcast_shapes(np.shape(query_index), np.shape(key_index)), dtype=bool)

    def layout(self, seq_len, block_size=None):
        num_blocks = num_blocks_for(check_seq_len(seq_len), self.resolve_block_size(block_size))
        return np.ones((num_blocks, num_blocks), dtype=bool)
