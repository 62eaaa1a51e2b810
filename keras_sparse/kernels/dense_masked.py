"""The dense masked kernel: full `(T, T)` scores and a boolean mask; the reference other kernels are tested against."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_sparse.kernels.masked_softmax import masked_softmax


def dense_masked_attention(
    query,
    key,
    value,
    mask: np.ndarray,
    key_mask=None,
    attention_mask=None,
    dropout=None,
    return_scores=False,
    bias: np.ndarray | tf.Tensor | None = None,
):
    """Attention with every score computed and the pattern applied as a mask. O(T^2) memory.

    Args:
        mask: bool `(T, T)` (or `(H, T, T)`), e.g. `pattern.mask(T)`.
        bias: optional float `(T, T)` (or `(H, T, T)`) added to the scores, e.g. `pattern.dense_bias(T)`; an array
            or a tensor.
        attention_mask: optional bool `(B, T, S)`, or `(B, H, T, S)` per head, ANDed with the mask.
        Others as `gathered_block_attention`.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> x = np.ones((1, 4, 2, 3), "float32")
    >>> out, _ = ks.kernels.dense_masked_attention(x, x, x, np.tri(4, dtype=bool))
    >>> tuple(out.shape)
    (1, 4, 2, 3)
    """
    scores = tf.einsum("bthd,bshd->bhts", query, key)
    if bias is not None:
        bias = tf.cast(bias, scores.dtype)
        scores = scores + (bias if bias.shape.rank == 3 else bias[None])
    full_mask = tf.constant(mask if mask.ndim == 3 else mask[None])[None]
    if key_mask is not None:
        full_mask = tf.logical_and(full_mask, key_mask[:, None, None, :])
    if attention_mask is not None:
        attention_mask = tf.convert_to_tensor(attention_mask)  # an array as before per-head masks, or a tensor
        per_head = attention_mask if attention_mask.shape.rank == 4 else attention_mask[:, None]
        full_mask = tf.logical_and(full_mask, per_head)
    probs = masked_softmax(scores, full_mask)
    output = tf.einsum("bhts,bshd->bthd", dropout(probs) if dropout else probs, value)
    return output, probs if return_scores else None
