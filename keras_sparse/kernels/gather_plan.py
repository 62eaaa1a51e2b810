"""Plans for the gathered-block kernel: static tables of which key blocks each query block needs.

Pure NumPy, computed once per (pattern, sequence length, causal) and baked into the
graph as constants, so the kernel has no data-dependent shapes and converts to
TFLite builtins.

Rows of a layout are ragged (BigBird's global query blocks need every key block,
the others a handful), so query blocks are split into at most two groups by width,
each padded only to its own widest row: global rows never make every row dense.
Within each, the query blocks whose gathered scores are all allowed form a group
of their own that the kernel computes without a mask (a quarter of the kernel's
time at L=4096 for BigBird, where all but two interior blocks are such).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from keras_sparse.patterns import Pattern


@dataclasses.dataclass(frozen=True, eq=False)
class BlockGroup:
    """Query blocks computed together against the same number of key-block slots.

    Attributes:
        query_blocks: int32 `(n,)`, increasing query-block indices.
        key_blocks: int32 `(layout_heads, n, slots)`, the key blocks each query block gathers;
            slots past a row's own count repeat one of its blocks and are masked out.
        mask: bool `(layout_heads, n, block_size or 1, slots * block_size)`, the exact token mask
            over the gathered keys (one row per block when every row of a block is the same), or
            None when every gathered score is allowed (the kernel then skips masking).
        bias: float32 logit bias shaped like `mask`, or None when the pattern adds none.
    """

    query_blocks: np.ndarray
    key_blocks: np.ndarray
    mask: np.ndarray | None
    bias: np.ndarray | None = None

    @property
    def num_slots(self) -> int:
        return self.key_blocks.shape[-1]


@dataclasses.dataclass(frozen=True, eq=False)
class GatherPlan:
    """Everything the gathered-block kernel needs for one sequence length.

    Attributes:
        seq_len: tokens in the (unpadded) sequence.
        block_size: tokens per block; the sequence is padded to `num_blocks * block_size`.
        num_blocks: query (and key) blocks.
        groups: the query-block groups, in the order their outputs are concatenated.
        block_order: int32 `(num_blocks,)` that restores query-block order after concatenation,
            or None when the concatenation is already in order.
    """

    seq_len: int
    block_size: int
    num_blocks: int
    groups: tuple[BlockGroup, ...]
    block_order: np.ndarray | None

    @property
    def layout_heads(self) -> int:
        return self.groups[0].key_blocks.shape[0]

    def computed_scores(self) -> int:
        """Attention scores the kernel computes per head (padding slots included)."""
        return sum(len(g.query_blocks) * g.num_slots for g in self.groups) * self.block_size**2

    def allowed_scores(self) -> int:
        """Scores the mask allows per head (padded query rows of the last block included)."""
        allowed = 0
        for group in self.groups:
            if group.mask is None:
                allowed += len(group.query_blocks) * group.num_slots * self.block_size**2
            else:
                rows_per_stored_row = self.block_size // group.mask.shape[2]
                allowed += int(group.mask.sum()) * rows_per_stored_row // self.layout_heads
        return allowed


def split_rows(counts: np.ndarray) -> list[np.ndarray]:
    """Splits query blocks into at most two groups minimising `sum(len(group) * max count in group)`."""
    order = np.argsort(counts, kind="stable")
    ranked = counts[order]
    n = len(counts)
    best_split, best_cost = n, n * ranked[-1]
    for split in range(1, n):
        cost = split * ranked[split - 1] + (n - split) * ranked[-1]
        if cost < best_cost:
            best_split, best_cost = split, cost
    groups = [np.sort(order[:best_split]), np.sort(order[best_split:])]
    groups = [g.astype(np.int32) for g in groups if len(g)]
    return sorted(groups, key=lambda g: g[0])


def _make_group(pattern: Pattern, layout: np.ndarray, rows: np.ndarray, block_size: int, seq_len: int, causal: bool):
    layout_heads = layout.shape[0]
    slots = max(1, int(layout[:, rows].sum(-1).max()))
    key_blocks = np.zeros((layout_heads, len(rows), slots), dtype=np.int32)
    slot_used = np.zeros((layout_heads, len(rows), slots), dtype=bool)
    for head in range(layout_heads):
        for i, row in enumerate(rows):
            ids = np.flatnonzero(layout[head, row])
            key_blocks[head, i, : len(ids)] = ids
            key_blocks[head, i, len(ids) :] = ids[0] if len(ids) else 0
            slot_used[head, i, : len(ids)] = True
    offsets = np.arange(block_size)
    query_pos = (rows[:, None] * block_size + offsets)[:, :, None]  # (n, b, 1)
    key_pos = (key_blocks[..., None] * block_size + offsets).reshape(layout_heads, len(rows), 1, -1)
    shape = (len(rows), block_size, slots * block_size)
    masks, biases = [], []
    for head in range(layout_heads):
        head_pattern = pattern.head(head)
        masks.append(np.broadcast_to(head_pattern.allowed(query_pos, key_pos[head], seq_len), shape))
        bias = head_pattern.bias(query_pos, key_pos[head], seq_len)
        biases.append(None if bias is None else np.broadcast_to(bias, shape))
    mask = np.stack(masks) & (key_pos < seq_len) & np.repeat(slot_used, block_size, axis=-1)[:, :, None, :]
    if causal:
        mask &= key_pos <= query_pos[None]
    bias = None
    if any(b is not None for b in biases):
        bias = np.stack([np.zeros(shape, np.float32) if b is None else b for b in biases]).astype(np.float32)
    if (mask == mask[:, :, :1]).all() and (bias is None or (bias == bias[:, :, :1]).all()):
        mask = mask[:, :, :1]
        bias = None if bias is None else bias[:, :, :1]
    bias = None if bias is None else np.ascontiguousarray(bias)
    mask = None if mask.all() else np.ascontiguousarray(mask)
    return BlockGroup(query_blocks=rows, key_blocks=key_blocks, mask=mask, bias=bias)


def _split_unmasked(group: BlockGroup, make_group) -> list[BlockGroup]:
    """Splits off the query blocks whose every gathered score is allowed: they need no mask at all."""
    if group.mask is None:
        return [group]
    unmasked = group.mask.all(axis=(0, 2, 3))
    if not unmasked.any():
        return [group]
    return [make_group(group.query_blocks[unmasked]), make_group(group.query_blocks[~unmasked])]


def plan_gathered_blocks(
    pattern: Pattern,
    seq_len: int,
    block_size: int | None = None,
    causal: bool = False,
    max_query_blocks: int | None = None,
) -> GatherPlan:
    """Builds the gather tables of `pattern` for sequences of `seq_len` tokens.

    `max_query_blocks` splits groups so that none holds more query blocks: more, smaller steps with the
    same numbers and fewer tensors live at once (each step gathering its own queries).

    Example:

    >>> import keras_sparse as ks
    >>> plan = ks.kernels.plan_gathered_blocks(ks.patterns.BigBird(block_size=16), seq_len=256)
    >>> [(g.query_blocks.tolist(), g.num_slots, g.mask is None) for g in plan.groups]
    [([0, 1], 16, True), ([2, 15], 7, True), ([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14], 8, True)]
    """
    block_size = pattern.resolve_block_size(block_size)
    layout = pattern.layout(seq_len, block_size)
    if layout.ndim == 2:
        layout = layout[None]
    num_blocks = layout.shape[-1]
    if causal:
        layout = layout & np.tri(num_blocks, dtype=bool)
    counts = layout.sum(-1).max(0)
    make_group = functools.partial(_make_group, pattern, layout, block_size=block_size, seq_len=seq_len, causal=causal)
    groups = [part for rows in split_rows(counts) for part in _split_unmasked(make_group(rows), make_group)]
    if max_query_blocks is not None:
        groups = [
            make_group(rows)
            for group in groups
            for rows in np.array_split(group.query_blocks, -(-len(group.query_blocks) // max_query_blocks))
        ]
    groups = tuple(sorted(groups, key=lambda g: g.query_blocks[0]))
    order = np.concatenate([g.query_blocks for g in groups])
    block_order = None if (order == np.arange(num_blocks)).all() else np.argsort(order).astype(np.int32)
    return GatherPlan(seq_len, block_size, num_blocks, groups, block_order)
