"""`BlockLocal`: attention inside fixed, non-overlapping blocks, optionally with neighbouring blocks."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns.pattern import Pattern, num_blocks_for, register
from keras_sparse.validation import boolean, non_negative_int, positive_int


@register
@dataclasses.dataclass(frozen=True)
class BlockLocal(Pattern):
    """Query i attends the keys of its own block and of `num_blocks_before` / `num_blocks_after` blocks around it.

    With the defaults, query i attends key j iff `i // block_size == j // block_size`. Neighbouring
    blocks past either end are left out, unless `wrap=True`: then block `r + k` means block
    `(r + k) % num_blocks`, as in Reformer's local attention (transformers' `LocalSelfAttention`, whose
    first chunk looks back at the last one), and a block listed more than once (when the neighbours
    wrap onto each other) counts as often as it is listed in the softmax, as there: a logit bias of
    `log(count)` on its keys.

    Args:
        block_size: int. Tokens per block (Reformer's `local_attn_chunk_length`).
        num_blocks_before: int. Blocks before a query's own block that it attends. Defaults to 0.
        num_blocks_after: int. Blocks after it. Defaults to 0.
        wrap: bool. Neighbours wrap around the sequence's ends. Defaults to False.

    Example:

    >>> import keras_sparse as ks
    >>> ks.patterns.BlockLocal(block_size=2).mask(4).astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    >>> ks.patterns.BlockLocal(block_size=2, num_blocks_before=1, wrap=True).layout(6).astype(int)
    array([[1, 0, 1],
           [1, 1, 0],
           [0, 1, 1]])

    Reference: Kitaev et al. 2020, "Reformer: The Efficient Transformer" (local attention by chunks).
    """

    block_size: int = dataclasses.field()  # required: the base class's None is not a default
    num_blocks_before: int = 0
    num_blocks_after: int = 0
    wrap: bool = False

    def __post_init__(self):
        self._store(
            block_size=positive_int("block_size", self.block_size),
            num_blocks_before=non_negative_int("num_blocks_before", self.num_blocks_before),
            num_blocks_after=non_negative_int("num_blocks_after", self.num_blocks_after),
            wrap=boolean("wrap", self.wrap),
        )

    @property
    def length_independent(self) -> bool:
        """True without `wrap`: wrapped neighbours depend on the number of blocks."""
        return not self.wrap

    def allowed(self, query_index, key_index, seq_len):
        return self._listed(query_index, key_index, seq_len) > 0

    def bias(self, query_index, key_index, seq_len):
        num_blocks = num_blocks_for(seq_len, self.block_size)
        if not self.wrap or self.num_blocks_before + self.num_blocks_after < num_blocks:
            return None  # no block is listed twice
        return np.log(np.maximum(self._listed(query_index, key_index, seq_len), 1)).astype(np.float32)

    def layout(self, seq_len, block_size=None):
        block_size = self.resolve_block_size(block_size)
        blocks = np.arange(num_blocks_for(positive_int("seq_len", seq_len), block_size))
        return self._block_counts(blocks[:, None], blocks[None, :], len(blocks)) > 0

    def _listed(self, query_index, key_index, seq_len) -> np.ndarray:
        """How many times the block of query `query_index` lists the block of key `key_index`."""
        query_block, key_block = np.asarray(query_index) // self.block_size, np.asarray(key_index) // self.block_size
        return self._block_counts(query_block, key_block, num_blocks_for(seq_len, self.block_size))

    def _block_counts(self, query_block, key_block, num_blocks: int) -> np.ndarray:
        """How many offsets k in `[-num_blocks_before, num_blocks_after]` lead query block r to key block c:
        `c - r == k` without `wrap`, `(c - r) % num_blocks == k % num_blocks` with it."""
        offset = key_block - query_block
        if not self.wrap:
            return ((offset >= -self.num_blocks_before) & (offset <= self.num_blocks_after)).astype(np.int32)
        residue = offset % num_blocks
        listed = (self.num_blocks_after - residue) // num_blocks + (self.num_blocks_before + residue) // num_blocks + 1
        return np.maximum(listed, 0)
