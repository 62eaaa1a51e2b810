"""The cached-rows kernel: new queries at positions known only at run time, against a key/value cache.

Autoregressive decoding (keras-hub's `CausalLM.generate`) scores one new query per step against the keys
cached so far, at a step index that is a tensor. The keys a row allows come from the gather plan of the
cache's length (planned with `single_part=True`, so a row's keys are one table row): the row's query block
names the key blocks to gather and the plan's token mask their exact keys, so a step gathers and scores only
those blocks. Query blocks whose rows gather different numbers of
key blocks (BigBird's global rows gather all of them) are in different plan groups, and `tf.switch_case`
picks the row's group: a local row never pays for a global row's width. Every shape is static.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from keras_sparse.kernels.gather_plan import BlockGroup, GatherPlan, KeyBlocks
from keras_sparse.kernels.masked_softmax import masked_softmax
from keras_sparse.kernels.padding import pad_sequence


def _groups(plan: GatherPlan) -> tuple[BlockGroup, ...]:
    """The plan's query-block groups; each has one `KeyBlocks` part (a `single_part=True` plan)."""
    head_groups = plan.head_groups
    if len(head_groups) != 1 or len(head_groups[0].orders) != 1 or head_groups[0].orders[0].stride != 1:
        raise ValueError("cached_rows_attention needs a plan made with `plan_gathered_blocks(..., single_part=True)`.")
    groups = head_groups[0].orders[0].groups
    if any(len(group.parts) != 1 or group.parts[0].key_blocks is None for group in groups):
        raise ValueError("cached_rows_attention needs a plan made with `plan_gathered_blocks(..., single_part=True)`.")
    return groups


@functools.lru_cache(maxsize=64)
def _group_of_block(plan: GatherPlan) -> tuple[np.ndarray, np.ndarray]:
    """int32 `(num_blocks,)` tables: the group of each query block, and its row in that group."""
    group_of, row_in_group = np.zeros(plan.num_blocks, np.int32), np.zeros(plan.num_blocks, np.int32)
    for index, group in enumerate(_groups(plan)):
        group_of[group.query_blocks] = index
        row_in_group[group.query_blocks] = np.arange(len(group.query_blocks))
    return group_of, row_in_group


def _flat_blocks(x: tf.Tensor, plan: GatherPlan) -> tf.Tensor:
    """(B, S, H, d) -> (B, H * num_blocks, block_size, d): one gather index per (head, key block)."""
    heads, dim = x.shape[2], x.shape[3]
    x = tf.transpose(pad_sequence(x, plan.num_blocks * plan.block_size), (0, 2, 1, 3))
    return tf.reshape(x, (-1, heads * plan.num_blocks, plan.block_size, dim))


def _row_in_group(part: KeyBlocks, row: tf.Tensor, offset: tf.Tensor, table: np.ndarray) -> tf.Tensor:
    """The row's slice `(heads, keys)` of one of the part's token tables `(heads, stored rows, block_size or 1,
    keys)` (stored once per distinct row: `part.tables.rows` maps rows to stored rows)."""
    if table.shape[1] == 1:
        stored = 0
    elif part.tables.rows is None:
        stored = row
    else:
        stored = tf.gather(tf.constant(part.tables.rows), row)
    per_row = tf.gather(tf.constant(table), stored, axis=1)  # (heads, block_size or 1, keys)
    return tf.gather(per_row, offset if table.shape[2] > 1 else 0, axis=1)


