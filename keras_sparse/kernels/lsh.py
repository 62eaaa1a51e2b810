"""The LSH kernel: Reformer's hash, sort, chunk, attend, un-sort, with static shapes."""

from __future__ import annotations

import math

import tensorflow as tf

from keras_sparse.kernels.masked_softmax import MASK_MARGIN, finite_scores, masked_fill
from keras_sparse.kernels.padding import pad_sequence
from keras_sparse.patterns.lsh import LSH

TRAX_KEY_EPSILON = 1e-6
"""trax's and transformers' epsilon in the keys' length normalisation, `x / sqrt(mean(x^2) + epsilon)`."""


def lsh_query_key(projected: tf.Tensor, pattern: LSH) -> tuple[tf.Tensor, tf.Tensor]:
    """Reformer's shared-QK pair `(query, key)` from the shared projection `(B, T, H, key_dim)`.

    "same_bucket": the projection scaled by `1/sqrt(key_dim)`, and its L2-normalised rows.
    "trax": the projection itself, and `x / sqrt(mean(x^2) + 1e-6) / sqrt(key_dim)` (as transformers).
    """
    inverse_sqrt_dim = tf.constant(1.0 / math.sqrt(projected.shape[-1]), projected.dtype)
    if pattern.semantics == "trax":
        mean_square = tf.reduce_mean(tf.square(projected), axis=-1, keepdims=True)
        key = projected * tf.math.rsqrt(mean_square + tf.constant(TRAX_KEY_EPSILON, projected.dtype))
        return projected, key * inverse_sqrt_dim
    return projected * inverse_sqrt_dim, tf.math.l2_normalize(projected, axis=-1)


def _sorted_gather(x: tf.Tensor, order: tf.Tensor) -> tf.Tensor:
    """x `(B, H, T, ...)` gathered along T by order `(B, H, R, T)` -> `(B, H, R, T, ...)`, one copy per round."""
    return tf.gather(x, order, axis=2, batch_dims=2)


def _with_adjacent_chunks(x: tf.Tensor, before: int, after: int) -> tf.Tensor:
    """`(B, H, R, chunks, c, ...)` -> `(B, H, R, chunks, (1 + before + after) c, ...)`: each chunk with the
    `before` chunks before it and the `after` chunks after it (cyclic), in that order.

    Batch and heads are merged while slicing: TFLite's STRIDED_SLICE takes rank <= 5.
    """
    chunks = x.shape[3]
    if chunks == 1 or before == after == 0:
        return x  # one chunk: it is its own neighbour
    heads = x.shape[1]
    flat = tf.reshape(x, (-1, *x.shape[2:]))  # (B * H, R, chunks, c, ...)
    pieces = []
    for offset in range(-before, after + 1):
        shift = offset % chunks  # piece[j] holds chunk j + offset
        pieces.append(flat if shift == 0 else tf.concat([flat[:, :, shift:], flat[:, :, :shift]], axis=2))
    joined = tf.concat(pieces, axis=3)
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


def _hash(key: tf.Tensor, rotations: tf.Tensor, pattern: LSH) -> tf.Tensor:
    """Buckets `(B, H, R, T)` of keys `(B, H, T, d)`, computed in float32 (the `LSH.buckets` rule)."""
    rotated = tf.einsum("bhtd,hrdn->bhrtn", tf.cast(key, tf.float32), tf.cast(rotations, tf.float32))
    buckets, start, scale = None, 0, 1
    for factor in pattern.bucket_factors:
        piece = rotated if factor // 2 == rotated.shape[-1] else rotated[..., start : start + factor // 2]
        factor_buckets = tf.argmax(tf.concat([piece, -piece], axis=-1), axis=-1, output_type=tf.int32)
        buckets = factor_buckets if buckets is None else buckets + scale * factor_buckets
        start, scale = start + factor // 2, scale * factor
    return buckets


