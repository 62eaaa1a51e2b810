"""`BlockLocal`: attention inside fixed, non-overlapping blocks, optionally with neighbouring blocks."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from keras_sparse.patterns.pattern import Pattern, check_positive_int, check_seq_len, num_blocks_for, register


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
        object.__setattr__(self, "block_size", check_positive_int("block_size", self.block_size))
        for name in ("num_blocks_before", "num_blocks_after"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name), allow_zero=True))
        if not isinstance(self.wrap, (bool, np.bool_)):
            raise ValueError(
                f"Received an invalid value for argument `wrap`, expected True or False. Received: {self.wrap!r}"
            )
        object.__setattr__(self, "wrap", bool(self.wrap))

    def allowed(self, query_index, key_index, seq_len):
        counts = self._counts(num_blocks_for(seq_len, self.block_size))
        return counts[np.asarray(query_index) // self.block_size, np.asarray(key_index) // self.block_size] > 0

    def bias(self, query_index, key_index, seq_len):
        counts = self._counts(num_blocks_for(seq_len, self.block_size))
        if counts.max() <= 1:
            return None
        listed = counts[np.asarray(query_index) // self.block_size, np.asarray(key_index) // self.block_size]
        return np.log(np.maximum(listed, 1)).astype(np.float32)

    def layout(self, seq_len, block_size=None):
        self.resolve_block_size(block_size)
        return self._counts(num_blocks_for(check_seq_len(seq_len), self.block_size)) > 0

    @functools.lru_cache(maxsize=8)  # noqa: B019 (patterns are small, immutable and hashable)
    def _counts(self, num_blocks: int) -> np.ndarray:
        """int `(num_blocks, num_blocks)`: how many times query block r lists key block c."""
        counts = np.zeros((num_blocks, num_blocks), np.int32)
        rows = np.arange(num_blocks)
        for offset in range(-self.num_blocks_before, self.num_blocks_after + 1):
            columns = rows + offset
            if self.wrap:
                np.add.at(counts, (rows, columns % num_blocks), 1)
            else:
                inside = (columns >= 0) & (columns < num_blocks)
                np.add.at(counts, (rows[inside], columns[inside]), 1)
        counts.flags.writeable = False
        return counts