def _one_row(query, keys, values, plan: GatherPlan, position, key_keep, row_keep, dropout, return_scores):
    """Attention of one query `(B, 1, H, d)` at `position` (an int32 scalar tensor)."""
    heads, value_dim = query.shape[2], values.shape[-1]
    block, offset = position // plan.block_size, position % plan.block_size
    group_of, row_in_group = _group_of_block(plan)
    row = tf.gather(tf.constant(row_in_group), block)
    queries = tf.transpose(query, (0, 2, 1, 3))  # (B, H, 1, d)
    head_offsets = (np.arange(heads, dtype=np.int32) * plan.num_blocks)[:, None]

    def attend(group: BlockGroup):
        part = group.parts[0]

        def compute():
            key_blocks = tf.gather(tf.constant(part.key_blocks), row, axis=1)  # (H', slots)
            index = tf.reshape(key_blocks + head_offsets, (-1,))  # (H * slots,)
            width = part.num_slots * plan.block_size
            group_keys = tf.reshape(tf.gather(keys, index, axis=1), (-1, heads, width, keys.shape[-1]))
            group_values = tf.reshape(tf.gather(values, index, axis=1), (-1, heads, width, value_dim))
            scores = tf.matmul(queries, group_keys, transpose_b=True)  # (B, H, 1, width)
            tokens = tf.reshape(key_blocks[..., None] * plan.block_size + np.arange(plan.block_size), (-1, width))
            if part.tables.bias is not None:
                bias = _row_in_group(part, row, offset, part.tables.bias)
                scores = scores + tf.cast(bias, scores.dtype)[:, None]
            if part.tables.offset_bias is not None:  # the bias at offset position - key, (H', width)
                offsets = tf.minimum(position, plan.seq_len - 1) - tf.minimum(tokens, plan.seq_len - 1)
                bias = tf.gather(tf.constant(part.tables.offset_bias), offsets + plan.seq_len - 1, batch_dims=1)
                scores = scores + tf.cast(bias, scores.dtype)[:, None]
            factors = []
            if part.tables.mask is not None:  # the row's token mask over the gathered keys, (1, H', 1, width)
                mask = _row_in_group(part, row, offset, part.tables.mask)
                factors.append(tf.cast(mask, scores.dtype)[None, :, None])
            for keep in (key_keep, row_keep):
                if keep is not None:  # (B, padded S) -> the gathered keys' (B, H', 1, width)
                    factors.append(tf.cast(tf.gather(keep, tokens, axis=1), scores.dtype)[:, :, None])
            mask = None
            if factors:
                mask = tf.broadcast_to(functools.reduce(tf.multiply, factors), tf.shape(scores))
            probs = masked_softmax(scores, mask)
            output = tf.matmul(dropout(probs) if dropout else probs, group_values)  # (B, H, 1, value_dim)
            if not return_scores:
                return output, tf.zeros((1, 1, 1, 1), probs.dtype)
            one_hot = tf.one_hot(tokens, plan.num_blocks * plan.block_size, dtype=probs.dtype)  # (H', width, P)
            one_hot = tf.broadcast_to(one_hot, (heads, *one_hot.shape[1:]))
            return output, tf.einsum("bhqk,hkp->bhqp", probs, one_hot)[..., : plan.seq_len]

        return compute

    branches = [attend(group) for group in _groups(plan)]
    if len(branches) == 1:
        output, scores = branches[0]()
    else:
        output, scores = tf.switch_case(tf.gather(tf.constant(group_of), block), branches)
    return tf.transpose(output, (0, 2, 1, 3)), scores


def cached_rows_attention(
    query: tf.Tensor,
    key: tf.Tensor,
    value: tf.Tensor,
    plan: GatherPlan,
    positions: tf.Tensor,
    key_mask: tf.Tensor | None = None,
    attention_mask: tf.Tensor | None = None,
    dropout=None,
    return_scores: bool = False,
):
    """Attention of `T` new queries at `positions` against all `S` cached keys, restricted to the plan's rows.

    Args:
        query: `(B, T, H, key_dim)`, already scaled by `1/sqrt(key_dim)`.
        key: `(B, S, H, key_dim)`, the whole key cache.
        value: `(B, S, H, value_dim)`, the whole value cache.
        plan: from `plan_gathered_blocks(pattern, S, causal=..., single_part=True)`: causal plans keep each row
            to keys at or before its position.
        positions: int32 `(T,)`, each query's position in the cache (`0 <= position < S`); a tensor.
        key_mask: optional bool `(B, S)`: False for keys no query may attend.
        attention_mask: optional bool `(B, T, S)`, ANDed with the pattern.
        dropout: optional callable applied to the attention probabilities.
        return_scores: also return the probabilities as a dense `(B, H, T, S)` tensor.

    Returns:
        `(output (B, T, H, value_dim), scores or None)`. Rows are computed one by one (T is usually 1).

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> plan = ks.kernels.plan_gathered_blocks(ks.patterns.SlidingWindow(4, block_size=4), seq_len=16, causal=True,
    ...     single_part=True)
    >>> x = np.ones((1, 16, 2, 3), "float32")
    >>> out, _ = ks.kernels.cached_rows_attention(x[:, :1], x, x, plan, positions=np.array([9], "int32"))
    >>> tuple(out.shape)
    (1, 1, 2, 3)
    """
    padded_len = plan.num_blocks * plan.block_size
    keys, values = _flat_blocks(key, plan), _flat_blocks(value, plan)
    positions = tf.cast(positions, tf.int32)
    key_keep = None if key_mask is None else pad_sequence(key_mask, padded_len)
    rows_keep = None if attention_mask is None else pad_sequence(attention_mask, padded_len, axes=(2,))
    outputs, scores = [], []
    for t in range(query.shape[1]):
        row_keep = None if rows_keep is None else rows_keep[:, t]
        output, row_scores = _one_row(
            query[:, t : t + 1], keys, values, plan, positions[t], key_keep, row_keep, dropout, return_scores
        )
        outputs.append(output)
        scores.append(row_scores)
    output = outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=1)
    if not return_scores:
        return output, None
    return output, scores[0] if len(scores) == 1 else tf.concat(scores, axis=2)