def lsh_attention(query, key, value, pattern: LSH, key_mask=None, causal: bool = False, dropout=None, rotations=None):
    """Reformer attention (`pattern.semantics` says whose); returns `(output (B, T, H, value_dim), None)`.

    Args:
        query: `(B, T, H, key_dim)`, and key: `(B, T, H, key_dim)`, from `lsh_query_key`; keys are hashed.
        value: `(B, T, H, value_dim)`.
        pattern: the `LSH` pattern. The sequence is padded to whole chunks (padding keys masked).
        key_mask: optional bool `(B, T)`, False for padding keys.
        causal: AND `key <= query`.
        dropout: optional callable applied to the attention probabilities.
        rotations: optional float `(H, num_hashes, key_dim, sum(factors) // 2)`; defaults to
            `pattern.rotations(H, key_dim)`.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> x = np.random.default_rng(0).normal(size=(1, 16, 2, 4)).astype("float32")
    >>> out, _ = ks.kernels.lsh_attention(x, x, x, ks.patterns.LSH(num_buckets=2, chunk_size=8))
    >>> tuple(out.shape)
    (1, 16, 2, 4)
    """
    original_len, heads, key_dim = query.shape[1], query.shape[2], query.shape[3]
    trax = pattern.semantics == "trax"
    plain = trax and original_len <= pattern.chunk_size  # transformers' plain attention: no hashing
    chunk, rounds = pattern.chunk_size, 1 if plain else pattern.num_hashes
    num_chunks = -(-original_len // chunk)
    seq_len = num_chunks * chunk
    if seq_len != original_len:
        if key_mask is None:
            key_mask = tf.ones_like(query[:, :, 0, 0], dtype=tf.bool)
        query, key, value = (pad_sequence(x, seq_len) for x in (query, key, value))
        key_mask = pad_sequence(key_mask, seq_len)
    q, k, v = (tf.transpose(x, (0, 2, 1, 3)) for x in (query, key, value))  # (B, H, T, d)

    positions = tf.range(seq_len, dtype=tf.int32)
    if plain:
        order = tf.zeros_like(k[:, :, None, :, 0], dtype=tf.int32) + positions  # (B, H, 1, T)
    else:
        if rotations is None:
            rotations = tf.constant(pattern.rotations(heads, key_dim))
        buckets = _hash(k, rotations, pattern)  # (B, H, R, T)
        if trax and key_mask is not None:  # padding in an extra last bucket
            buckets = tf.where(key_mask[:, None, None, :], buckets, pattern.total_buckets)
        order = tf.argsort(buckets * seq_len + positions, axis=-1, stable=True)  # (B, H, R, T): sorted positions

    # trax chains the rounds' sorted sequences into one: chunks then run across round boundaries.
    chunk_rounds = 1 if trax else rounds

    def chunked(x):  # (B, H, R, T, ...) -> (B, H, chunk_rounds, chunks, c, ...)
        return tf.reshape(x, (-1, heads, chunk_rounds, rounds * num_chunks // chunk_rounds, chunk, *x.shape[4:]))

    def adjacent(x):
        return _with_adjacent_chunks(x, pattern.num_chunks_before, pattern.num_chunks_after)

    scores = _matmul(
        chunked(_sorted_gather(q, order)), adjacent(chunked(_sorted_gather(k, order))), transpose_b=True
    )  # (B, H, chunk_rounds, chunks, c, keys)
    query_pos, key_pos = chunked(order), adjacent(chunked(order))
    masks = []  # applied one by one: TF 2.21's int8 calibration aborts on LOGICAL_AND
    if not trax:
        sorted_buckets = tf.gather(buckets, order, axis=3, batch_dims=3)
        masks.append(tf.equal(_as_rows(chunked(sorted_buckets)), _as_columns(adjacent(chunked(sorted_buckets)))))
    if causal:
        masks.append(_as_columns(key_pos) <= _as_rows(query_pos))
    if key_mask is not None:
        valid = _sorted_gather(tf.repeat(key_mask[:, None, :], heads, axis=1), order)  # (B, H, R, T)
        masks.append(_as_columns(adjacent(chunked(valid))))
    # Reformer's shared-QK rule: a query attends itself only when it has no other key. Its own score sits
    # MASK_MARGIN below every allowed score, and masked scores another MASK_MARGIN below that ("trax": its
    # own position always takes that score, as transformers' fixed -1e5, allowed or not).
    scores = finite_scores(scores)
    self_score = masked_fill(scores)  # per row: (B, H, chunk_rounds, chunks, c, 1)
    for mask in masks:
        scores = tf.where(mask, scores, self_score - MASK_MARGIN)
    is_self = tf.equal(_as_rows(query_pos), _as_columns(key_pos))
    scores = tf.where(is_self, self_score if trax else tf.minimum(scores, self_score), scores)
    log_norm = tf.reduce_logsumexp(scores, axis=-1, keepdims=True)
    probs = tf.exp(scores - log_norm)
    for mask in masks:  # masked keys: exactly zero
        probs = tf.where(mask, probs, tf.zeros_like(probs))
    sorted_v = adjacent(chunked(_sorted_gather(v, order)))
    sorted_out = _matmul(dropout(probs) if dropout else probs, sorted_v)  # (B, H, chunk_rounds, chunks, c, dv)

    undo = tf.argsort(order, axis=-1)  # sorted position -> original position
    out = tf.gather(tf.reshape(sorted_out, (-1, heads, rounds, seq_len, v.shape[-1])), undo, axis=3, batch_dims=3)
    log_norm = tf.gather(tf.reshape(log_norm, (-1, heads, rounds, seq_len, 1)), undo, axis=3, batch_dims=3)
    weights = tf.nn.softmax(log_norm, axis=2)  # rounds weighted by their softmax normalisers
    out = tf.reduce_sum(out * weights, axis=2)  # (B, H, T, dv)
    return tf.transpose(out, (0, 2, 1, 3))[:, :original_len], None
