"""Attention with its softmax taken in two levels: within chunks of keys, then across the chunks.

`p_ij = softmax_c(lse_c) * softmax_j(s_cj)`, where `lse_c` is chunk c's log-sum-exp: the same probabilities
as one softmax over the row, to float32 rounding. It exists for int8 files. TFLite's int8 SOFTMAX writes its
output in steps of 1/256, so a row spread over many more than 256 keys (BigBird's global rows see every key)
rounds most of its weights to 0 or 1/256. Split into chunks of about sqrt(width) keys, each level's weights
are about 1/sqrt(width), several steps each. On a BigBird ListOps classifier at L=1024 (500 test examples)
the int8 file's mean logit error fell from 0.124 to 0.025 and its argmax agreement with Keras rose from
79% to 99%; `benchmarks/accuracy.py` measures the accuracy.

The chunks' log-sum-exps come from LOG_SOFTMAX (`lse = max(s) - max(log_softmax(s))`), which LiteRT and
TFLite Micro both run in int8; the chunks are combined by a second matmul, never by multiplying the two
levels into one probability tensor (that product would be quantized in steps of 1/256 again). Both matmuls
take their right-hand side transposed (`transpose_b=True`): TFLite Micro's BATCH_MATMUL otherwise keeps a
transposed copy of it for the life of the model (measured on the main job's model: a 578 KiB arena with
plain right-hand sides, 366 KiB this way, and 381 KiB with one softmax per row).
"""

from __future__ import annotations

import tensorflow as tf

from keras_sparse.kernels.masked_softmax import MASK_MARGIN, finite_scores, masked_scores


def chunk_width(width: int, block_size: int) -> int:
    """Keys per chunk: whole blocks dividing `width`, the count nearest sqrt(width) (ties: the narrower).

    Example:

    >>> chunk_width(1024, 32), chunk_width(4096, 32), chunk_width(160, 32)
    (32, 64, 32)
    """
    blocks = width // block_size
    widths = [k * block_size for k in range(1, blocks + 1) if blocks % k == 0]
    return min(widths, key=lambda w: abs(w * w - width))


def blockwise_softmax_attention(
    scores: tf.Tensor,
    mask: tf.Tensor | None,
    values: tf.Tensor,
    chunk: int,
    dropout=None,
    return_probabilities: bool = False,
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """`softmax(scores) @ values` with the softmax in two levels (within chunks of `chunk` keys, then across).

    Args:
        scores: `(B, H, R, b, W)`: R row groups of b queries, W keys each; `chunk` must divide W.
        mask: optional bool or 0/1 tensor broadcastable to `scores`; masked keys get zero weight.
        values: `(B, H, R, W, d)`.
        chunk: keys per chunk (`chunk_width` picks one).
        dropout: optional callable applied to the within-chunk probabilities, which drops the same
            entries of the row's probabilities as it would from a one-level softmax.
        return_probabilities: also return the row probabilities `(B, H, R, b, W)`.

    Returns:
        `(output (B, H, R, b, d), probabilities or None)`.

    Example:

    >>> import numpy as np
    >>> s = np.random.default_rng(0).normal(size=(1, 1, 1, 2, 8)).astype("float32")
    >>> v = np.random.default_rng(1).normal(size=(1, 1, 1, 8, 3)).astype("float32")
    >>> out, _ = blockwise_softmax_attention(s, None, v, chunk=4)
    >>> bool(np.allclose(out, tf.nn.softmax(s) @ v, atol=1e-6))
    True
    """
    output, _, probabilities = blockwise_part(scores, mask, values, chunk, dropout, None, return_probabilities)
    return output, probabilities


def blockwise_part(
    scores: tf.Tensor,
    mask: tf.Tensor | None,
    values: tf.Tensor,
    chunk: int,
    dropout=None,
    fill: tf.Tensor | None = None,
    return_probabilities: bool = False,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None]:
    """`blockwise_softmax_attention` for one part of a row (`kernels.merged_softmax` merges the parts).

    Arguments as `blockwise_softmax_attention`, but `values` may be `(B, H, 1, W, d)`, shared by every row
    group; `fill`, optional `(B, H, R, b, 1)`, is the value masked scores take (the row's, shared by its
    parts), instead of their own rows'.

    Returns:
        `(output (B, H, R, b, d), float32 log-normalizer (B, H, R, b, 1), probabilities or None)`.
    """
    _, heads, rows, block, width = scores.shape
    chunks, value_dim = width // chunk, values.shape[-1]
    if chunks * chunk != width:
        raise ValueError(f"Received an invalid value for argument `chunk`: {chunk} does not divide {width} keys.")
    # In float16 and bfloat16, rounding ties log_softmax's largest entries where the scores' largest is
    # unique, and the two maxima's gradients then land on different keys (input gradients up to 7% off under
    # mixed_float16): both levels are computed in float32, as Keras's own attention takes its softmax.
    scores = finite_scores(scores)
    if scores.dtype in (tf.float16, tf.bfloat16):
        scores = tf.cast(scores, tf.float32)
    keep = None if mask is None else tf.cast(mask, scores.dtype)
    if keep is not None:
        minimum = None if fill is None else (lambda _: tf.cast(fill, scores.dtype) + MASK_MARGIN)
        scores = masked_scores(scores, keep) if minimum is None else masked_scores(scores, keep, minimum)
    scores = tf.reshape(scores, (-1, heads * rows, block, chunks, chunk))
    log_mass = tf.reduce_max(scores, axis=-1) - tf.reduce_max(tf.nn.log_softmax(scores), axis=-1)
    across = tf.cast(tf.nn.softmax(log_mass), values.dtype)  # (B, H*R, b, chunks)
    log_normalizer = tf.reduce_max(log_mass, axis=-1, keepdims=True) - tf.reduce_max(
        tf.nn.log_softmax(log_mass), axis=-1, keepdims=True
    )
    within = tf.nn.softmax(scores)
    if keep is not None:  # masked keys: exactly zero, as in `masked_softmax`
        within = tf.reshape(within, (-1, heads, rows, block, width)) * keep
        within = tf.reshape(within, (-1, heads * rows, block, chunks, chunk))
    within = tf.cast(within, values.dtype)
    kept = dropout(within) if dropout else within
    if values.shape[2] != rows:
        values = tf.broadcast_to(values, tf.concat([tf.shape(values)[:2], [rows, width, value_dim]], 0))
    values = tf.reshape(values, (-1, heads * rows, chunks, chunk, value_dim))
    per_chunk = tf.matmul(
        tf.transpose(kept, (0, 1, 3, 2, 4)), tf.transpose(values, (0, 1, 2, 4, 3)), transpose_b=True
    )  # (B, H*R, chunks, b, d)
    output = tf.matmul(
        tf.reshape(across, (-1, heads * rows, block, 1, chunks)),
        tf.transpose(per_chunk, (0, 1, 3, 4, 2)),
        transpose_b=True,
    )
    output = tf.reshape(output, (-1, heads, rows, block, value_dim))
    log_normalizer = tf.reshape(log_normalizer, (-1, heads, rows, block, 1))
    if not return_probabilities:
        return output, log_normalizer, None
    probabilities = within * across[..., None]
    return output, log_normalizer, tf.reshape(probabilities, (-1, heads, rows, block, width))
