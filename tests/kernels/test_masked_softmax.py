"""The masked softmax: masked keys get float32-zero weight, and the scores keep a quantizable range."""

import numpy as np
import tensorflow as tf

from keras_sparse.kernels.masked_softmax import MASK_MARGIN, masked_fill, masked_softmax


def test_masked_entries_get_zero_weight_to_float32_precision():
    rng = np.random.default_rng(0)
    scores = rng.normal(scale=5.0, size=(3, 50)).astype("float32")
    mask = rng.random((3, 50)) < 0.5
    expected = np.where(mask, np.exp(scores - scores.max(-1, keepdims=True)), 0)
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(masked_softmax(tf.constant(scores), tf.constant(mask)), expected, rtol=1e-6, atol=1e-12)


def test_fill_stays_within_the_margin_below_the_scores():
    """A huge fill (Keras's -1e9) would make int8 calibration collapse every real score into one step."""
    scores = tf.constant([[1.0, -4.0, 2.5]])
    assert float(masked_fill(scores)) == -4.0 - MASK_MARGIN
