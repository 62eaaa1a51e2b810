"""The token-pair kernels' masked scores: each masked pair is filled below its own query row's scores."""

import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks
from keras_sparse.kernels.token_pair_scores import pair_row_minimum


def test_row_minimum_is_taken_per_query_row_and_sample():
    pairs = ks.kernels.plan_token_pairs(ks.patterns.SlidingWindow(5, dilation=2), seq_len=12, num_heads=2)
    scores = np.random.default_rng(0).normal(size=(3, pairs.nnz)).astype("float32")
    expected = np.empty_like(scores)
    for row in np.unique(pairs.query_rows):
        in_row = pairs.query_rows == row
        expected[:, in_row] = scores[:, in_row].min(-1, keepdims=True)
    np.testing.assert_array_equal(pair_row_minimum(tf.constant(scores), pairs), expected)


@pytest.mark.parametrize("kernel", [ks.kernels.segment_attention, ks.kernels.sparse_attention])
def test_a_masked_nan_key_reaches_only_the_rows_that_hold_it(kernel):
    pairs = ks.kernels.plan_token_pairs(ks.patterns.SlidingWindow(5), seq_len=12, num_heads=1)
    clean = np.random.default_rng(1).normal(size=(2, 12, 1, 4)).astype("float32")
    x = clean.copy()
    x[0, 3] = np.nan
    key_mask = np.ones((2, 12), bool)
    key_mask[0, 3] = False
    output, _ = kernel(x, x, x, pairs, key_mask=tf.constant(key_mask))
    expected, _ = kernel(clean, clean, clean, pairs, key_mask=tf.constant(key_mask))
    untouched = ~np.isin(np.arange(12), pairs.query_rows[pairs.key_rows == 3])
    assert untouched.sum() == 7
    np.testing.assert_allclose(output[0][untouched], expected[0][untouched], rtol=1e-6)
    np.testing.assert_allclose(output[1], expected[1], rtol=1e-6)
