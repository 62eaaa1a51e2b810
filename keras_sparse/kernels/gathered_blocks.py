"""The gathered-block kernel: attention computed part by part as a `GatherPlan` lays it out.

Per query block, key/value blocks gathered by static tables, batched matmuls, a softmax per part, and the
parts merged by their log-normalizers (`kernels.merged_softmax`); shared key columns, residue classes, keys
gathered per row and global rows as the plan says. Every op is a TFLite builtin (GATHER, BATCH_MATMUL, MUL,
SOFTMAX, RESHAPE, TRANSPOSE, PAD, CONCATENATION, ...), and every shape is static but the batch.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from keras_sparse.kernels.blockwise_softmax import blockwise_part, chunk_width
from keras_sparse.kernels.gather_plan import (
    GatherPlan,
    GlobalRows,
    HeadGroup,
    KeyBlocks,
    ResidueOrder,
    TokenTables,
    natural_positions,
)
from keras_sparse.kernels.masked_softmax import MASK_MARGIN, finite_scores, masked_scores, masked_softmax
from keras_sparse.kernels.merged_softmax import merge_parts, softmax_and_log_normalizer
from keras_sparse.kernels.padding import pad_sequence


def gathered_block_attention(
    query: tf.Tensor,
    key: tf.Tensor,
    value: tf.Tensor,
    plan: GatherPlan,
    key_mask: tf.Tensor | None = None,
    attention_mask: tf.Tensor | None = None,
    dropout=None,
    return_scores: bool = False,
    on_block_mass=None,
    blockwise_softmax: bool = False,
):
    """Attention restricted to the plan's parts, exact at token level.

    Args:
        query: `(B, T, H, key_dim)`, already scaled by `1/sqrt(key_dim)`.
        key: `(B, T, H, key_dim)`.
        value: `(B, T, H, value_dim)`.
        plan: from `plan_gathered_blocks(pattern, T, ...)`.
        key_mask: optional bool `(B, T)`: False for padding keys.
        attention_mask: optional bool `(B, T, T)`, ANDed with the pattern.
        dropout: optional callable applied to the attention probabilities.
        return_scores: also return the probabilities as a dense `(B, H, T, T)` tensor (O(T^2): small T only).
        on_block_mass: optional callable given the float32 `(H, num_blocks, num_blocks)` sums of the
            probabilities over the batch and the tokens of each block pair (the attention-blocks pruning
            statistic).
        blockwise_softmax: take each part's softmax within chunks of its keys, then across the chunks
            (`kernels.blockwise_softmax`): the same numbers in float, far more accurate int8 files.

    Returns:
        `(output (B, T, H, value_dim), scores or None)`.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> plan = ks.kernels.plan_gathered_blocks(ks.patterns.BlockLocal(block_size=4), seq_len=8)
    >>> x = np.ones((1, 8, 2, 3), "float32")
    >>> out, _ = ks.kernels.gathered_block_attention(x, x, x, plan)
    >>> tuple(out.shape)
    (1, 8, 2, 3)
    """
    heads = query.shape[2]
    masks = _DynamicMasks(key_mask, attention_mask, plan.seq_len)
    want_entries = return_scores or on_block_mass is not None
    outputs, entries, order = [], [], []
    for head_group in plan.head_groups:
        selected = np.arange(heads) if head_group.heads is None else head_group.heads
        every = len(selected) == heads and (selected == np.arange(heads)).all()
        q, k, v = (x if every else _gather(x, selected, axis=2) for x in (query, key, value))
        attention = _HeadGroupAttention(head_group, plan, q, k, v, masks, dropout, blockwise_softmax, want_entries)
        outputs.append(attention.output)
        entries += [(probabilities, selected, *positions) for probabilities, *positions in attention.entries]
        order.append(selected)
    output = outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=1)
    order = np.concatenate(order)
    if (order != np.arange(heads)).any():
        output = _gather(output, np.argsort(order), axis=1)
    output = tf.transpose(output, (0, 2, 1, 3))
    if on_block_mass is not None:
        on_block_mass(_block_mass(entries, plan, heads))
    return output, _dense_probabilities(entries, plan, heads) if return_scores else None


def _heads_first(x: tf.Tensor) -> tf.Tensor:
    """(B, T, H, d) -> (B, H, T, d)."""
    return tf.transpose(x, (0, 2, 1, 3))


def to_order(x: tf.Tensor, stride: int, seq_len: int, num_blocks: int, block_size: int) -> tf.Tensor:
    """`(B, H, T, c)` in natural order -> `(B, H, num_blocks, block_size, c)` in the order of residue `stride`."""
    if stride > 1:
        classes = math.ceil(seq_len / stride)
        x = pad_sequence(x, classes * stride, axes=(2,))
        x = tf.reshape(x, (-1, x.shape[1], classes, stride, x.shape[-1]))
        x = tf.reshape(tf.transpose(x, (0, 1, 3, 2, 4)), (-1, x.shape[1], classes * stride, x.shape[-1]))
    x = pad_sequence(x, num_blocks * block_size, axes=(2,))
    return tf.reshape(x, (-1, x.shape[1], num_blocks, block_size, x.shape[-1]))


def from_order(x: tf.Tensor, stride: int, seq_len: int) -> tf.Tensor:
    """`(B, H, num_blocks, block_size, c)` in the order of residue `stride` -> `(B, H, T, c)` in natural order."""
    heads, channels = x.shape[1], x.shape[-1]
    x = tf.reshape(x, (-1, heads, x.shape[2] * x.shape[3], channels))
    if stride > 1:
        classes = math.ceil(seq_len / stride)
        x = tf.reshape(x[:, :, : classes * stride], (-1, heads, stride, classes, channels))
        x = tf.reshape(tf.transpose(x, (0, 1, 3, 2, 4)), (-1, heads, classes * stride, channels))
    return x[:, :, :seq_len]


class _DynamicMasks:
    """The padding and attention masks as 0/1 float32, padded and cut as each part needs them.

    Numbers rather than booleans: TFLite Micro's GATHER has no bool kernel, and products of 0/1 numbers
    need neither LOGICAL_AND (the TF 2.21 int8 quantizer aborts on it) nor SELECT_V2 (no 16x8 kernel).
    """

    def __init__(self, key_mask, attention_mask, seq_len: int):
        self.seq_len = seq_len
        self.key = None if key_mask is None else tf.cast(key_mask, tf.float32)  # (B, T)
        self.attention = None if attention_mask is None else tf.cast(attention_mask, tf.float32)  # (B, T, T)

    @property
    def present(self) -> bool:
        return self.key is not None or self.attention is not None

    def key_blocks(self, stride: int, num_blocks: int, block_size: int):
        """`(B, num_blocks, block_size)` key mask in the order of residue `stride`, or None."""
        if self.key is None:
            return None
        blocks = to_order(self.key[:, None, :, None], stride, self.seq_len, num_blocks, block_size)
        return tf.reshape(blocks, (-1, num_blocks, block_size))  # a reshape: TFLite Micro slices rank <= 4

    def attention_blocks(self, stride: int, num_blocks: int, block_size: int):
        """`(B, num_blocks**2, block_size, block_size)`: the attention mask per (query block, key block)."""
        if self.attention is None:
            return None
        rows = to_order(self.attention[:, None], stride, self.seq_len, num_blocks, block_size)  # (B,1,n,b,T)
        rows = tf.reshape(rows, (-1, num_blocks * block_size, self.seq_len))
        both = to_order(tf.transpose(rows, (0, 2, 1))[:, None], stride, self.seq_len, num_blocks, block_size)
        both = tf.reshape(both, (-1, num_blocks, block_size, num_blocks, block_size))  # keys, then queries
        return tf.reshape(tf.transpose(both, (0, 3, 1, 4, 2)), (-1, num_blocks**2, block_size, block_size))

    def at_positions(self, queries: np.ndarray, keys: np.ndarray):
        """0/1 `(B, *queries.shape)` at natural (query, key) positions (both broadcast), or None."""
        factors = []
        queries = np.minimum(queries, self.seq_len - 1)
        keys = np.minimum(keys, self.seq_len - 1)
        shape = np.broadcast_shapes(queries.shape, keys.shape)
        if self.key is not None:
            factors.append(
                tf.reshape(_gather(self.key, np.broadcast_to(keys, shape).reshape(-1), axis=1), (-1, *shape))
            )
        if self.attention is not None:
            flat = tf.reshape(self.attention, (-1, self.seq_len**2))
            pairs = (np.broadcast_to(queries, shape) * self.seq_len + np.broadcast_to(keys, shape)).reshape(-1)
            factors.append(tf.reshape(_gather(flat, pairs, axis=1), (-1, *shape)))
        if not factors:
            return None
        return factors[0] if len(factors) == 1 else factors[0] * factors[1]


@dataclasses.dataclass
class _Part:
    """One part's scores and what finishing it needs.

    `scores (B, H, R, b, W)`; `keep` 0/1 broadcastable to it, or None; `values (B, H, R or 1, W, d)`;
    natural `query_positions (R, b)` and `key_positions (H' or 1, R or 1, W)` (>= T: padding); `chunk` keys
    per chunk of the blockwise softmax."""

    scores: tf.Tensor
    keep: tf.Tensor | None
    values: tf.Tensor
    query_positions: np.ndarray
    key_positions: np.ndarray
    chunk: int


class _Component:
    """Parts over some layout of rows, with the maps between that layout and natural rows `(B, H, T, c)`.

    `groups` lists, per group of rows `(B, H, R_g, b, ...)`, its parts."""

    def __init__(self, groups, to_natural, from_natural):
        self.groups: list[list[_Part]] = groups
        self.to_natural = to_natural
        self.from_natural = from_natural


class _HeadGroupAttention:
    """Attention of one head group: every component's parts, one fill, merged outputs, global rows."""

    def __init__(
        self, head_group: HeadGroup, plan: GatherPlan, query, key, value, masks, dropout, blockwise, want_entries
    ):
        self.plan, self.masks, self.dropout, self.blockwise = plan, masks, dropout, blockwise
        self.heads = query.shape[2]
        self.query, self.key, self.value = _heads_first(query), _heads_first(key), _heads_first(value)
        components = [self._order(order) for order in head_group.orders]
        if head_group.shared_keys is not None:
            components.append(self._shared(head_group.shared_keys.positions, head_group.shared_keys.tables))
        if head_group.row_keys is not None:
            components.append(self._row_keys(head_group.row_keys.keys, head_group.row_keys.tables))
        self.many = len(components) > 1
        fills = self._fills(components)
        results = []
        for component, component_fills in zip(components, fills, strict=True):
            with_lse = self.many or any(len(parts) > 1 for parts in component.groups)
            results.append(
                [
                    self._finish(parts, fill, with_lse)
                    for parts, fill in zip(component.groups, component_fills, strict=True)
                ]
            )
        natural = []
        for component, groups in zip(components, results, strict=True):
            merged = [merge_parts([o for o, _, _ in parts], [lse for _, lse, _ in parts]) for parts in groups]
            lse = None if merged[0][1] is None else component.to_natural([lse for _, lse in merged])
            natural.append((component.to_natural([o for o, _ in merged]), lse))
        output, total = merge_parts([o for o, _ in natural], [lse for _, lse in natural])
        self.entries = []
        if want_entries:
            self.entries = self._entries(components, results, total)
        if head_group.global_rows is not None:
            output = self._global_rows(output, head_group.global_rows, want_entries)
        self.output = output

    # ---- components ---------------------------------------------------------------------------------------

    def _order(self, order: ResidueOrder) -> _Component:
        plan, stride = self.plan, order.stride
        blocks = (order.num_blocks, plan.block_size)
        queries = to_order(self.query, stride, plan.seq_len, *blocks)
        keys, values = (
            to_order(self.key, stride, plan.seq_len, *blocks),
            to_order(self.value, stride, plan.seq_len, *blocks),
        )
        natural = natural_positions(plan.seq_len, stride, order.num_blocks * plan.block_size)
        key_keep = self.masks.key_blocks(stride, *blocks)
        pair_keep = self.masks.attention_blocks(stride, *blocks)
        groups = []
        for group in order.groups:
            rows = group.query_blocks
            group_queries = queries if len(rows) == order.num_blocks else _gather(queries, rows, axis=2)
            groups.append(
                [
                    self._block_part(
                        group_queries, keys, values, rows, part, natural, key_keep, pair_keep, order.num_blocks
                    )
                    for part in group.parts
                ]
            )

        def to_natural(per_group):
            joined = per_group[0] if len(per_group) == 1 else tf.concat(per_group, axis=2)
            if order.block_order is not None:
                joined = _gather(joined, order.block_order, axis=2)
            return from_order(joined, stride, plan.seq_len)

        def from_natural(x):
            x = to_order(x, stride, plan.seq_len, *blocks)
            return [
                x if len(g.query_blocks) == order.num_blocks else _gather(x, g.query_blocks, axis=2)
                for g in order.groups
            ]

        return _Component(groups, to_natural, from_natural)

    def _block_part(self, queries, keys, values, rows, part: KeyBlocks, natural, key_keep, pair_keep, num_blocks):
        b = self.plan.block_size
        heads, key_dim, value_dim = self.heads, keys.shape[-1], values.shape[-1]
        width = part.num_slots * b
        if part.key_blocks is None:  # every key block in order: nothing to gather
            group_keys = tf.reshape(keys, (-1, heads, 1, num_blocks * b, key_dim))
            group_values = tf.reshape(values, (-1, heads, 1, num_blocks * b, value_dim))
            key_blocks = np.broadcast_to(np.arange(num_blocks), (1, 1, num_blocks))
        else:
            key_blocks = part.key_blocks
            offsets = (np.arange(heads) * num_blocks)[:, None, None]
            index = np.broadcast_to(key_blocks + offsets, (heads, *key_blocks.shape[1:])).reshape(-1)
            flat_keys = tf.reshape(keys, (-1, heads * num_blocks, b, key_dim))
            flat_values = tf.reshape(values, (-1, heads * num_blocks, b, value_dim))
            group_keys = tf.reshape(_gather(flat_keys, index, axis=1), (-1, heads, len(rows), width, key_dim))
            group_values = tf.reshape(_gather(flat_values, index, axis=1), (-1, heads, len(rows), width, value_dim))
        scores = tf.matmul(queries, group_keys, transpose_b=True)
        query_positions = natural[rows[:, None] * b + np.arange(b)]
        key_positions = natural[(key_blocks[..., None] * b + np.arange(b)).reshape(*key_blocks.shape[:2], -1)]
        scores = self._add_bias(scores, part.tables, query_positions, key_positions)
        factors = []
        if part.tables.mask is not None:
            factors.append(_rows_of(part.tables.mask.astype(np.float32), part.tables.rows))
        if key_keep is not None:
            gathered = _gather(key_keep, key_blocks.reshape(-1), axis=1)
            factors.append(tf.reshape(gathered, (-1, key_blocks.shape[0], key_blocks.shape[1], 1, width)))
        if pair_keep is not None:
            pair = (rows[None, :, None] * num_blocks + key_blocks).reshape(-1)
            gathered = _gather(pair_keep, pair, axis=1)  # (B, H'*R*slots, b, b)
            gathered = tf.reshape(gathered, (-1, key_blocks.shape[0], key_blocks.shape[1], key_blocks.shape[2], b, b))
            factors.append(
                tf.reshape(
                    tf.transpose(gathered, (0, 1, 2, 4, 3, 5)), (-1, key_blocks.shape[0], key_blocks.shape[1], b, width)
                )
            )
        keep = _product(factors)
        return _Part(scores, keep, group_values, query_positions, key_positions, chunk_width(width, b))

    def _shared(self, positions: np.ndarray, tables: TokenTables) -> _Component:
        plan = self.plan
        blocks = (plan.num_blocks, plan.block_size)
        queries = to_order(self.query, 1, plan.seq_len, *blocks)
        keys = tf.expand_dims(_gather(self.key, positions, axis=2), 2)  # (B, H, 1, g, d)
        values = tf.expand_dims(_gather(self.value, positions, axis=2), 2)
        scores = tf.matmul(queries, keys, transpose_b=True)  # (B, H, n, b, g)
        query_positions = np.arange(plan.num_blocks * plan.block_size).reshape(blocks)
        key_positions = positions[None, None, :]
        scores = self._add_bias(scores, tables, query_positions, key_positions)
        factors = [] if tables.mask is None else [_rows_of(tables.mask.astype(np.float32), tables.rows)]
        dynamic = self.masks.at_positions(query_positions[..., None], key_positions[0])
        if dynamic is not None:
            factors.append(tf.expand_dims(dynamic, 1))
        part = _Part(scores, _product(factors), values, query_positions, key_positions, len(positions))
        return self._natural_component([part])

    def _row_keys(self, table: np.ndarray, tables: TokenTables) -> _Component:
        plan = self.plan
        n, b, width = table.shape[1:]
        queries = to_order(self.query, 1, plan.seq_len, n * b, 1)  # (B, H, n*b, 1, d)
        index = table.reshape(-1)
        keys = tf.reshape(_gather(self.key, index, axis=2), (-1, self.heads, n * b, width, self.key.shape[-1]))
        values = tf.reshape(_gather(self.value, index, axis=2), (-1, self.heads, n * b, width, self.value.shape[-1]))
        scores = tf.matmul(queries, keys, transpose_b=True)  # (B, H, n*b, 1, width)
        query_positions = np.arange(n * b)[:, None]
        key_positions = table.reshape(1, n * b, width)
        flat_tables = TokenTables(
            None if tables.mask is None else tables.mask.reshape(1, n * b, 1, width),
            None if tables.bias is None else tables.bias.reshape(1, n * b, 1, width),
        )
        scores = self._add_bias(scores, flat_tables, query_positions, key_positions)
        factors = [] if flat_tables.mask is None else [tf.constant(flat_tables.mask.astype(np.float32))]
        dynamic = self.masks.at_positions(query_positions[:, :, None], key_positions[0][:, None, :])
        if dynamic is not None:
            factors.append(tf.expand_dims(dynamic, 1))
        part = _Part(scores, _product(factors), values, query_positions, key_positions, chunk_width(width, 1))

        def to_natural(per_group):
            return tf.reshape(per_group[0], (-1, self.heads, n * b, per_group[0].shape[-1]))[:, :, : plan.seq_len]

        def from_natural(x):
            return [to_order(x, 1, plan.seq_len, n * b, 1)]

        return _Component([[part]], to_natural, from_natural)

    def _natural_component(self, parts: list[_Part]) -> _Component:
        plan = self.plan

        def to_natural(per_group):
            return from_order(per_group[0], 1, plan.seq_len)

        def from_natural(x):
            return [to_order(x, 1, plan.seq_len, plan.num_blocks, plan.block_size)]

        return _Component([parts], to_natural, from_natural)

    def _add_bias(self, scores, tables: TokenTables, query_positions, key_positions):
        if tables.bias is not None:
            scores = scores + tf.cast(_rows_of(tables.bias, tables.rows), scores.dtype)
        if tables.offset_bias is not None:
            seq_len = self.plan.seq_len
            queries = np.minimum(query_positions, seq_len - 1)  # (R, b)
            keys = np.minimum(key_positions, seq_len - 1)  # (H', R, W)
            linear = _distance_line(tables.offset_bias)
            if linear is not None:  # a + s * |i - j| (ALiBi, DistanceDecay): arithmetic, no (R, b, W) index
                intercept, slope = (tf.constant(v[:, None, None, None]) for v in linear)
                queries, keys = tf.constant(queries.astype(np.float32)), tf.constant(keys.astype(np.float32))
                distance = tf.abs(queries[None, :, :, None] - keys[:, :, None, :])  # float32: exact to 2^24
                return scores + tf.cast(intercept + slope * distance, scores.dtype)
            index = (
                tf.constant(queries.astype(np.int32))[None, :, :, None]
                - tf.constant(keys.astype(np.int32))[:, :, None, :]
            )
            index = index + (seq_len - 1)
            table = tf.constant(tables.offset_bias)  # (H', 2T - 1)
            bias = _gather(table, index, batch_dims=1) if table.shape[0] > 1 else _gather(table[0], index[0])[None]
            scores = scores + tf.cast(bias, scores.dtype)
        return scores

    # ---- softmax, fill and merge ------------------------------------------------------------------------

    def _fills(self, components: list[_Component]):
        """Per component and group, the value masked scores take (`MASK_MARGIN` below the row's smallest
        masked-part score and its largest unmasked-part score), or None where nothing is masked."""
        if not any(p.keep is not None for c in components for g in c.groups for p in g):
            return [[None] * len(c.groups) for c in components]
        stats = [[self._row_stat(parts) for parts in c.groups] for c in components]
        if len(components) == 1:
            return [[tf.stop_gradient(s) - MASK_MARGIN for s in stats[0]]]
        natural = [c.to_natural(s) for c, s in zip(components, stats, strict=True)]
        lowest = tf.stop_gradient(natural[0] if len(natural) == 1 else tf.reduce_min(tf.stack(natural), 0))
        return [c.from_natural(lowest - MASK_MARGIN) for c in components]

    def _row_stat(self, parts: list[_Part]) -> tf.Tensor:
        stats = []
        for part in parts:
            scores = finite_scores(part.scores)
            if part.keep is None:
                stats.append(tf.reduce_max(scores, axis=-1, keepdims=True))
            else:
                stats.append(tf.reduce_min(scores, axis=-1, keepdims=True))
        return stats[0] if len(stats) == 1 else tf.reduce_min(tf.stack(stats), 0)

    def _finish(self, parts: list[_Part], fill, with_lse: bool):
        """Per part `(output (B, H, R, b, d), log-normalizer or None, kept probabilities)`."""
        results = []
        for part in parts:
            keep = None if part.keep is None else tf.cast(part.keep, part.scores.dtype)
            if self.blockwise:
                output, lse, probabilities = blockwise_part(
                    part.scores, keep, part.values, part.chunk, self.dropout, fill, return_probabilities=True
                )
                results.append((output, tf.cast(lse, output.dtype) if with_lse else None, probabilities))
                continue
            scores = part.scores
            if keep is not None:
                scores = masked_scores(scores, keep, lambda s, fill=fill: tf.cast(fill, s.dtype) + MASK_MARGIN)
            if with_lse:
                probabilities, lse = softmax_and_log_normalizer(scores)
            else:
                probabilities, lse = tf.nn.softmax(scores), None
            if keep is not None:
                probabilities = probabilities * keep
            weights = self.dropout(probabilities) if self.dropout else probabilities
            results.append((tf.matmul(weights, part.values), lse, probabilities))
        return results

    # ---- global rows, entries ---------------------------------------------------------------------------

    def _global_rows(self, output, rows: GlobalRows, want_entries: bool):
        """`output` with the global rows replaced by their own attention over every key."""
        seq_len, positions = self.plan.seq_len, rows.positions
        queries = tf.expand_dims(_gather(self.query, positions, axis=2), 3)  # (B, H, g, 1, d)
        scores = tf.matmul(queries, tf.expand_dims(self.key, 2), transpose_b=True)  # (B, H, g, 1, T)
        if rows.bias is not None:
            scores = scores + tf.cast(tf.constant(rows.bias[:, :, None]), scores.dtype)
        factors = [] if rows.mask is None else [tf.constant(rows.mask[:, :, None].astype(np.float32))]
        dynamic = self.masks.at_positions(positions[:, None, None], np.arange(seq_len)[None, None, :])
        if dynamic is not None:
            factors.append(tf.expand_dims(dynamic, 1))
        keep = _product(factors)
        values = tf.expand_dims(self.value, 2)
        part = _Part(scores, keep, values, positions[:, None], np.arange(seq_len)[None, None], 0)
        if self.blockwise:
            part.chunk = chunk_width(seq_len, 1)
            fill = None
            if keep is not None:
                fill = tf.stop_gradient(tf.reduce_min(finite_scores(scores), -1, keepdims=True)) - MASK_MARGIN
            row_output, _, probabilities = self._finish([part], fill, False)[0]
        else:
            probabilities = masked_softmax(scores, keep)
            row_output = tf.matmul(self.dropout(probabilities) if self.dropout else probabilities, values)
        row_output = tf.reshape(row_output, (-1, *row_output.shape[1:3], row_output.shape[-1]))  # (B, H, g, d)
        keep_rows = np.ones((seq_len, 1), np.float32)
        keep_rows[positions] = 0
        placed = np.zeros((seq_len, len(positions)), np.float32)
        placed[positions, np.arange(len(positions))] = 1
        output = output * tf.constant(keep_rows, output.dtype) + tf.matmul(
            tf.constant(placed, output.dtype)[None, None], row_output
        )
        if want_entries:
            is_global = np.isin(np.arange(seq_len + 1), positions)
            self.entries = [(p, np.where(is_global[np.minimum(q, seq_len)], seq_len, q), k) for p, q, k in self.entries]
            self.entries.append((probabilities, part.query_positions, part.key_positions))
        return output

    def _entries(self, components, results, total):
        """Per part `(final probabilities (B, H, R, b, W), query positions (R, b), key positions)`."""
        entries = []
        for component, groups in zip(components, results, strict=True):
            totals = None if total is None else component.from_natural(total)
            for index, (parts, group_results) in enumerate(zip(component.groups, groups, strict=True)):
                for part, (_, lse, probabilities) in zip(parts, group_results, strict=True):
                    if lse is not None:
                        probabilities = probabilities * tf.exp(lse - totals[index])
                    entries.append((probabilities, part.query_positions, part.key_positions))
        return entries


