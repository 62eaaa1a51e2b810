"""The masked softmax: masked keys get float32-zero weight, and the scores keep a quantizable range."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sparse.kernels.masked_softmax import MASK_MARGIN, masked_fill, masked_softmax


def test_masked_entries_get_zero_weight_to_float32_precision():
    rng = np.random.default_rng(0)
    scores = rng.normal(scale=5.0, size=(3, 50)).astype("float32")
    mask = rng.random((3, 50)) < 0.5
    expected = np.where(mask, np.exp(scores - scores.max(-1, keepdims=True)), 0)
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(masked_softmax(tf.constant(scores), tf.constant(mask)), expected, rtol=1e-6, atol=1e-12)


def test_fill_stays_within_the_margin_below_each_rows_scores():
    """A huge fill (Keras's -1e9) would make int8 calibration collapse every real score into one step."""
    scores = tf.constant([[1.0, -4.0, 2.5], [10.0, 20.0, 30.0]])
    np.testing.assert_array_equal(masked_fill(scores), [[-4.0 - MASK_MARGIN], [10.0 - MASK_MARGIN]])


def reference_softmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax over the allowed entries only, in float64: masked entries never enter it."""
    allowed = np.where(mask, scores.astype(np.float64), -np.inf)
    weights = np.exp(allowed - allowed.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True)


def test_masked_keys_get_exactly_zero_weight():
    """Not e^-30: a masked padding token's value can be huge, and e^-30 of it would reach the output."""
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(4, 40)).astype("float32")
    mask = rng.random((4, 40)) < 0.5
    probabilities = masked_softmax(tf.constant(scores), tf.constant(mask)).numpy()
    assert (probabilities[~mask] == 0).all()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_a_non_finite_score_changes_only_its_own_row(dtype):
    """A NaN reaches the row that holds it. Under mixed precision an infinite score (a float16 overflow)
    reaches nothing: masked it gets weight 0, allowed and negative too (as in Keras)."""
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(2, 3, 16)).astype("float32")
    mask = np.ones(scores.shape, bool)
    mask[..., 5:8] = False
    scores[0, 0, 5] = np.nan  # masked
    if dtype != "float32":
        scores[0, 1, 6], scores[0, 1, 7] = np.inf, -np.inf  # masked
        scores[0, 2, 2] = -np.inf  # allowed
    probabilities = masked_softmax(tf.cast(scores, dtype), tf.constant(mask)).numpy().astype("float32")
    assert np.isnan(probabilities[0, 0]).all()
    expected = reference_softmax(np.asarray(tf.cast(tf.cast(scores, dtype), "float32")), mask)
    tolerance = {"float32": 1e-6, "float16": 1e-3, "bfloat16": 1e-2}[dtype]
    np.testing.assert_allclose(probabilities[0, 1:], expected[0, 1:], atol=tolerance)
    np.testing.assert_allclose(probabilities[1], expected[1], atol=tolerance)
