"""The LSH kernel: Reformer's hash, sort, chunk, attend, un-sort, with static shapes."""

from __future__ import annotations

import tensorflow as tf

from keras_sparse.kernels.masked_softmax import MASK_MARGIN, finite_scores, masked_fill
from keras_sparse.kernels.padding import pad_sequence
from keras_sparse.patterns.lsh import LSH


def _sorted_gather(x: tf.Tensor, order: tf.Tensor) -> tf.Tensor:
    """x `(B, H, T, ...)` gathered along T by order `(B, H, R, T)` -> `(B, H, R, T, ...)`, one copy per round."""
    return tf.gather(x, order, axis=2, batch_dims=2)


def _with_previous_chunk(x: tf.Tensor) -> tf.Tensor:
    """`(B, H, R, chunks, c, ...)` -> `(B, H, R, chunks, 2c, ...)`: each chunk then the one before it (cyclic).

    Batch and heads are merged while slicing: TFLite's STRIDED_SLICE takes rank <= 5.
    """
    if x.shape[3] == 1:
        return x  # one chunk: it is its own previous chunk
    heads = x.shape[1]
    flat = tf.reshape(x, (-1, *x.shape[2:]))  # (B * H, R, chunks, c, ...)
    previous = tf.concat([flat[:, :, -1:], flat[:, :, :-1]], axis=2)
    joined = tf.concat([flat, previous], axis=3)
    return tf.reshape(joined, (-1, heads, *joined.shape[1:]))


def _as_rows(x: tf.Tensor) -> tf.Tensor:
    """`(..., c)` -> `(..., c, 1)`. EXPAND_DIMS rather than `x[..., None]`: the int8 converter cannot take
    the 6-D STRIDED_SLICE that indexing with None becomes."""
    return tf.expand_dims(x, -1)


def _as_columns(x: tf.Tensor) -> tf.Tensor:
    """`(..., c)` -> `(..., 1, c)`, as `_as_rows`."""
    return tf.expand_dims(x, -2)


def _matmul(a: tf.Tensor, b: tf.Tensor, transpose_b: bool = False) -> tf.Tensor:
    """Matmul of `(B, H, R, chunks, m, k)` tensors, rounds and chunks merged (TFLite's BATCH_MATMUL: rank <= 5)."""
    lead = a.shape[1:4]
    merged = [tf.reshape(x, (-1, lead[0], lead[1] * lead[2], *x.shape[4:])) for x in (a, b)]
    product = tf.matmul(*merged, transpose_b=transpose_b)
    return tf.reshape(product, (-1, *lead, *product.shape[3:]))


def lsh_attention(query, key, value, pattern: LSH, key_mask=None, causal: bool = False, dropout=None):
    """Reformer attention; returns `(output (B, T, H, value_dim), None)`.

    Args:
        query: `(B, T, H, key_dim)`, already scaled by `1/sqrt(key_dim)`.
        key: `(B, T, H, key_dim)`, the shared-QK keys (L2-normalised query projections); hashed.
        value: `(B, T, H, value_dim)`.
        pattern: the `LSH` pattern. The sequence is padded to whole chunks (padding keys masked).
        key_mask: optional bool `(B, T)`, False for padding keys.
        causal: AND `key <= query`.
        dropout: optional callable applied to the attention probabilities.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> x = np.random.default_rng(0).normal(size=(1, 16, 2, 4)).astype("float32")
    >>> out, _ = ks.kernels.lsh_attention(x, x, x, ks.patterns.LSH(num_buckets=2, chunk_size=8))
    >>> tuple(out.shape)
    (1, 16, 2, 4)
    """
    original_len, heads, key_dim = query.shape[1], query.shape[2], query.shape[3]
    chunk, rounds = pattern.chunk_size, pattern.num_hashes
    num_chunks = -(-original_len // chunk)
    seq_len = num_chunks * chunk
    if seq_len != original_len:
        if key_mask is None:
            key_mask = tf.ones_like(query[:, :, 0, 0], dtype=tf.bool)
        query, key, value = (pad_sequence(x, seq_len) for x in (query, key, value))
        key_mask = pad_sequence(key_mask, seq_len)
    q, k, v = (tf.transpose(x, (0, 2, 1, 3)) for x in (query, key, value))  # (B, H, T, d)

    rotations = tf.constant(pattern.rotations(heads, key_dim), tf.float32)  # hashed in float32 under every policy
    rotated = tf.einsum("bhtd,hrdn->bhrtn", tf.cast(k, tf.float32), rotations)
    buckets = tf.argmax(tf.concat([rotated, -rotated], axis=-1), axis=-1, output_type=tf.int32)  # (B, H, R, T)
    positions = tf.range(seq_len, dtype=tf.int32)
    order = tf.argsort(buckets * seq_len + positions, axis=-1, stable=True)  # (B, H, R, T): sorted positions

    def chunked(x):  # (B, H, R, T, ...) -> (B, H, R, chunks, c, ...)
        return tf.reshape(x, (-1, heads, rounds, num_chunks, chunk, *x.shape[4:]))

    sorted_buckets = tf.gather(buckets, order, axis=3, batch_dims=3)
    scores = _matmul(
        chunked(_sorted_gather(q, order)), _with_previous_chunk(chunked(_sorted_gather(k, order))), transpose_b=True
    )  # (B, H, R, chunks, c, c or 2c)
    query_pos, key_pos = chunked(order), _with_previous_chunk(chunked(order))
    allowed = tf.equal(_as_rows(chunked(sorted_buckets)), _as_columns(_with_previous_chunk(chunked(sorted_buckets))))
    if causal:
        allowed = tf.logical_and(allowed, _as_columns(key_pos) <= _as_rows(query_pos))
    if key_mask is not None:
        valid = _sorted_gather(tf.repeat(key_mask[:, None, :], heads, axis=1), order)  # (B, H, R, T)
        allowed = tf.logical_and(allowed, _as_columns(_with_previous_chunk(chunked(valid))))
    # Reformer's shared-QK rule: a query attends itself only when it has no other key. Its own score sits
    # MASK_MARGIN below every allowed score, and masked scores another MASK_MARGIN below that.
    is_self = tf.equal(_as_rows(query_pos), _as_columns(key_pos))
    scores = finite_scores(scores)
    self_score = masked_fill(scores)  # per row: (B, H, R, chunks, c, 1)
    scores = tf.where(allowed, scores, self_score - MASK_MARGIN)
    scores = tf.where(tf.logical_and(is_self, allowed), self_score, scores)
    log_norm = tf.reduce_logsumexp(scores, axis=-1, keepdims=True)
    probs = tf.where(allowed, tf.exp(scores - log_norm), tf.zeros_like(scores))  # masked keys: exactly zero
    sorted_v = _with_previous_chunk(chunked(_sorted_gather(v, order)))
    sorted_out = _matmul(dropout(probs) if dropout else probs, sorted_v)  # (B, H, R, chunks, c, dv)

    undo = tf.argsort(order, axis=-1)  # sorted position -> original position
    out = tf.gather(tf.reshape(sorted_out, (-1, heads, rounds, seq_len, v.shape[-1])), undo, axis=3, batch_dims=3)
    log_norm = tf.gather(tf.reshape(log_norm, (-1, heads, rounds, seq_len, 1)), undo, axis=3, batch_dims=3)
    weights = tf.nn.softmax(log_norm, axis=2)  # rounds weighted by their softmax normalisers
    out = tf.reduce_sum(out * weights, axis=2)  # (B, H, T, dv)
    return tf.transpose(out, (0, 2, 1, 3))[:, :original_len], None