def _gather(params, indices, **kwargs) -> tf.Tensor:
    """`tf.gather` with static (NumPy) indices as int32: TFLite Micro's GATHER takes no int64 positions."""
    if isinstance(indices, np.ndarray | np.integer | int):
        indices = np.asarray(indices, np.int32)
    return tf.gather(params, indices, **kwargs)


def _distance_line(table: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """`(intercept, slope)`, float32 `(H',)` each, when every head's offset table `(H', 2T - 1)` is
    `intercept + slope * |offset|` to float32 rounding (ALiBi's and `DistanceDecay`'s biases), else None."""
    center = table.shape[1] // 2  # offset 0
    if center == 0:
        return None
    distance = np.abs(np.arange(table.shape[1]) - center)
    intercept, slope = table[:, center], table[:, center + 1] - table[:, center]
    line = intercept[:, None] + slope[:, None] * distance
    if not np.allclose(line, table, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(table).max()))):
        return None
    return intercept.astype(np.float32), slope.astype(np.float32)


def _rows_of(table: np.ndarray, rows: np.ndarray | None) -> tf.Tensor:
    """A stored token table `(H', stored rows, b or 1, W)` as `(H', R, b or 1, W)` (or one row for all)."""
    constant = tf.constant(table)
    return constant if rows is None else _gather(constant, rows, axis=1)


