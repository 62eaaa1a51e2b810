"""Plans for the gathered-block kernel: a pattern compiled into static tables, once per sequence length.

Pure NumPy, computed once per (pattern, sequence length, causal) and baked into the graph as constants, so
the kernel has no data-dependent shapes and converts to TFLite builtins.

A row's allowed keys are split into parts, each computed in the form that suits it, and the parts' softmaxes
are merged by their log-normalizers (`kernels.merged_softmax`), so every row still takes one exact softmax:
- global rows, which attend (nearly) every key, are computed one token at a time (`GlobalRows`);
- key columns that every other row attends (a global token, `Fixed`'s summaries) are gathered once into a
  slot all rows share (`SharedKeys`), instead of once per query block;
- the rest is computed in blocks: per query block, key blocks gathered by a static table (`KeyBlocks`).
  Block pairs whose scores are all allowed need no mask (FlexAttention's "full" blocks); the others are
  masked. Query blocks are grouped so that each group shares its widths (`BlockGroup`).
- Blocks are planned in up to two orders: positions as they are, and regrouped by residue mod a stride
  (`ResidueOrder`), the Sparse Transformer's reshape, in which strided or dilated keys are contiguous.
  Each allowed pair goes to the order where its block pair is densest;
- pairs left in nearly empty block pairs (random keys) are gathered per query row (`RowKeys`, ELL format).

Per-head patterns are planned per distinct head pattern (`HeadGroup`); heads with similar plain block
layouts are planned together, padded to the widest head.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from keras_sparse.patterns import Pattern
from keras_sparse.patterns.pattern import num_blocks_for

ROW_KEY_COST = 8
"""A key gathered for one query row (`RowKeys`) costs about as much as this many blocked scores: it moves its
whole key and value vectors for one query, where a block shares them among its queries (measured in
benchmarks/attention.py). Block pairs allowing fewer than 1/ROW_KEY_COST of their scores are gathered per
row instead, when that saves more than `SMALL_PART` of the plan's work."""

SMALL_PART = 0.05
"""Parts saving less than this fraction of a plan's computed scores are not made: each costs a fixed number
of ops, and a merge."""

JOINT_HEAD_WIDTH_RATIO = 1.25
"""Heads of a per-head pattern whose block widths are within this ratio are planned together (one set of ops
padded to the widest), others apart."""

MAX_UNIQUE_TABLE_ROWS = 8
"""Token tables are stored once per distinct row of blocks; beyond this many distinct rows, a bias that
depends only on `i - j` is computed in the graph from positions instead (`Pattern.offset_bias`)."""


@dataclasses.dataclass(frozen=True, eq=False)
class TokenTables:
    """The static token mask and logit bias over a part's scores, stored once per distinct row of blocks.

    Attributes:
        mask: bool `(layout_heads, stored_rows, block_size or 1, width)`, or None when every score is allowed.
        bias: float32 of the same shape, or None when the pattern adds none (or `offset_bias` computes it).
        rows: int32 `(rows,)`, the stored row each row uses; None when every row uses the only stored row, or
            row i uses stored row i.
        offset_bias: float32 `(layout_heads, 2 * seq_len - 1)`: the bias as a function of `i - j + seq_len - 1`,
            computed in the graph from positions (instead of `bias`), or None.
    """

    mask: np.ndarray | None = None
    bias: np.ndarray | None = None
    rows: np.ndarray | None = None
    offset_bias: np.ndarray | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class KeyBlocks:
    """One part of a group: the same number of key blocks gathered for each of the group's query blocks.

    Attributes:
        key_blocks: int32 `(layout_heads, rows, slots)`, the key blocks each query block gathers (slots past a
            row's own count repeat one of its blocks and are masked); None when every row takes every key
            block in order (nothing is gathered).
        num_slots: key blocks per row.
        tables: the part's token mask and bias.
    """

    key_blocks: np.ndarray | None
    num_slots: int
    tables: TokenTables


