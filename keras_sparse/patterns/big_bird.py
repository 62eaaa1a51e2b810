"""`BigBird`: sliding-window, global and random blocks (the ITC layout), in DeepSpeed's or the original form."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from keras_sparse.patterns.pattern import Pattern, num_blocks_for, register
from keras_sparse.validation import invalid_argument, non_negative_int, one_of, optional_positive_int, positive_int

LAYOUT_STYLES = ("deepspeed", "original")
RANDOM_BLOCKS = ("drawn", "block_zero")


@register
@dataclasses.dataclass(frozen=True)
class BigBird(Pattern):
    """BigBird's block layout, in DeepSpeed's `BigBirdSparsityConfig` vocabulary.

    With `layout_style="deepspeed"` (the default), on blocks of `block_size` tokens, query block r
    attends key block c iff
    - `|r - c| <= num_sliding_window_blocks // 2` (a band centred on the diagonal), or
    - `r < num_global_blocks` or `c < num_global_blocks` (global blocks, in both directions), or
    - c is one of the `num_random_blocks` distinct blocks drawn for r, uniformly among the blocks
      outside r's window and outside the global blocks (all of them if there are fewer).
    Random blocks are drawn with `np.random.default_rng(seed)`, query block by query block
    in increasing order, so a seed gives the same layout in every process. Every head shares them.

    With `layout_style="original"`, the layout of google-research/bigbird's ITC attention as
    transformers' `BigBirdBlockSparseAttention` computes it:
    - the global blocks are the first `ceil(num_global_blocks / 2)` blocks and the last
      `num_global_blocks // 2` (transformers: the first and the last block);
    - each head draws its own random blocks: `np.random.default_rng(seed)` draws head by head, then
      query block by query block, as above (transformers' training mode draws with NumPy's legacy
      generator reseeded by the layer index on every forward; those draws are not reproduced);
    - with `random_blocks="block_zero"`, every random block of every head is block 0, which is what
      transformers computes in eval mode since its PR 23056 (so block 0, already global, counts
      `1 + num_random_blocks` times in those rows' softmax);
    - a block listed more than once counts as often as it is listed in the softmax, as in
      transformers: a logit bias of `log(count)` on its keys;
    - sequences of at most `(num_global_blocks + num_sliding_window_blocks + 2 * num_random_blocks)
      * block_size` tokens get full attention, as transformers falls back to it (5 + 2r blocks).

    Args:
        block_size: int. Tokens per block.
        num_sliding_window_blocks: odd int. Width of the band in blocks. Defaults to 3.
        num_global_blocks: int. Blocks with global attention. Defaults to 2.
        num_random_blocks: int. Random key blocks per non-global query block. Defaults to 3.
        seed: int. Seed of the random blocks. Defaults to 0.
        layout_style: "deepspeed" (default) or "original", as above.
        random_blocks: "drawn" (default) or "block_zero" (original style only), as above.
        num_heads: optional int, original style with drawn random blocks: the heads that draw their own.
            A layer sets it (`for_heads`); left None, the pattern is the draw of head 0, shared.

    Example:

    >>> import keras_sparse as ks
    >>> ks.patterns.BigBird(block_size=16, num_random_blocks=1).layout(96).astype(int)
    array([[1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 0, 1],
           [1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1],
           [1, 1, 0, 1, 1, 1]])
    >>> original = ks.patterns.BigBird(16, num_random_blocks=1, layout_style="original", random_blocks="block_zero")
    >>> original.layout(128).astype(int)[3].tolist(), round(float(original.dense_bias(128)[48, 0]), 3)
    ([1, 0, 1, 1, 1, 0, 0, 1], 0.693)

    Reference: Zaheer et al. 2020, "Big Bird: Transformers for Longer Sequences".
    """

    block_size: int = dataclasses.field()  # required: the base class's None is not a default
    num_sliding_window_blocks: int = 3
    num_global_blocks: int = 2
    num_random_blocks: int = 3
    seed: int = 0
    layout_style: str = "deepspeed"
    random_blocks: str = "drawn"
    num_heads: int | None = None

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
        self._store(
            layout_style=one_of("layout_style", self.layout_style, LAYOUT_STYLES),
            random_blocks=one_of("random_blocks", self.random_blocks, RANDOM_BLOCKS),
            num_heads=optional_positive_int("num_heads", self.num_heads),
        )
        if self.layout_style == "deepspeed" and (self.random_blocks != "drawn" or self.num_heads is not None):
            raise invalid_argument(
                "layout_style",
                "'original' with `random_blocks='block_zero'` or per-head draws (`num_heads`), which belong to the "
                "original layout",
                f"layout_style={self.layout_style!r}, random_blocks={self.random_blocks!r}, "
                f"num_heads={self.num_heads!r}",
            )

    def for_heads(self, num_heads):
        if self.layout_style == "original" and self.random_blocks == "drawn" and self.num_heads is None:
            return dataclasses.replace(self, num_heads=positive_int("num_heads", num_heads))
        return super().for_heads(num_heads)

    def head(self, index):
        return self if self.num_heads is None else _OneHead(self, index)

    def layout(self, seq_len, block_size=None):
        self.resolve_block_size(block_size)
        counts = self._counts(positive_int("seq_len", seq_len))
        return counts[0] > 0 if self.num_heads is None else counts > 0

    def allowed(self, query_index, key_index, seq_len):
        return self._head_counts(0, seq_len, query_index, key_index) > 0

    def bias(self, query_index, key_index, seq_len):
        return _log_counts(self._counts(seq_len), self._head_counts(0, seq_len, query_index, key_index))

    def full_attention(self, seq_len: int) -> bool:
        """True where the original layout falls back to full attention, as transformers does."""
        tokens = (
            self.num_global_blocks + self.num_sliding_window_blocks + 2 * self.num_random_blocks
        ) * self.block_size
        return self.layout_style == "original" and seq_len <= tokens

    def _head_counts(self, head: int, seq_len: int, query_index, key_index) -> np.ndarray:
        counts = self._counts(seq_len)[head]
        return counts[np.asarray(query_index) // self.block_size, np.asarray(key_index) // self.block_size]

    @functools.lru_cache(maxsize=8)  # noqa: B019 (patterns are small, immutable and hashable)
    def _counts(self, seq_len: int) -> np.ndarray:
        """int `(heads, num_blocks, num_blocks)`: how many times each query block lists each key block."""
        num_blocks = num_blocks_for(seq_len, self.block_size)
        rows, cols = np.indices((num_blocks, num_blocks))
        window = np.abs(rows - cols) <= self.num_sliding_window_blocks // 2
        if self.layout_style == "deepspeed":
            counts = self._deepspeed_layout(window, rows, cols)[None].astype(np.int32)
        elif self.full_attention(seq_len):
            counts = np.ones((self.num_heads or 1, num_blocks, num_blocks), np.int32)
        else:
            counts = self._original_counts(window, num_blocks)
        counts.flags.writeable = False
        return counts

    def _deepspeed_layout(self, window, rows, cols) -> np.ndarray:
        layout = window | (rows < self.num_global_blocks) | (cols < self.num_global_blocks)
        rng = np.random.default_rng(self.seed)
        for row in range(self.num_global_blocks, len(layout)):
            candidates = np.flatnonzero(~layout[row])
            if len(candidates) and self.num_random_blocks:
                chosen = rng.choice(candidates, size=min(self.num_random_blocks, len(candidates)), replace=False)
                layout[row, chosen] = True
        return layout

    def _original_counts(self, window, num_blocks: int) -> np.ndarray:
        blocks = np.arange(num_blocks)
        is_global = (blocks < -(-self.num_global_blocks // 2)) | (blocks >= num_blocks - self.num_global_blocks // 2)
        base = window | is_global[:, None] | is_global[None, :]
        counts = np.repeat(base[None].astype(np.int32), self.num_heads or 1, axis=0)
        rng = np.random.default_rng(self.seed)
        for head in range(len(counts)):
            for row in np.flatnonzero(~is_global):
                if self.random_blocks == "block_zero":
                    counts[head, row, 0] += self.num_random_blocks
                    continue
                candidates = np.flatnonzero(~base[row])
                size = min(self.num_random_blocks, len(candidates))
                counts[head, row, rng.choice(candidates, size=size, replace=False)] += 1
        return counts


def _log_counts(all_counts: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
    """`log(count)` where a block is listed more than once; None if no block of the layout is."""
    if all_counts.max() <= 1:
        return None
    return np.log(np.maximum(counts, 1)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _OneHead(Pattern):
    """Head `index` of an original-style `BigBird` whose heads draw their own random blocks."""

    parent: BigBird
    index: int
    block_size: int | None = dataclasses.field(default=None, init=False)

    def __post_init__(self):
        self._store(block_size=self.parent.block_size)

    def allowed(self, query_index, key_index, seq_len):
        return self.parent._head_counts(self.index, seq_len, query_index, key_index) > 0

    def bias(self, query_index, key_index, seq_len):
        counts = self.parent._head_counts(self.index, seq_len, query_index, key_index)
        return _log_counts(self.parent._counts(seq_len), counts)

    def layout(self, seq_len, block_size=None):
        self.resolve_block_size(block_size)
        return self.parent._counts(positive_int("seq_len", seq_len))[self.index] > 0
