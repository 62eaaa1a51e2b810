"""The segment kernel: the `tf.sparse` kernel's math with gathers and unsorted segment ops.

Same numbers as `sparse_attention`, and every op a TFLite builtin (GATHER,
UNSORTED_SEGMENT_MAX, UNSORTED_SEGMENT_SUM, EXP, DIV, ...): the form token-level
patterns take for export.
"""

from __future__ import annotations

import tensorflow as tf

from keras_sparse.kernels.token_pair_scores import (
    dense_pair_probabilities,
    heads_to_rows,
    masked_pair_scores,
    rows_to_heads,
)
from keras_sparse.kernels.token_pairs import TokenPairs


def segment_attention(
    query, key, value, pairs: TokenPairs, key_mask=None, attention_mask=None, dropout=None, return_scores=False
):
    """Attention over the allowed pairs with segment reductions (export-safe).

    Arguments and returns as `gathered_block_attention`, with `pairs` from `plan_token_pairs`.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> pairs = ks.kernels.plan_token_pairs(ks.patterns.SlidingWindow(window_size=2), seq_len=5, num_heads=2)
    >>> x = np.ones((1, 5, 2, 3), "float32")
    >>> out, _ = ks.kernels.segment_attention(x, x, x, pairs)
    >>> tuple(out.shape)
    (1, 5, 2, 3)
    """
    rows = pairs.num_heads * pairs.seq_len
    segments = tf.constant(pairs.query_rows)
    scores, keep = masked_pair_scores(query, key, pairs, key_mask, attention_mask)
    scores = tf.transpose(scores)  # (nnz, B)
    row_max = tf.math.unsorted_segment_max(scores, segments, rows)
    exps = tf.exp(scores - tf.gather(row_max, segments))
    probs = exps / tf.gather(tf.math.unsorted_segment_sum(exps, segments, rows), segments)
    if keep is not None:  # masked pairs: exactly zero
        probs = probs * tf.transpose(keep)
    weights = tf.transpose(dropout(tf.transpose(probs))) if dropout else probs
    values = tf.transpose(heads_to_rows(value), (1, 0, 2))  # (H * T, B, value_dim)
    weighted = tf.gather(values, pairs.key_rows) * weights[..., None]
    output = tf.transpose(tf.math.unsorted_segment_sum(weighted, segments, rows), (1, 0, 2))
    output = rows_to_heads(output, pairs.num_heads)
    return output, dense_pair_probabilities(tf.transpose(probs), pairs) if return_scores else None
