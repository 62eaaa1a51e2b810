"""The masked softmax every kernel uses.

Masked scores are set to `MASK_MARGIN` below the smallest score of their own row, not to a huge constant
such as Keras's -1e9. Each masked key's weight is then below e^-30 (about 1e-13) of any allowed key's, which
is exact to float32 precision, while the scores keep a small range: int8 quantization calibrates that range,
and a -1e9 fill would collapse every real score into one quantization step (tests/layers/test_tflite_export.py
measures a sliding-window model: int8 error 0.026 this way, 0.23 with -1e9).

Masks are multiplied in (`scores * keep + fill * (1 - keep)`) rather than selected with `tf.where`: TFLite's
16x8 mode has no SELECT_V2 kernel and TFLite Micro no SELECT. Three things keep one sample's bad numbers out
of the others, and out of every row that does not see them:
- the fill is taken per row, so a NaN or an infinity changes only the fill of its own row;
- under mixed precision, scores are clipped to half their dtype's range first (`finite_scores`), so a masked
  score that overflowed (a float16 padding token with large activations) is finite, and `0 *` it is 0;
- masked probabilities are multiplied by 0 after the softmax, so a masked key's huge value is not carried
  into the output by its e^-30 weight (Keras's `Softmax` layer zeroes them too).
What is left: a NaN score makes its row NaN even where its key is masked (`NaN * 0` is NaN), where Keras's
`tf.where` would not. A NaN score comes from a NaN query or key, and in self-attention the same token's value
is then NaN too, which makes Keras's whole sample NaN (`0 * NaN` in `probabilities @ values`): the rows
reached here are a subset of Keras's. In float32 a row whose own scores overflow (activations near 1e19)
is NaN too.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

MASK_MARGIN = 30.0


def finite_scores(scores: tf.Tensor) -> tf.Tensor:
    """float16 and bfloat16 `scores` clipped to plus or minus half their dtype's largest finite number.

    A score that overflowed (a float16 padding token with activations of a few hundred) becomes finite, and
    masking it multiplies a finite number by 0. Half the range, so that the fill stays finite too. float32
    and float64 scores are returned as they are: they overflow only for activations near 1e19, and the clip's
    huge constants cost int16x8 files their accuracy (a window model's error 0.006 -> 0.27), exported models
    being float32.
    """
    scores = tf.convert_to_tensor(scores)
    if scores.dtype not in (tf.float16, tf.bfloat16):
        return scores
    bound = scores.dtype.max / 2
    return tf.clip_by_value(scores, -bound, bound)


def row_minimum(scores: tf.Tensor) -> tf.Tensor:
    """The smallest score of each row (the last axis), `(..., 1)`."""
    return tf.reduce_min(scores, axis=-1, keepdims=True)


def masked_fill(scores: tf.Tensor, minimum: Callable[[tf.Tensor], tf.Tensor] = row_minimum) -> tf.Tensor:
    """The value masked scores take: `MASK_MARGIN` below their row's smallest score (no gradient flows through it).

    Args:
        scores: float scores, rows on the last axis.
        minimum: maps `scores` to each row's minimum, broadcastable to `scores`; `row_minimum` by default
            (the token-pair kernels pass a segment minimum, their rows being segments of one axis).
    """
    return tf.stop_gradient(minimum(scores)) - tf.constant(MASK_MARGIN, scores.dtype)


def masked_scores(
    scores: tf.Tensor, mask: tf.Tensor, minimum: Callable[[tf.Tensor], tf.Tensor] = row_minimum
) -> tf.Tensor:
    """`finite_scores(scores)` where `mask` (bool, or 0/1 numbers) is set, their row's `masked_fill` elsewhere.

    Computed as `scores * mask + fill * (1 - mask)`, which is exact in float (a product by 1 or 0, a sum
    with 0) and needs no SELECT_V2: TFLite's 16x8 mode has no kernel for it, and in int8 this form was
    measured no less accurate. `minimum` as in `masked_fill`.

    Example:

    >>> import numpy as np
    >>> masked_scores(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "float32"),
    ...               np.array([[True, False, True], [True, False, True]])).numpy()
    array([[  1., -29.,   3.],
           [  4., -26.,   6.]], dtype=float32)
    """
    scores = finite_scores(scores)
    keep = tf.cast(mask, scores.dtype)
    return scores * keep + masked_fill(scores, minimum) * (1.0 - keep)


def masked_softmax(scores: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Softmax over the last axis where masked-out entries get exactly zero weight.

    `mask` is bool or 0/1 numbers. The probabilities are multiplied by the mask after the softmax, as Keras's
    `Softmax` layer zeroes them: a masked key's e^-30 would otherwise still carry a huge value (a padding
    token's) into the output. Rows with no allowed entry come out all zero; they have no meaning.
    """
    if mask is None:
        return tf.nn.softmax(scores, axis=-1)
    keep = tf.cast(mask, scores.dtype)
    return tf.nn.softmax(masked_scores(scores, keep), axis=-1) * keep
