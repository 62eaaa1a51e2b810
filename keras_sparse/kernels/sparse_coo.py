"""The `tf.sparse` kernel: COO scores, `tf.sparse.softmax`, `tf.sparse.sparse_dense_matmul`.

Any token-level pattern at O(nnz) memory. It trains, but cannot be exported to
TFLite (SparseSoftmax is neither a builtin nor a Flex op): `segment_attention`
computes the same numbers with builtins only.
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


def sparse_attention(
    query, key, value, pairs: TokenPairs, key_mask=None, attention_mask=None, dropout=None, return_scores=False
):
    """Attention over the allowed pairs with `tf.sparse` ops.

    Arguments and returns as `gathered_block_attention`, with `pairs` from `plan_token_pairs`.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> pairs = ks.kernels.plan_token_pairs(ks.patterns.SlidingWindow(window_size=2), seq_len=5, num_heads=2)
    >>> x = np.ones((1, 5, 2, 3), "float32")
    >>> out, _ = ks.kernels.sparse_attention(x, x, x, pairs)
    >>> tuple(out.shape)
    (1, 5, 2, 3)
    """
    scores, keep = masked_pair_scores(query, key, pairs, key_mask, attention_mask)
    batch = tf.shape(scores, out_type=tf.int64)[0]
    rows = pairs.num_heads * pairs.seq_len
    offsets = tf.range(batch)[:, None] * rows
    indices = tf.stack(
        [
            tf.reshape(offsets + tf.constant(pairs.query_rows, tf.int64), [-1]),
            tf.reshape(offsets + tf.constant(pairs.key_rows, tf.int64), [-1]),
        ],
        axis=1,
    )
    dense_shape = tf.stack([batch * rows, batch * rows])
    softmax_dtype = tf.float32 if scores.dtype == tf.bfloat16 else scores.dtype  # SparseSoftmax has no bfloat16
    flat_scores = tf.cast(tf.reshape(scores, [-1]), softmax_dtype)
    probs = tf.sparse.softmax(tf.SparseTensor(indices, flat_scores, dense_shape)).values
    probs = tf.cast(tf.reshape(probs, (-1, pairs.nnz)), scores.dtype)
    if keep is not None:  # masked pairs: exactly zero
        probs = probs * keep
    weights = dropout(probs) if dropout else probs
    values = tf.reshape(heads_to_rows(value), (-1, value.shape[-1]))
    output = tf.sparse.sparse_dense_matmul(tf.SparseTensor(indices, tf.reshape(weights, [-1]), dense_shape), values)
    output = rows_to_heads(tf.reshape(output, (-1, rows, value.shape[-1])), pairs.num_heads)
    return output, dense_pair_probabilities(probs, pairs) if return_scores else None
