"""`BlockLocal`: attention inside fixed, non-overlapping blocks."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns.pattern import Pattern, num_blocks_for, register
from keras_sparse.validation import positive_int


@register
@dataclasses.dataclass(frozen=True)
class BlockLocal(Pattern):
    """Query i attends key j iff `i // block_size == j // block_size`.

    Args:
        block_size: int. Tokens per block.

    Example:

    >>> import keras_sparse as ks
    >>> ks.patterns.BlockLocal(block_size=2).mask(4).astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    """

    length_independent = True

    block_size: int = dataclasses.field()  # required: the base class's None is not a default

    def __post_init__(self):
        self._store(block_size=positive_int("block_size", self.block_size))

    def allowed(self, query_index, key_index, seq_len):
        return np.asarray(query_index) // self.block_size == np.asarray(key_index) // self.block_size

    def layout(self, seq_len, block_size=None):
        block_size = self.resolve_block_size(block_size)
        return np.eye(num_blocks_for(positive_int("seq_len", seq_len), block_size), dtype=bool)
