"""The blocked kernel's attention mass per block pair equals the dense probabilities summed per block."""

import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks


@pytest.mark.parametrize(
    "pattern",
    [
        ks.patterns.BigBird(block_size=8, num_sliding_window_blocks=3, num_global_blocks=1, num_random_blocks=1),
        ks.patterns.SlidingWindow(window_size=11, block_size=8),
        ks.patterns.Strided(stride=8, block_size=8),
    ],
    ids=["bigbird", "window", "strided"],
)
@pytest.mark.parametrize("blockwise_softmax", [False, True])
def test_block_mass_sums_probabilities_per_block(pattern, blockwise_softmax):
    seq_len, heads, dim, block = 60, 2, 4, 8
    rng = np.random.default_rng(0)
    q, k, v = (tf.constant(rng.normal(size=(3, seq_len, heads, dim)), tf.float32) for _ in range(3))
    plan = ks.kernels.plan_gathered_blocks(pattern.for_heads(heads), seq_len)
    masses = []
    _, probs = ks.kernels.gathered_block_attention(
        q, k, v, plan, return_scores=True, on_block_mass=masses.append, blockwise_softmax=blockwise_softmax
    )
    (mass,) = masses
    padded = plan.num_blocks * block
    dense = np.zeros((3, heads, padded, padded), "float32")
    dense[:, :, :seq_len, :seq_len] = np.asarray(probs)
    expected = dense.reshape(3, heads, plan.num_blocks, block, plan.num_blocks, block).sum(axis=(0, 3, 5))
    np.testing.assert_allclose(np.asarray(mass), expected, rtol=1e-5, atol=1e-5)
    assert mass.shape == (heads, plan.num_blocks, plan.num_blocks)
    np.testing.assert_allclose(np.asarray(mass).sum(axis=(1, 2)), 3 * seq_len, rtol=1e-5)