@dataclasses.dataclass(frozen=True, eq=False)
class BlockGroup:
    """Query blocks computed together: their parts (at most one unmasked, then one masked) share widths.

    Attributes:
        query_blocks: int32 `(rows,)`, increasing query-block indices (in the order's positions).
        parts: the group's `KeyBlocks`.
    """

    query_blocks: np.ndarray
    parts: tuple[KeyBlocks, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class ResidueOrder:
    """Blocks planned over positions regrouped by residue: position p sits at `(p % stride) * ceil(L / stride)
    + p // stride` (stride 1: positions as they are).

    Attributes:
        stride: the residue stride.
        num_blocks: query (and key) blocks in this order.
        groups: the query-block groups, in the order their outputs are concatenated.
        block_order: int32 `(num_blocks,)` restoring query-block order after concatenation, or None.
    """

    stride: int
    num_blocks: int
    groups: tuple[BlockGroup, ...]
    block_order: np.ndarray | None


@dataclasses.dataclass(frozen=True, eq=False)
class SharedKeys:
    """Key positions every (non-global) row attends, gathered once and shared by all query blocks.

    Attributes:
        positions: int32 `(keys,)`.
        tables: token tables over the natural query blocks, width `keys` (a causal mask, a bias).
    """

    positions: np.ndarray
    tables: TokenTables


@dataclasses.dataclass(frozen=True, eq=False)
class RowKeys:
    """Keys gathered per query row (ELL format): the scattered rest of a pattern.

    Attributes:
        keys: int32 `(layout_heads, num_blocks, block_size, width)`, the key positions of each query position
            (natural blocks); entries past a row's own count repeat one of its keys and are masked.
        tables: token tables over the same entries.
    """

    keys: np.ndarray
    tables: TokenTables


@dataclasses.dataclass(frozen=True, eq=False)
class GlobalRows:
    """Query rows computed one token at a time against every key (they attend nearly all of them).

    Attributes:
        positions: int32 `(rows,)`.
        mask: bool `(layout_heads, rows, seq_len)` or None; bias: float32 of that shape or None.
    """

    positions: np.ndarray
    mask: np.ndarray | None
    bias: np.ndarray | None


@dataclasses.dataclass(frozen=True, eq=False)
class HeadGroup:
    """The plan of some of a layer's heads.

    Attributes:
        heads: int32 `(heads,)`, the layer's heads this plans, or None for every head (a shared pattern).
        orders: block plans, natural order (stride 1) first.
        shared_keys, row_keys, global_rows: the group's other parts, or None.
        allowed: scores the pattern allows per head (the mean over the group's heads).
    """

    heads: np.ndarray | None
    orders: tuple[ResidueOrder, ...]
    shared_keys: SharedKeys | None
    row_keys: RowKeys | None
    global_rows: GlobalRows | None
    allowed: float

    @property
    def layout_heads(self) -> int:
        """Heads the tables describe separately (1 when every head of the group shares them)."""
        for order in self.orders:
            for group in order.groups:
                for part in group.parts:
                    if part.key_blocks is not None:
                        return part.key_blocks.shape[0]
                    for table in (part.tables.mask, part.tables.bias):
                        if table is not None:
                            return table.shape[0]
        return 1


@dataclasses.dataclass(frozen=True, eq=False)
class GatherPlan:
    """Everything the gathered-block kernel needs for one sequence length.

    Attributes:
        seq_len: tokens in the (unpadded) sequence.
        block_size: tokens per block.
        num_blocks: blocks covering the sequence (natural order).
        head_groups: one per set of heads planned together; a shared pattern has one, for every head.
    """

    seq_len: int
    block_size: int
    num_blocks: int
    head_groups: tuple[HeadGroup, ...]

    def computed_scores(self) -> float:
        """Attention scores the kernel computes per head (padding slots and rows included), mean over heads."""
        total, heads = 0.0, 0
        for head_group in self.head_groups:
            count = 1 if head_group.heads is None else len(head_group.heads)
            total += count * _computed_scores(head_group, self.seq_len, self.block_size)
            heads += count
        return total / heads

    def allowed_scores(self) -> float:
        """Scores the pattern allows per head (mean over heads)."""
        total = sum((1 if g.heads is None else len(g.heads)) * g.allowed for g in self.head_groups)
        return total / sum(1 if g.heads is None else len(g.heads) for g in self.head_groups)


def _computed_scores(head_group: HeadGroup, seq_len: int, block_size: int) -> float:
    total = 0
    for order in head_group.orders:
        for group in order.groups:
            total += len(group.query_blocks) * sum(p.num_slots for p in group.parts) * block_size**2
    num_blocks = num_blocks_for(seq_len, block_size)
    if head_group.shared_keys is not None:
        total += num_blocks * block_size * len(head_group.shared_keys.positions)
    if head_group.row_keys is not None:
        total += num_blocks * block_size * head_group.row_keys.keys.shape[-1]
    if head_group.global_rows is not None:
        total += len(head_group.global_rows.positions) * seq_len
    return total


def residue_positions(seq_len: int, stride: int) -> np.ndarray:
    """int `(seq_len,)`: where each position sits in the order of residue `stride`."""
    positions = np.arange(seq_len)
    return (positions % stride) * math.ceil(seq_len / stride) + positions // stride


def natural_positions(seq_len: int, stride: int, length: int) -> np.ndarray:
    """int `(length,)`: the position at each index of the order of residue `stride` (>= seq_len: padding)."""
    classes = math.ceil(seq_len / stride)
    index = np.arange(length)
    natural = (index % classes) * stride + index // classes
    return np.where(index < stride * classes, natural, seq_len)


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


def plan_gathered_blocks(
    pattern: Pattern,
    seq_len: int,
    block_size: int | None = None,
    causal: bool = False,
    max_query_blocks: int | None = None,
    single_part: bool = False,
) -> GatherPlan:
    """Builds the tables of `pattern` for sequences of `seq_len` tokens.

    `max_query_blocks` splits groups so that none holds more query blocks: more, smaller steps with the
    same numbers and fewer tensors live at once (each step gathering its own queries).

    `single_part=True` plans every row as one masked `KeyBlocks` part in natural order, every head in one
    `HeadGroup` (per-head tables): a row's keys are then one table row, as `kernels.cached_rows` needs to
    compute rows one at a time; the other parts only pay when whole sequences are computed.

    Example:

    >>> import keras_sparse as ks
    >>> plan = ks.kernels.plan_gathered_blocks(ks.patterns.BigBird(block_size=16), seq_len=256)
    >>> [(g.query_blocks.tolist(), [p.num_slots for p in g.parts]) for g in plan.head_groups[0].orders[0].groups]
    [([0, 1], [16]), ([2, 15], [7]), ([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14], [8])]
    """
    block_size = pattern.resolve_block_size(block_size)
    pattern.check_fits(seq_len)
    planner = _Planner(seq_len, block_size, causal, max_query_blocks, single_part)
    if single_part:
        heads = None if pattern.num_heads is None else np.arange(pattern.num_heads, dtype=np.int32)
        head_patterns = [pattern] if heads is None else [pattern.head(h) for h in heads]
        head_groups = [planner.plan_joint(head_patterns, heads)]
    elif pattern.num_heads is None:
        head_groups = [planner.plan(pattern, None)]
    else:
        head_groups = planner.plan_per_head([pattern.head(h) for h in range(pattern.num_heads)])
    return GatherPlan(seq_len, block_size, planner.num_blocks, tuple(head_groups))


class _Planner:
    """Plans head patterns for one (sequence length, block size, causal, max_query_blocks)."""

    def __init__(
        self, seq_len: int, block_size: int, causal: bool, max_query_blocks: int | None, single_part: bool = False
    ):
        self.seq_len, self.block_size, self.causal = seq_len, block_size, causal
        self.max_query_blocks, self.single_part = max_query_blocks, single_part
        self.num_blocks = num_blocks_for(seq_len, block_size)

    # ---- heads ------------------------------------------------------------------------------------------

    def plan_per_head(self, patterns: list[Pattern]) -> list[HeadGroup]:
        """Distinct head patterns planned apart; plain block layouts of similar width planned together."""
        distinct: dict[Pattern, list[int]] = {}
        for head, pattern in enumerate(patterns):
            distinct.setdefault(pattern, []).append(head)
        planned = [(p, np.array(h, np.int32), self.plan(p, np.array(h, np.int32))) for p, h in distinct.items()]
        groups = [plan for _, _, plan in planned if not _is_plain(plan)]
        plain = sorted(
            ((self._width(plan), pattern, heads, plan) for pattern, heads, plan in planned if _is_plain(plan)),
            key=lambda item: item[0],
        )
        runs: list[list] = []
        for item in plain:
            if runs and item[0] <= JOINT_HEAD_WIDTH_RATIO * runs[-1][0][0]:
                runs[-1].append(item)
            else:
                runs.append([item])
        for run in runs:
            if len(run) == 1:
                groups.append(run[0][3])
                continue
            heads = np.concatenate([item[2] for item in run])
            groups.append(self.plan_joint([item[1] for item in run for _ in item[2]], heads))
        return sorted(groups, key=lambda g: int(g.heads[0]))

    def _width(self, plan: HeadGroup) -> float:
        return _computed_scores(plan, self.seq_len, self.block_size)

    def plan_joint(self, patterns: list[Pattern], heads: np.ndarray | None) -> HeadGroup:
        """Heads with different layouts in one set of tables (one row per layout head), each row padded to its
        widest head."""
        none = np.zeros(0, np.int64)
        full, coords = [], []
        for head, pattern in enumerate(patterns):
            head_full, (query, key) = self._enumerate(pattern, self._layout(pattern), none, none)
            full.append(np.concatenate([np.full((len(head_full), 1), head), head_full], 1))
            coords.append(np.stack([np.full(len(query), head), query, key], 1))
        full, coords = np.concatenate(full).astype(np.int64), np.concatenate(coords).astype(np.int64)
        order = self._build_order(1, patterns, full, coords)
        return HeadGroup(heads, (order,), None, None, None, self._allowed_count(full, coords) / len(patterns))

    # ---- one pattern ------------------------------------------------------------------------------------

    def plan(self, pattern: Pattern, heads: np.ndarray | None) -> HeadGroup:
        """Every part of one head pattern (shared by `heads`)."""
        layout = self._layout(pattern)
        global_rows, layout = self._global_rows(pattern, layout)
        shared, layout = self._shared_keys(pattern, layout, global_rows)
        full, (query, key) = self._enumerate(pattern, layout, global_rows, shared)
        full = np.concatenate([np.zeros((len(full), 1), np.int64), full], 1)
        coords = np.stack([np.zeros_like(query), query, key], 1)
        strides = [s for s in pattern.residue_strides() if 1 < s < self.seq_len]
        assigned = self._assign(full, coords, strides)
        row_pairs = assigned.pop()[1]
        row_keys = self._row_keys(pattern, coords[row_pairs]) if len(row_pairs) else None
        shared_keys = self._shared_tables(pattern, shared) if len(shared) else None
        natural_is_empty = not len(full) and not len(assigned[0][1])
        if natural_is_empty and (len(assigned) > 1 or row_keys is not None or shared_keys is not None):
            assigned = assigned[1:]  # every row is covered by the other parts
        orders = tuple(
            self._build_order(stride, [pattern], full if stride == 1 else full[:0], coords[selected])
            for stride, selected in assigned
        )
        allowed = self._allowed_count(full, coords) + self._other_allowed(pattern, global_rows, shared)
        global_rows = self._global_tables(pattern, global_rows)
        return HeadGroup(heads, orders, shared_keys, row_keys, global_rows, allowed)

    def _layout(self, pattern: Pattern, causal: bool | None = None) -> np.ndarray:
        layout = np.array(pattern.layout(self.seq_len, self.block_size), dtype=bool)
        if self.causal if causal is None else causal:
            layout &= np.tri(self.num_blocks, dtype=bool)
        return layout

    def _allowed_rows(self, pattern: Pattern, queries: np.ndarray, keys: np.ndarray, causal=None) -> np.ndarray:
        allowed = np.broadcast_to(
            pattern.allowed(queries[:, None], keys[None, :], self.seq_len), (len(queries), len(keys))
        )
        if self.causal if causal is None else causal:
            allowed = allowed & (keys[None, :] <= queries[:, None])
        return allowed

    def _block_positions(self, block: int) -> np.ndarray:
        return np.arange(block * self.block_size, min(self.seq_len, (block + 1) * self.block_size))

    def _global_rows(self, pattern: Pattern, layout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of exceptionally wide query blocks that are cheaper one token at a time than in their block."""
        counts = layout.sum(1)
        keys = np.arange(self.seq_len)
        rows = []
        for block in np.flatnonzero((counts >= 4) & (counts > 2 * np.median(counts))):
            queries = self._block_positions(block)
            allowed = self._allowed_rows(pattern, queries, keys)
            ranked = np.argsort(-allowed.sum(1), kind="stable")
            padded = np.zeros((len(queries), self.num_blocks * self.block_size), bool)
            padded[:, : self.seq_len] = allowed[ranked]
            per_block = padded.reshape(len(queries), self.num_blocks, self.block_size).any(-1)
            # the key blocks still needed once the k widest rows are taken out, for every k
            needed = np.concatenate(
                [np.logical_or.accumulate(per_block[::-1], axis=0)[::-1], np.zeros((1, self.num_blocks), bool)]
            )
            costs = np.arange(len(queries) + 1) * self.seq_len + self.block_size**2 * needed.sum(1)
            best = int(np.argmin(costs))  # the first minimum: ties keep rows in their block
            if best:
                rows.append(queries[ranked[:best]])
                layout[block] = needed[best]
        return (np.sort(np.concatenate(rows)) if rows else np.zeros(0, np.int64)), layout

    def _shared_keys(self, pattern: Pattern, layout: np.ndarray, global_rows: np.ndarray):
        """Key positions every non-global row attends (causality aside), in key blocks not made only of them."""
        queries = np.setdiff1d(np.arange(self.seq_len), global_rows)
        candidates = self._layout(pattern, causal=False)
        candidates[np.unique(global_rows // self.block_size)] = True
        shared = []
        for block in np.flatnonzero(candidates.all(0)) if len(queries) else []:
            keys = self._block_positions(block)
            allowed = self._allowed_rows(pattern, queries, keys, causal=False)
            columns = allowed.all(0)
            if columns.all() or not columns.any():
                continue
            shared.append(keys[columns])
            rest = self._allowed_rows(pattern, queries, keys[~columns]).any(1)
            layout[:, block] = False
            layout[np.unique(queries[rest] // self.block_size), block] = True
        return (np.concatenate(shared) if shared else np.zeros(0, np.int64)), layout

    def _enumerate(self, pattern, layout, global_rows, shared):
        """Block pairs `(query block, key block)` whose every score is allowed, and the allowed token pairs
        `(queries, keys)` of the layout's other block pairs."""
        b = self.block_size
        excluded_rows = np.zeros(self.seq_len, bool)
        excluded_rows[global_rows] = True
        excluded_keys = np.zeros(self.seq_len, bool)
        excluded_keys[shared] = True
        full, queries, keys = [], [], []
        for block in np.flatnonzero(layout.any(1)):
            query_positions = self._block_positions(block)
            key_blocks = np.flatnonzero(layout[block])
            key_positions = np.concatenate([self._block_positions(c) for c in key_blocks])
            allowed = self._allowed_rows(pattern, query_positions, key_positions)
            allowed = allowed & ~excluded_keys[key_positions][None, :] & ~excluded_rows[query_positions][:, None]
            real_rows = not excluded_rows[query_positions].any()
            starts = np.searchsorted(key_positions, key_blocks * b)
            for c, start, end in zip(key_blocks, starts, np.append(starts[1:], len(key_positions)), strict=True):
                cell = allowed[:, start:end]
                if end - start == b and real_rows and cell.all():
                    full.append((block, c))
                    continue
                i, j = np.nonzero(cell)
                queries.append(query_positions[i])
                keys.append(key_positions[start + j])
        full = np.array(full, np.int64).reshape(-1, 2)
        if not queries:
            return full, (np.zeros(0, np.int64), np.zeros(0, np.int64))
        return full, (np.concatenate(queries).astype(np.int64), np.concatenate(keys).astype(np.int64))

    def _allowed_count(self, full: np.ndarray, coords: np.ndarray) -> int:
        real = np.array([len(self._block_positions(c)) for c in range(self.num_blocks)])
        return (int((real[full[:, 1]] * real[full[:, 2]]).sum()) if len(full) else 0) + len(coords)

    def _other_allowed(self, pattern, global_rows, shared) -> int:
        allowed = 0
        if len(global_rows):
            allowed += int(self._allowed_rows(pattern, global_rows, np.arange(self.seq_len)).sum())
        if len(shared):
            queries = np.setdiff1d(np.arange(self.seq_len), global_rows)
            allowed += int(self._allowed_rows(pattern, queries, shared).sum())
        return allowed

    # ---- which order computes which pair ----------------------------------------------------------------

    def _assign(self, full, coords, strides) -> list[tuple[int, np.ndarray]]:
        """Token pairs per order (1, then each stride that gets pairs) and per row keys (stride 0)."""
        b = self.block_size
        everything = np.arange(len(coords))
        if not len(coords):
            return [(1, everything), (0, everything)]
        densities, cells = [], []
        for stride in [1, *strides]:
            where = residue_positions(self.seq_len, stride)
            blocks = math.ceil(stride * math.ceil(self.seq_len / stride) / b)
            cell = where[coords[:, 1]] // b * blocks + where[coords[:, 2]] // b
            densities.append(np.bincount(cell)[cell] / b**2)
            cells.append(cell)
        densities = np.stack(densities)
        best = np.argmax(densities, axis=0)  # ties: the natural order first
        sparse = densities[best, everything] < 1 / ROW_KEY_COST
        if sparse.any():
            # gathering the sparse pairs per row frees the block pairs that hold nothing else
            freed, computed = 0, len(full)
            for index, cell in enumerate(cells):
                mine = best == index
                freed += len(np.setdiff1d(np.unique(cell[mine & sparse]), np.unique(cell[mine & ~sparse])))
                computed += len(np.unique(cell[mine]))
            width = np.bincount(coords[sparse, 1]).max()
            saved = (freed * b - ROW_KEY_COST * width * self.num_blocks) * b
            if saved < SMALL_PART * computed * b**2:
                sparse[:] = False
        assigned = [(1, np.flatnonzero((best == 0) & ~sparse))]
        assigned += [(s, np.flatnonzero((best == i + 1) & ~sparse)) for i, s in enumerate(strides)]
        assigned = [(s, selected) for s, selected in assigned if s == 1 or len(selected)]
        return [*assigned, (0, np.flatnonzero(sparse))]

    # ---- blocks -----------------------------------------------------------------------------------------

    def _build_order(self, stride: int, patterns: list[Pattern], full: np.ndarray, coords: np.ndarray):
        """The groups of one order from its full block pairs `(head, qb, kb)` (natural order only) and its
        token pairs `(head, query, key)`."""
        b = self.block_size
        heads = len(patterns)
        num_blocks = math.ceil(stride * math.ceil(self.seq_len / stride) / b)
        where = residue_positions(self.seq_len, stride)
        natural = natural_positions(self.seq_len, stride, num_blocks * b)
        real = (natural < self.seq_len).reshape(num_blocks, b).sum(1)
        head, query, key = coords[:, 0], where[coords[:, 1]], where[coords[:, 2]]
        cell = (head * num_blocks + query // b) * num_blocks + key // b
        counts = np.bincount(cell, minlength=heads * num_blocks**2).reshape(heads, num_blocks, num_blocks)
        is_full = np.zeros_like(counts, dtype=bool)
        is_full[full[:, 0], full[:, 1], full[:, 2]] = True
        is_full |= (counts > 0) & (counts == real[:, None] * real[None, :]) & (real[None, :] == b)
        is_partial = (counts > 0) & ~is_full
        unmasked = is_full.sum(-1).min(0)
        total = np.maximum((is_full | is_partial).sum(-1).max(0), 1)  # a row without keys gets one masked slot
        context = _OrderContext(patterns, natural, is_full, is_partial, head, query, key)
        groups = sorted(
            (self._group(rows, context) for rows in self._group_rows(unmasked, total)), key=lambda g: g.query_blocks[0]
        )
        concatenated = np.concatenate([g.query_blocks for g in groups])
        block_order = None if (concatenated == np.arange(num_blocks)).all() else np.argsort(concatenated)
        return ResidueOrder(
            stride, num_blocks, tuple(groups), None if block_order is None else block_order.astype(np.int32)
        )

    def _group_rows(self, unmasked: np.ndarray, total: np.ndarray) -> list[np.ndarray]:
        """The largest class of rows with equal (unmasked, total) widths; the others split by total width."""
        signature = unmasked * (total.max() + 1) + total
        values, counts = np.unique(signature, return_counts=True)
        common = signature == values[np.argmax(counts)]
        groups = [np.flatnonzero(common)]
        rest = np.flatnonzero(~common)
        if len(rest):
            groups += [rest[part] for part in split_rows(total[rest])]
        if self.max_query_blocks is not None:
            groups = [part for g in groups for part in np.array_split(g, -(-len(g) // self.max_query_blocks))]
        return [g.astype(np.int32) for g in groups]

    def _group(self, rows: np.ndarray, context: _OrderContext) -> BlockGroup:
        heads, num_blocks = context.is_full.shape[:2]
        full_blocks = [[np.flatnonzero(context.is_full[h, r]) for r in rows] for h in range(heads)]
        other_blocks = [[np.flatnonzero(context.is_partial[h, r]) for r in rows] for h in range(heads)]
        unmasked = 0 if self.single_part else min(len(blocks) for per_head in full_blocks for blocks in per_head)
        width = max(
            len(f) + len(o)
            for fs, os_ in zip(full_blocks, other_blocks, strict=True)
            for f, o in zip(fs, os_, strict=True)
        )
        parts = []
        if unmasked:
            key_blocks = np.array([[blocks[:unmasked] for blocks in per_head] for per_head in full_blocks], np.int32)
            dense = unmasked == num_blocks
            parts.append(self._block_part(rows, key_blocks, None, context, dense))
        masked = max(width, 1) - unmasked
        if masked:
            key_blocks = np.zeros((heads, len(rows), masked), np.int32)
            used = np.zeros((heads, len(rows), masked), bool)  # slots past a row's own blocks are padding
            for h in range(heads):
                for i, row in enumerate(rows):
                    ids = np.concatenate([full_blocks[h][i][unmasked:], other_blocks[h][i]])
                    key_blocks[h, i] = np.concatenate([ids, np.full(masked - len(ids), ids[0] if len(ids) else row)])
                    used[h, i, : len(ids)] = True
            parts.append(self._block_part(rows, key_blocks, self._part_mask(rows, key_blocks, used, context), context))
        return BlockGroup(rows, tuple(parts))

    def _part_mask(self, rows, key_blocks, used, context: _OrderContext) -> np.ndarray:
        """bool `(heads, rows, b, slots * b)`: full blocks all allowed, the others' pairs from the token pairs,
        padding slots (`~used`) nothing."""
        b = self.block_size
        heads, count, slots = key_blocks.shape
        full = context.is_full[np.arange(heads)[:, None, None], rows[None, :, None], key_blocks] & used
        mask = np.broadcast_to(full[:, :, None, :, None], (heads, count, b, slots, b)).copy()
        slot_of = np.full((heads, count, context.is_full.shape[1]), -1)
        for slot in range(slots):
            heads_used, rows_used = np.nonzero(used[:, :, slot])
            slot_of[heads_used, rows_used, key_blocks[heads_used, rows_used, slot]] = slot
        row_of = np.full(context.is_full.shape[1], -1)
        row_of[rows] = np.arange(count)
        row = row_of[context.query // b]
        mine = np.flatnonzero(row >= 0)
        slot = slot_of[context.head[mine], row[mine], context.key[mine] // b]
        mine, slot = mine[slot >= 0], slot[slot >= 0]
        mask[context.head[mine], row[mine], context.query[mine] % b, slot, context.key[mine] % b] = True
        return mask.reshape(heads, count, b, slots * b)

    def _block_part(self, rows, key_blocks, mask, context: _OrderContext, dense: bool = False) -> KeyBlocks:
        b = self.block_size
        heads, count, slots = key_blocks.shape
        query_positions = context.natural[rows[:, None] * b + np.arange(b)]  # (rows, b)
        key_positions = context.natural[(key_blocks[..., None] * b + np.arange(b)).reshape(heads, count, -1)]
        bias, offset = self._bias(context.patterns, query_positions, key_positions, key_blocks - rows[:, None])
        return KeyBlocks(None if dense else key_blocks, slots, _deduplicated(mask, bias, offset))

    def _bias(self, patterns, query_positions, key_positions, relative_blocks):
        """`(bias table or None, offset table or None)` over `(heads, rows, b, width)` positions."""
        sources = [self._bias_source(p) for p in patterns]
        if all(source is None for source in sources):
            return None, None
        heads, rows = key_positions.shape[:2]
        shape = (heads, rows, query_positions.shape[1], key_positions.shape[2])
        if all(isinstance(source, np.ndarray) for source in sources):
            distinct_rows = len(np.unique(relative_blocks.transpose(1, 0, 2).reshape(rows, -1), axis=0))
            if distinct_rows > MAX_UNIQUE_TABLE_ROWS:
                return None, np.stack(sources)
        queries = np.minimum(query_positions, self.seq_len - 1)[:, :, None]
        keys = np.minimum(key_positions, self.seq_len - 1)[:, :, None, :]
        bias = np.zeros(shape, np.float32)
        for h in range(heads):
            pattern = patterns[h if len(patterns) == heads else 0]
            value = pattern.bias(queries, keys[h], self.seq_len)
            if value is not None:
                bias[h] = np.broadcast_to(value, shape[1:])
        return bias, None

    def _bias_source(self, pattern: Pattern):
        """None (no bias), the offset table `(2 * seq_len - 1,)`, or the pattern (its bias at positions)."""
        probe = np.arange(min(self.seq_len, 2))
        if pattern.bias(probe[:, None], probe[None, :], self.seq_len) is None:
            return None
        table = pattern.offset_bias(np.arange(1 - self.seq_len, self.seq_len), self.seq_len)
        return pattern if table is None else np.asarray(table, np.float32)

    # ---- other parts ------------------------------------------------------------------------------------

    def _row_keys(self, pattern: Pattern, coords: np.ndarray) -> RowKeys:
        b = self.block_size
        order = np.lexsort((coords[:, 2], coords[:, 1]))
        query, key = coords[order, 1], coords[order, 2]
        counts = np.bincount(query, minlength=self.num_blocks * b)
        width = int(counts.max())
        slot = np.arange(len(query)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[query]
        keys = np.zeros((self.num_blocks * b, width), np.int64)
        keys[query, slot] = key
        used = np.arange(width)[None, :] < counts[:, None]
        keys = np.where(used, keys, keys[:, :1])
        bias = None
        if self._bias_source(pattern) is not None:
            positions = np.minimum(np.arange(self.num_blocks * b), self.seq_len - 1)
            bias = np.broadcast_to(pattern.bias(positions[:, None], keys, self.seq_len), keys.shape)
            bias = bias.astype(np.float32).reshape(1, self.num_blocks, b, width)
        mask = None if used.all() else used.reshape(1, self.num_blocks, b, width)
        return RowKeys(keys.astype(np.int32).reshape(1, self.num_blocks, b, width), TokenTables(mask, bias))

    def _shared_tables(self, pattern: Pattern, shared: np.ndarray) -> SharedKeys:
        b = self.block_size
        queries = np.arange(self.num_blocks * b)[:, None]
        mask = (shared[None, :] <= queries).reshape(1, self.num_blocks, b, -1) if self.causal else None
        bias = None
        if self._bias_source(pattern) is not None:
            value = pattern.bias(np.minimum(queries, self.seq_len - 1), shared[None, :], self.seq_len)
            bias = np.broadcast_to(value, (len(queries), len(shared))).astype(np.float32)
            bias = bias.reshape(1, self.num_blocks, b, -1)
        return SharedKeys(shared.astype(np.int32), _deduplicated(mask, bias, None))

    def _global_tables(self, pattern: Pattern, rows: np.ndarray) -> GlobalRows | None:
        if not len(rows):
            return None
        keys = np.arange(self.seq_len)
        mask = self._allowed_rows(pattern, rows, keys)
        bias = None
        if self._bias_source(pattern) is not None:
            bias = np.broadcast_to(pattern.bias(rows[:, None], keys[None, :], self.seq_len), mask.shape)
            bias = bias.astype(np.float32)[None]
        return GlobalRows(rows.astype(np.int32), None if mask.all() else mask[None], bias)


@dataclasses.dataclass(frozen=True, eq=False)
class _OrderContext:
    """What building one order's groups needs: its patterns, positions and pairs (in the order's indices)."""

    patterns: list[Pattern]
    natural: np.ndarray
    is_full: np.ndarray
    is_partial: np.ndarray
    head: np.ndarray
    query: np.ndarray
    key: np.ndarray


def _is_plain(head_group: HeadGroup) -> bool:
    """True for a plan of blocks in the natural order only (which other heads' plain plans can join)."""
    return (
        len(head_group.orders) == 1
        and head_group.orders[0].stride == 1
        and head_group.shared_keys is None
        and head_group.row_keys is None
        and head_group.global_rows is None
    )


def _deduplicated(mask: np.ndarray | None, bias: np.ndarray | None, offset: np.ndarray | None) -> TokenTables:
    """Tables stored once per distinct row of blocks (and once per block when its query rows agree)."""
    if mask is not None and mask.all():
        mask = None
    if bias is not None and not bias.any():
        bias = None
    present = [t for t in (mask, bias) if t is not None]
    if not present:
        return TokenTables(offset_bias=offset)
    rows = present[0].shape[1]
    seen: dict[bytes, int] = {}
    inverse = np.array(
        [seen.setdefault(b"".join(t[:, row].tobytes() for t in present), len(seen)) for row in range(rows)]
    )
    first = np.unique(inverse, return_index=True)[1]  # labels are numbered in order of first appearance
    index = None
    if len(first) < rows:
        mask = None if mask is None else mask[:, first]
        bias = None if bias is None else bias[:, first]
        index = None if len(first) == 1 else inverse.reshape(-1).astype(np.int32)
    if all((t == t[:, :, :1]).all() for t in (mask, bias) if t is not None):
        mask = None if mask is None else mask[:, :, :1]
        bias = None if bias is None else bias[:, :, :1]
    return TokenTables(
        None if mask is None else np.ascontiguousarray(mask),
        None if bias is None else np.ascontiguousarray(bias),
        index,
        offset,
    )
