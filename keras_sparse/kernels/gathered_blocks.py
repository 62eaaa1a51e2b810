"""The gathered-block kernel: per query block, gather the key/value blocks its plan lists, then batched matmuls.

Every op is a TFLite builtin (GATHER, BATCH_MATMUL, MUL, SOFTMAX, RESHAPE,
TRANSPOSE, PAD, CONCATENATION, ...), and every shape is static but the batch.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from keras_sparse.kernels.blockwise_softmax import blockwise_softmax_attention, chunk_width
from keras_sparse.kernels.gather_plan import BlockGroup, GatherPlan
from keras_sparse.kernels.masked_softmax import masked_softmax
from keras_sparse.kernels.padding import pad_sequence


def _heads_blocks(x: tf.Tensor, plan: GatherPlan) -> tf.Tensor:
    """(B, L, H, d) -> (B, H, num_blocks, block_size, d)."""
    x = tf.transpose(pad_sequence(x, plan.num_blocks * plan.block_size), (0, 2, 1, 3))
    return tf.reshape(x, (-1, x.shape[1], plan.num_blocks, plan.block_size, x.shape[-1]))


def _flat_blocks(x: tf.Tensor, plan: GatherPlan) -> tf.Tensor:
    """(B, L, H, d) -> (B, H * num_blocks, block_size, d): one gather index per (head, block)."""
    heads_blocks = _heads_blocks(x, plan)
    return tf.reshape(heads_blocks, (-1, x.shape[2] * plan.num_blocks, plan.block_size, x.shape[-1]))


def _group_keep(group: BlockGroup, plan: GatherPlan, key_blocks_keep, attention_blocks_keep) -> tf.Tensor | None:
    """The group's static token mask times the (batch-dependent) padding and attention masks, as 0/1, or None.

    Numbers rather than booleans: TFLite Micro's GATHER has no bool kernel, and products of 0/1 numbers
    need neither LOGICAL_AND (the TF 2.21 int8 quantizer aborts on it) nor SELECT_V2 (no 16x8 kernel).
    """
    heads, rows, slots = group.key_blocks.shape
    block = plan.block_size
    factors = [] if group.mask is None else [tf.constant(group.mask.astype(np.float32))]
    if key_blocks_keep is not None:
        gathered = tf.gather(key_blocks_keep, group.key_blocks.reshape(-1), axis=1)
        factors.append(tf.reshape(gathered, (-1, heads, rows, 1, slots * block)))
    if attention_blocks_keep is not None:
        index = (group.query_blocks[None, :, None] * plan.num_blocks + group.key_blocks).reshape(-1)
        gathered = tf.reshape(tf.gather(attention_blocks_keep, index, axis=1), (-1, heads, rows, slots, block, block))
        factors.append(tf.reshape(tf.transpose(gathered, (0, 1, 2, 4, 3, 5)), (-1, heads, rows, block, slots * block)))
    if not factors:
        return None
    return functools.reduce(tf.multiply, factors)


def _dense_probabilities(probs: tf.Tensor, group: BlockGroup, plan: GatherPlan) -> tf.Tensor:
    """Scatters a group's (B, H, rows, b, slots*b) probabilities to (B, H, rows, b, num_blocks*b)."""
    heads = probs.shape[1]
    rows, slots, block = len(group.query_blocks), group.num_slots, plan.block_size
    one_hot = np.eye(plan.num_blocks, dtype=probs.dtype.as_numpy_dtype)[group.key_blocks]  # (H', rows, slots, n)
    one_hot = np.broadcast_to(one_hot, (heads, rows, slots, plan.num_blocks))
    per_slot = tf.reshape(probs, (-1, heads, rows, block, slots, block))
    dense = tf.einsum("zhqisk,hqsn->zhqink", per_slot, tf.constant(one_hot))
    return tf.reshape(dense, (-1, heads, rows, block, plan.num_blocks * block))


