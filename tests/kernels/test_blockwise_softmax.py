"""The two-level softmax: the one-level softmax's numbers, its dropout, and the chunk widths it picks."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sparse.kernels.blockwise_softmax import blockwise_softmax_attention, chunk_width
from keras_sparse.kernels.masked_softmax import masked_softmax


def scores_values_mask(seed=0, width=24):
    rng = np.random.default_rng(seed)
    scores = rng.normal(scale=4.0, size=(2, 3, 2, 4, width)).astype("float32")
    values = rng.normal(size=(2, 3, 2, width, 5)).astype("float32")
    mask = rng.random(scores.shape) < 0.6
    mask[0, 0, 0, 0] = False  # a row with no allowed key
    mask[1, :, :, :, :8] = False  # whole chunks masked out
    return scores, values, mask


@pytest.mark.parametrize("chunk", [4, 8, 24])
def test_equals_one_softmax_over_the_row(chunk):
    scores, values, mask = scores_values_mask()
    output, probabilities = blockwise_softmax_attention(scores, mask, values, chunk, return_probabilities=True)
    expected = masked_softmax(scores, mask)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(output, tf.matmul(expected, values), rtol=1e-5, atol=1e-6)


def test_dropout_drops_the_same_entries_as_from_one_softmax():
    scores, values, _ = scores_values_mask(seed=1)
    keep = np.random.default_rng(2).random(scores.shape) < 0.7

    def dropout(probabilities):
        return probabilities * tf.reshape(tf.constant(keep / 0.7, tf.float32), tf.shape(probabilities))

    output, _ = blockwise_softmax_attention(scores, None, values, 8, dropout=dropout)
    expected = tf.matmul(dropout(tf.nn.softmax(scores)), values)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)


def test_chunks_are_whole_blocks_near_the_square_root_of_the_width():
    for blocks in range(1, 70):
        for block_size in (8, 32):
            width = blocks * block_size
            chunk = chunk_width(width, block_size)
            assert chunk % block_size == 0 and width % chunk == 0
    assert [chunk_width(w, 32) for w in (96, 160, 1024, 4096)] == [32, 32, 32, 64]


def test_a_chunk_that_does_not_divide_the_row_is_refused():
    scores, values, _ = scores_values_mask()
    with pytest.raises(ValueError, match="`chunk`"):
        blockwise_softmax_attention(scores, None, values, 5)


def test_masked_keys_get_exactly_zero_weight():
    """Not e^-30: sample 1's keys are all huge, and any weight left on a masked one would show."""
    scores, values, mask = scores_values_mask(seed=3)
    values[1] *= 1e30
    output, probabilities = blockwise_softmax_attention(scores, mask, values, 8, return_probabilities=True)
    assert (probabilities.numpy()[~mask] == 0).all()
    np.testing.assert_allclose(output, tf.matmul(masked_softmax(scores, mask), values), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_masked_scores_that_overflowed_leave_no_nan(dtype):
    """Under mixed precision a masked padding key's score can overflow to +-inf."""
    scores, values, mask = scores_values_mask(seed=4)
    scores = tf.cast(scores, dtype).numpy()
    scores[~mask] = np.where(np.random.default_rng(5).random(scores.shape) < 0.5, np.inf, -np.inf)[~mask]
    output, _ = blockwise_softmax_attention(scores, mask, tf.cast(values, dtype), 8)
    finite = tf.cast(np.where(mask, scores, 0), tf.float32)
    expected = tf.matmul(masked_softmax(finite, mask), tf.cast(tf.cast(values, dtype), tf.float32))
    np.testing.assert_allclose(tf.cast(output, tf.float32), expected, atol=0.05)
