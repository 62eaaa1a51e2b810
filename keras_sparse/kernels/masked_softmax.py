"""The masked softmax every kernel uses.

Masked scores are set to `min(scores) - MASK_MARGIN`, not to a huge constant such as Keras's -1e9.
Each masked key's weight is then below e^-30 (about 1e-13) of any allowed key's, which is exact to
float32 precision, while the scores keep a small range: int8 quantization calibrates that range, and a
-1e9 fill would collapse every real score into one quantization step.
"""

import tensorflow as tf

MASK_MARGIN = 30.0


def masked_fill(scores: tf.Tensor) -> tf.Tensor:
    """The value masked scores take: `MASK_MARGIN` below the smallest score (no gradient flows through it)."""
    return tf.stop_gradient(tf.reduce_min(scores)) - tf.constant(MASK_MARGIN, scores.dtype)


def masked_softmax(scores: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Softmax over the last axis where masked-out entries get (float32-exactly) zero weight.

    Rows with no allowed entry come out uniform (as in Keras); they have no meaning.
    """
    if mask is not None:
        scores = tf.where(mask, scores, masked_fill(scores))
    return tf.nn.softmax(scores, axis=-1)
