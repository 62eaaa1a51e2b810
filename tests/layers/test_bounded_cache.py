"""`SparseMultiHeadAttention(bounded_cache=True)`: a ring-buffer cache gives Keras's whole-sequence rows.

Reference: Keras's own `MultiHeadAttention` over the whole sequence with the pattern and a causal mask as
`attention_mask`, with the same weights. Tokens arrive in chunks of several sizes, some longer than the ring,
and the sequence runs far past the window.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks
from tests.reference import RELATIVE_TOLERANCE, relative_error

BATCH, LENGTH, HEADS, KEY_DIM = 2, 61, 2, 4

PATTERNS = {
    "window": ks.patterns.SlidingWindow(8, block_size=8),
    "window+sinks": ks.patterns.SlidingWindow(9, global_tokens=(0, 1, 2), block_size=8),
    "gapped sinks, dilation": ks.patterns.SlidingWindow(12, global_tokens=(0, 4), dilation=2, block_size=8),
}


def twins(pattern):
    x = np.random.default_rng(0).normal(size=(BATCH, LENGTH, 8)).astype("float32")
    dense = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)
    dense(x, x)
    sparse = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM, pattern=pattern, causal=True)
    sparse(x, x)
    sparse.set_weights(dense.get_weights())
    return x, dense, sparse


@pytest.mark.parametrize("name", PATTERNS)
@pytest.mark.parametrize("chunks", [(1,), (5, 1, 3), (16, 1)])
def test_ring_buffer_rows_equal_keras_whole_sequence(name, chunks):
    pattern = PATTERNS[name]
    x, dense, sparse = twins(pattern)
    mask = pattern.mask(LENGTH) & np.tri(LENGTH, dtype=bool)
    expected = dense(x, x, attention_mask=np.broadcast_to(mask, (BATCH, LENGTH, LENGTH))).numpy()
    layout = ks.kernels.ring_buffer_layout(pattern)
    cache = tf.zeros((BATCH, 2, layout.length, HEADS, KEY_DIM))
    step = tf.function(lambda q, c, p: sparse(q, q, cache=c, cache_update_index=p, bounded_cache=True))
    position, index, outputs = 0, 0, []
    while position < LENGTH:
        size = min(chunks[index % len(chunks)], LENGTH - position)
        output, cache = step(x[:, position : position + size], cache, tf.constant(position))
        assert cache.shape == (BATCH, 2, layout.length, HEADS, KEY_DIM)
        outputs.append(output.numpy())
        position, index = position + size, index + 1
    assert relative_error(np.concatenate(outputs, axis=1), expected, ...) < RELATIVE_TOLERANCE


def test_bounded_cache_errors_name_the_argument():
    x, _, sparse = twins(PATTERNS["window+sinks"])
    wrong = tf.zeros((BATCH, 2, 20, HEADS, KEY_DIM))
    with pytest.raises(ValueError, match=r"argument `cache`.*\(batch, 2, 8, 2, 4\) ring-buffer cache"):
        sparse(x[:, :1], x[:, :1], cache=wrong, cache_update_index=0, bounded_cache=True)
    with pytest.raises(ValueError, match="argument `cache`"):
        sparse(x[:, :1], x[:, :1], bounded_cache=True)
    not_causal = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM, pattern=PATTERNS["window"])
    cache = tf.zeros((BATCH, 2, 5, HEADS, KEY_DIM))
    with pytest.raises(ValueError, match="argument `bounded_cache`"):
        not_causal(x[:, :1], x[:, :1], cache=cache, cache_update_index=0, bounded_cache=True)
    dense = ks.layers.SparseMultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM, causal=True)
    with pytest.raises(ValueError, match="argument `pattern`.*cache='full'"):
        dense(x[:, :1], x[:, :1], cache=cache, cache_update_index=0, bounded_cache=True)
