"""The LSH kernel under every float dtype: hashed in float32, so the same keys land in the same buckets."""

import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks

UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float64": 2.0**-24}


@pytest.mark.parametrize("dtype", UNIT_ROUNDOFF)
def test_matches_float32_on_the_same_keys(dtype):
    rng = np.random.default_rng(0)
    query, value = (tf.cast(rng.normal(size=(2, 64, 2, 8)), dtype) for _ in range(2))
    key = tf.math.l2_normalize(query, axis=-1)
    key_mask = tf.constant(np.arange(64)[None] < np.array([[64], [58]]))
    pattern = ks.patterns.LSH(4, num_hashes=2, chunk_size=16)
    output, _ = ks.kernels.lsh_attention(query, key, value, pattern, key_mask)
    as_float32 = (tf.cast(t, tf.float32) for t in (query, key, value))
    expected, _ = ks.kernels.lsh_attention(*as_float32, pattern, key_mask)
    assert output.dtype == dtype
    error = np.abs(tf.cast(output, tf.float32) - expected).max() / np.abs(expected).max()
    assert error < 10 * UNIT_ROUNDOFF[dtype]