def _product(factors: list):
    if not factors:
        return None
    result = factors[0]
    for factor in factors[1:]:
        result = result * factor
    return result


def _entry_indices(entries, plan: GatherPlan, heads: int):
    """Static `(head, query, key)` of every valid entry and, per entry list item, which flat entries are valid."""
    seq_len = plan.seq_len
    indices, selections = [], []
    for probabilities, selected, query_positions, key_positions in entries:
        group_heads, rows, block, width = probabilities.shape[1:]
        shape = (group_heads, rows, block, width)
        head = np.broadcast_to(np.asarray(selected)[:, None, None, None], shape)
        query = np.broadcast_to(query_positions[None, :, :, None], shape)
        key = np.broadcast_to(np.asarray(key_positions)[:, :, None, :], shape)
        valid = ((query < seq_len) & (key < seq_len)).reshape(-1)
        selections.append(np.flatnonzero(valid))
        indices.append(np.stack([head.reshape(-1), query.reshape(-1), key.reshape(-1)], 1)[valid])
    return indices, selections


def _dense_probabilities(entries, plan: GatherPlan, heads: int) -> tf.Tensor:
    """The probabilities as a dense `(B, H, T, T)` tensor."""
    seq_len = plan.seq_len
    indices, selections = _entry_indices(entries, plan, heads)
    updates = []
    for (probabilities, *_), selection in zip(entries, selections, strict=True):
        flat = tf.reshape(tf.transpose(probabilities, (1, 2, 3, 4, 0)), (-1, tf.shape(probabilities)[0]))
        updates.append(_gather(flat, selection))
    dense = tf.scatter_nd(
        np.concatenate(indices).astype(np.int32),
        tf.concat(updates, 0),
        tf.stack([heads, seq_len, seq_len, tf.shape(entries[0][0])[0]]),
    )
    return tf.transpose(dense, (3, 0, 1, 2))


def _block_mass(entries, plan: GatherPlan, heads: int) -> tf.Tensor:
    """The probabilities summed over the batch per (head, query block, key block): float32 `(H, n, n)`."""
    n, b = plan.num_blocks, plan.block_size
    indices, selections = _entry_indices(entries, plan, heads)
    sums = []
    for (probabilities, *_), selection in zip(entries, selections, strict=True):
        summed = tf.reshape(tf.reduce_sum(tf.cast(probabilities, tf.float32), axis=0), [-1])
        sums.append(_gather(summed, selection))
    index = np.concatenate(indices)
    segments = (index[:, 0] * n + index[:, 1] // b) * n + index[:, 2] // b
    mass = tf.math.unsorted_segment_sum(tf.concat(sums, 0), segments.astype(np.int32), heads * n * n)
    return tf.reshape(mass, (heads, n, n))
