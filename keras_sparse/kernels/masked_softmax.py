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


def masked_scores(scores: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`scores` where `mask` (bool, or 0/1 numbers) is set, `masked_fill(scores)` elsewhere.

    Computed as `scores * mask + fill * (1 - mask)`, which is exact in float (a product by 1 or 0, a sum
    with 0) and needs no SELECT_V2: TFLite's 16x8 mode has no kernel for it, and in int8 this form was
    measured no less accurate.

    Example:

    >>> import numpy as np
    >>> masked_scores(np.array([[1.0, 2.0, 3.0]], "float32"), np.array([[True, False, True]])).numpy()
    array([[  1., -29.,   3.]], dtype=float32)
    """
    keep = tf.cast(mask, scores.dtype)
    return scores * keep + masked_fill(scores) * (1.0 - keep)


def masked_softmax(scores: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Softmax over the last axis where masked-out entries get (float32-exactly) zero weight.

    `mask` is bool or 0/1 numbers. Rows with no allowed entry come out uniform (as in Keras); they have
    no meaning.
    """
    if mask is not None:
        scores = masked_scores(scores, mask)
    return tf.nn.softmax(scores, axis=-1)
