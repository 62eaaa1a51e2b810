"""The masked softmax every kernel uses, with Keras's fill value, so all kernels agree with Keras."""

import tensorflow as tf


def large_negative(dtype: tf.DType) -> float:
    """The score given to masked entries (Keras's choice: -1e9, or -3e4 in float16)."""
    return -3e4 if dtype == tf.float16 else -1e9


def masked_softmax(scores: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Softmax over the last axis where masked-out entries get exactly zero weight.

    Rows with no allowed entry come out uniform (as in Keras); they have no meaning.
    """
    if mask is not None:
        scores = tf.where(mask, scores, tf.constant(large_negative(scores.dtype), scores.dtype))
    return tf.nn.softmax(scores, axis=-1)
