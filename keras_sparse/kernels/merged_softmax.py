"""A row's softmax taken in parts and merged by the parts' log-normalizers.

When a row's keys are split into parts computed apart (unmasked key blocks, masked ones, shared key columns,
residue classes, keys gathered per row), each part takes its own softmax and the parts are merged:
`out = sum_c exp(lse_c - lse) * out_c`, with `lse_c` part c's log-normalizer and `lse = logsumexp_c lse_c`.
That is one softmax over the row, to float rounding, and only the part holding masked keys pays for the mask
(FlexAttention's full/partial blocks, FlashAttention's running log-sum-exp). `kernels/blockwise_softmax.py`
merges chunks of one row the same way, in the forms int8 files need.

Each part's softmax is TensorFlow's fused one; its log-normalizer comes from two row maxima,
`lse = max(s) - log(max(softmax(s)))`, and its gradient (`softmax(s)`) is given directly rather than traced
through the maxima.
"""

from __future__ import annotations

import tensorflow as tf


@tf.custom_gradient
def softmax_and_log_normalizer(scores: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`(softmax(scores), logsumexp(scores))` over the last axis; the second keeps that axis (size 1).

    Example:

    >>> import numpy as np
    >>> probabilities, lse = softmax_and_log_normalizer(tf.constant([[0.0, np.log(3.0)]]))
    >>> np.round(probabilities.numpy(), 3).tolist(), round(float(lse[0, 0]), 3)
    ([[0.25, 0.75]], 1.386)
    """
    probabilities = tf.nn.softmax(scores, axis=-1)
    largest = tf.reduce_max(scores, axis=-1, keepdims=True)
    log_normalizer = largest - tf.math.log(tf.reduce_max(probabilities, axis=-1, keepdims=True))

    def gradient(upstream_probabilities, upstream_log_normalizer):
        inner = tf.reduce_sum(upstream_probabilities * probabilities, axis=-1, keepdims=True)
        return probabilities * (upstream_probabilities - inner + upstream_log_normalizer)

    return (probabilities, log_normalizer), gradient


def merge_parts(outputs: list[tf.Tensor], log_normalizers: list[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """Merges per-part attention outputs `(..., d)` by their log-normalizers `(..., 1)`.

    Returns the row's output and its log-normalizer. One part is returned as it is.
    """
    if len(outputs) == 1:
        return outputs[0], log_normalizers[0]
    stacked = tf.concat(log_normalizers, axis=-1)
    # a softmax over the parts' log-normalizers, rather than `reduce_logsumexp` and `add_n`: their EQUAL,
    # SELECT_V2 and ADD_N have no 16x8 kernels, and SOFTMAX's 16x8 kernel is accurate where EXP of a
    # difference of log-normalizers is not
    weights = tf.nn.softmax(stacked)
    total = tf.reduce_max(stacked, axis=-1, keepdims=True) - tf.math.log(tf.reduce_max(weights, axis=-1, keepdims=True))
    # slices of rank-2 views: TFLite Micro's STRIDED_SLICE takes rank <= 4
    flat_weights = tf.reshape(weights, (-1, len(outputs)))
    flat = [tf.reshape(part, (-1, part.shape[-1])) for part in outputs]
    output = flat_weights[:, :1] * flat[0]
    for i, part in enumerate(flat[1:], start=1):
        output = output + flat_weights[:, i : i + 1] * part
    return tf.reshape(output, (-1, *outputs[0].shape[1:])), total
