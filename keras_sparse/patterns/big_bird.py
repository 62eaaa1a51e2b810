"""`BigBird`: sliding-window, global and random blocks (the ITC layout)."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from keras_sparse.patterns.pattern import Pattern, num_blocks_for, register
from keras_sparse.validation import invalid_argument, non_negative_int, positive_int


@register
@dataclasses.dataclass(frozen=True)
class BigBird(Pattern):
    """BigBird's block layout, in DeepSpeed's `BigBirdSparsityConfig` vocabulary.

    On blocks of `block_size` tokens, query block r attends key block c iff
    - `|r - c| <= num_sliding_window_blocks // 2` (a band centred on the diagonal), or
    - `r < num_global_blocks` or `c < num_global_blocks` (global blocks, in both directions), or
    - c is one of the `num_random_blocks` distinct blocks drawn for r, uniformly among the blocks
      outside r's window and outside the global blocks (all of them if there are fewer).
    Random blocks are drawn with `np.random.default_rng(seed)`, query block by query block
    in increasing order, so a seed gives the same layout in every process.

    Args:
        block_size: int. Tokens per block.
        num_sliding_window_blocks: odd int. Width of the band in blocks. Defaults to 3.
        num_global_blocks: int. Leading blocks with global attention. Defaults to 2.
        num_random_blocks: int. Random key blocks per non-global query block. Defaults to 3.
        seed: int. Seed of the random blocks. Defaults to 0.

    Example:

    >>> import keras_sparse as ks
    >>> ks.patterns.BigBird(block_size=16, num_random_blocks=1).layout(96).astype(int)
    array([[1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 0, 1],
           [1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1],
           [1, 1, 0, 1, 1, 1]])

    Reference: Zaheer et al. 2020, "Big Bird: Transformers for Longer Sequences".
    """

    block_size: int = dataclasses.field()  # required: the base class's None is not a default
    num_sliding_window_blocks: int = 3
    num_global_blocks: int = 2
    num_random_blocks: int = 3
    seed: int = 0

    def __post_init__(self):
        self._store(
            block_size=positive_int("block_size", self.block_size),
            num_sliding_window_blocks=positive_int("num_sliding_window_blocks", self.num_sliding_window_blocks),
            num_global_blocks=non_negative_int("num_global_blocks", self.num_global_blocks),
            num_random_blocks=non_negative_int("num_random_blocks", self.num_random_blocks),
            seed=non_negative_int("seed", self.seed),
        )
        if self.num_sliding_window_blocks % 2 == 0:
            raise invalid_argument(
                "num_sliding_window_blocks",
                "an odd integer (the band is centred on the diagonal)",
                f"num_sliding_window_blocks={self.num_sliding_window_blocks}",
            )

    def layout(self, seq_len, block_size=None):
        self.resolve_block_size(block_size)
        return self._layout(positive_int("seq_len", seq_len)).copy()

    def allowed(self, query_index, key_index, seq_len):
        layout = self._layout(seq_len)
        return layout[np.asarray(query_index) // self.block_size, np.asarray(key_index) // self.block_size]

    @functools.lru_cache(maxsize=8)  # noqa: B019 (patterns are small, immutable and hashable)
    def _layout(self, seq_len: int) -> np.ndarray:
        num_blocks = num_blocks_for(seq_len, self.block_size)
        rows, cols = np.indices((num_blocks, num_blocks))
        window = np.abs(rows - cols) <= self.num_sliding_window_blocks // 2
        is_global = (rows < self.num_global_blocks) | (cols < self.num_global_blocks)
        layout = window | is_global
        rng = np.random.default_rng(self.seed)
        for row in range(self.num_global_blocks, num_blocks):
            candidates = np.flatnonzero(~layout[row])
            if len(candidates) and self.num_random_blocks:
                chosen = rng.choice(candidates, size=min(self.num_random_blocks, len(candidates)), replace=False)
                layout[row, chosen] = True
        layout.flags.writeable = False
        return layout