def _block_mass(probs: tf.Tensor, group: BlockGroup, plan: GatherPlan) -> tf.Tensor:
    """A group's attention probabilities summed per (head, query block, key block): `(H, num_blocks, num_blocks)`."""
    heads = probs.shape[1]
    rows, slots, block = len(group.query_blocks), group.num_slots, plan.block_size
    per_token = tf.reshape(probs, (-1, heads, rows, block, slots, block))
    real_query = (group.query_blocks[:, None] * block + np.arange(block)) < plan.seq_len  # not padding
    if not real_query.all():
        per_token = per_token * tf.constant(real_query[:, :, None, None], per_token.dtype)
    per_slot = tf.reduce_sum(per_token, axis=(0, 3, 5))
    key_one_hot = np.eye(plan.num_blocks, dtype=np.float32)[group.key_blocks]  # (H', rows, slots, n)
    key_one_hot = np.broadcast_to(key_one_hot, (heads, rows, slots, plan.num_blocks))
    query_one_hot = np.eye(plan.num_blocks, dtype=np.float32)[group.query_blocks]  # (rows, n)
    per_row = tf.einsum("hrs,hrsn->hrn", tf.cast(per_slot, tf.float32), tf.constant(key_one_hot))
    return tf.einsum("hrn,rq->hqn", per_row, tf.constant(query_one_hot))


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
    """Attention restricted to the plan's blocks, exact at token level.

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
        blockwise_softmax: take each row's softmax within chunks of whole key blocks, then across the
            chunks (`kernels.blockwise_softmax`): the same numbers in float, far more accurate int8 files.

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
    padded_len = plan.num_blocks * plan.block_size
    heads, key_dim, value_dim = query.shape[2], query.shape[3], value.shape[3]
    queries = _heads_blocks(query, plan)
    keys, values = _flat_blocks(key, plan), _flat_blocks(value, plan)
    key_blocks_keep = attention_blocks_keep = None
    if key_mask is not None:
        keep = tf.cast(pad_sequence(key_mask, padded_len), tf.float32)
        key_blocks_keep = tf.reshape(keep, (-1, plan.num_blocks, plan.block_size))
    if attention_mask is not None:
        padded = tf.cast(pad_sequence(attention_mask, padded_len, axes=(1, 2)), tf.float32)
        blocks = tf.reshape(padded, (-1, plan.num_blocks, plan.block_size, plan.num_blocks, plan.block_size))
        attention_blocks_keep = tf.reshape(
            tf.transpose(blocks, (0, 1, 3, 2, 4)), (-1, plan.num_blocks**2, plan.block_size, plan.block_size)
        )

    head_offsets = (np.arange(heads, dtype=np.int32) * plan.num_blocks)[:, None, None]
    outputs, dense_scores, masses = [], [], []
    for group in plan.groups:
        rows, width = len(group.query_blocks), group.num_slots * plan.block_size
        group_queries = queries if rows == plan.num_blocks else tf.gather(queries, group.query_blocks, axis=2)
        index = (group.key_blocks + head_offsets).reshape(-1)
        group_keys = tf.reshape(tf.gather(keys, index, axis=1), (-1, heads, rows, width, key_dim))
        group_values = tf.reshape(tf.gather(values, index, axis=1), (-1, heads, rows, width, value_dim))
        scores = tf.matmul(group_queries, group_keys, transpose_b=True)
        if group.bias is not None:
            scores = scores + tf.constant(group.bias, scores.dtype)
        keep = _group_keep(group, plan, key_blocks_keep, attention_blocks_keep)
        if blockwise_softmax:
            chunk = chunk_width(width, plan.block_size)
            need_probs = return_scores or on_block_mass is not None
            output, probs = blockwise_softmax_attention(scores, keep, group_values, chunk, dropout, need_probs)
        else:
            probs = masked_softmax(scores, keep)
            output = tf.matmul(dropout(probs) if dropout else probs, group_values)
        outputs.append(output)
        if return_scores:
            dense_scores.append(_dense_probabilities(probs, group, plan))
        if on_block_mass is not None:
            masses.append(_block_mass(probs, group, plan))

    def in_block_order(parts):
        joined = parts[0] if len(parts) == 1 else tf.concat(parts, axis=2)
        return joined if plan.block_order is None else tf.gather(joined, plan.block_order, axis=2)

    if on_block_mass is not None:
        on_block_mass(tf.add_n(masses))
    output = tf.reshape(in_block_order(outputs), (-1, heads, padded_len, value_dim))
    output = tf.transpose(output, (0, 2, 1, 3))[:, : plan.seq_len]
    if not return_scores:
        return output, None
    scores = tf.reshape(in_block_order(dense_scores), (-1, heads, padded_len, padded_len))
    return output, scores[:, :, : plan.seq_len, : plan.seq_len]
