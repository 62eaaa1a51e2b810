"""The pattern zoo in the layer: every pattern x kernel x {padding, causal} equals the reference."""

import numpy as np
import pytest

import keras_sparse as ks
from tests.reference import assert_standard_case_matches, twin_layers

ZOO = {
    "strided": ks.patterns.Strided(7, block_size=16),
    "strided_split": ks.patterns.Strided(7, heads="split", block_size=16),
    "fixed": ks.patterns.Fixed(16, 4),
    "fixed_split": ks.patterns.Fixed(16, 4, heads="split"),
    "random_keys": ks.patterns.RandomKeys(6, seed=2, local_window=8, block_size=16),
    "distance_decay": ks.patterns.DistanceDecay(0.3, threshold=1e-2, block_size=16),
    "distance_decay_alibi": ks.patterns.DistanceDecay(0.5, threshold=1e-2, per_head=True, block_size=16),
    "learned": ks.patterns.Learned(np.random.default_rng(5).random((5, 5)) < 0.4, block_size=16),
    "learned_per_head": ks.patterns.Learned(np.random.default_rng(6).random((2, 5, 5)) < 0.4, block_size=16),
    "per_head_dilation": ks.patterns.PerHead([ks.patterns.SlidingWindow(12, dilation=d) for d in (1, 3)]),
}


@pytest.mark.parametrize("implementation", ["blocked", "sparse", "segment", "dense"])
@pytest.mark.parametrize("pattern", ZOO.values(), ids=ZOO.keys())
@pytest.mark.parametrize("masking", ["padding", "causal"])
def test_zoo_pattern_equals_reference(pattern, implementation, masking):
    assert_standard_case_matches(pattern, implementation, masking)


def test_restated_reference_equals_keras_without_bias():
    """The reference used for biased patterns is itself checked against Keras."""
    from tests.reference import full_mask, relative_error, restated_attention

    x = np.random.default_rng(1).normal(size=(2, 30, 8)).astype("float32")
    keras_layer, _ = twin_layers(ks.patterns.Dense(), "dense", x, num_heads=2, key_dim=4)
    mask = np.broadcast_to(full_mask(ks.patterns.Strided(5).mask(30)), (2, 30, 30))
    expected = keras_layer(x, x, attention_mask=mask)
    assert relative_error(restated_attention(keras_layer, x, mask, None), expected, mask.any(-1)) < 1e-6


def test_random_keys_error_to_dense_attention_falls_as_num_keys_grows():
    seq_len = 256
    x = np.random.default_rng(0).normal(size=(4, seq_len, 16)).astype("float32")
    dense_layer, _ = twin_layers(ks.patterns.Dense(), "dense", x, num_heads=2, key_dim=8)
    expected = np.asarray(dense_layer(x, x))
    errors = []
    for num_keys in (4, 16, 64, 256):
        sampled = ks.layers.SparseMultiHeadAttention(
            num_heads=2, key_dim=8, pattern=ks.patterns.RandomKeys(num_keys, seed=1), implementation="segment"
        )
        sampled(x, x)
        sampled.set_weights(dense_layer.get_weights())
        errors.append(float(np.abs(np.asarray(sampled(x, x)) - expected).mean()))
    assert errors[0] > errors[1] > errors[2] > 0
    assert errors[3] < 1e-5  # every key drawn: dense attention exactly
