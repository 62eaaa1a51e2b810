"""Helpers shared by the token-level kernels (`sparse_attention`, `segment_attention`)."""

from __future__ import annotations

import functools

import tensorflow as tf

from keras_sparse.kernels.masked_softmax import masked_scores
from keras_sparse.kernels.token_pairs import TokenPairs


def heads_to_rows(x: tf.Tensor) -> tf.Tensor:
    """(B, L, H, d) -> (B, H * L, d): row `h * L + i` is head h at position i."""
    x = tf.transpose(x, (0, 2, 1, 3))
    return tf.reshape(x, (-1, x.shape[1] * x.shape[2], x.shape[3]))


def rows_to_heads(x: tf.Tensor, heads: int) -> tf.Tensor:
    """(B, H * L, d) -> (B, L, H, d)."""
    x = tf.reshape(x, (-1, heads, x.shape[1] // heads, x.shape[2]))
    return tf.transpose(x, (0, 2, 1, 3))


def pair_row_minimum(scores: tf.Tensor, pairs: TokenPairs) -> tf.Tensor:
    """`(B, nnz)` pair scores -> `(B, nnz)`: the smallest score of each pair's query row (head and position)."""
    segments = tf.constant(pairs.query_rows)
    per_row = tf.math.unsorted_segment_min(tf.transpose(scores), segments, pairs.num_heads * pairs.seq_len)
    return tf.transpose(tf.gather(per_row, segments))


def masked_pair_scores(
    query, key, pairs: TokenPairs, key_mask=None, attention_mask=None
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Scores `q_i . k_j` (+ the pattern's bias) at every allowed pair, `(B, nnz)`, masked ones at their query
    row's `masked_fill`; and the 0/1 `(B, nnz)` mask in the scores' dtype (None when nothing is masked), by
    which the kernels multiply their probabilities."""
    query_rows, key_rows = heads_to_rows(query), heads_to_rows(key)
    scores = tf.reduce_sum(
        tf.gather(query_rows, pairs.query_rows, axis=1) * tf.gather(key_rows, pairs.key_rows, axis=1), axis=-1
    )
    if pairs.bias is not None:
        scores = scores + tf.constant(pairs.bias, scores.dtype)
    seq_len = pairs.seq_len
    key_pos = pairs.key_rows % seq_len
    mask = None
    if key_mask is not None:
        mask = tf.gather(key_mask, key_pos, axis=1)
    if attention_mask is not None:
        flat = tf.reshape(attention_mask, (-1, seq_len * seq_len))
        pair_mask = tf.gather(flat, (pairs.query_rows % seq_len) * seq_len + key_pos, axis=1)
        mask = pair_mask if mask is None else tf.logical_and(mask, pair_mask)
    if mask is None:
        return scores, None
    keep = tf.cast(mask, scores.dtype)
    return masked_scores(scores, keep, minimum=functools.partial(pair_row_minimum, pairs=pairs)), keep


def dense_pair_probabilities(probs: tf.Tensor, pairs: TokenPairs) -> tf.Tensor:
    """Scatters per-pair probabilities `(B, nnz)` to a dense `(B, H, T, T)` tensor."""
    batch = tf.shape(probs)[0]
    nnz = pairs.nnz
    batch_index = tf.repeat(tf.range(batch), nnz)
    query_rows = tf.tile(tf.constant(pairs.query_rows), [batch])
    key_pos = tf.tile(tf.constant(pairs.key_rows % pairs.seq_len), [batch])
    indices = tf.stack([batch_index, query_rows, key_pos], axis=1)
    rows = pairs.num_heads * pairs.seq_len
    dense = tf.scatter_nd(indices, tf.reshape(probs, [-1]), tf.stack([batch, rows, pairs.seq_len]))
    return tf.reshape(dense, (-1, pairs.num_heads, pairs.seq_len, pairs.seq_len))
