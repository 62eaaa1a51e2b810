"""SparseMultiHeadAttention equals Keras's MultiHeadAttention with `attention_mask=pattern.mask(T)`.

Outputs within float32 relative error 1e-5 and gradients (inputs and weights) within 1e-4,
for every pattern x kernel x {no mask, padding, causal}, on rows that have an allowed key.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_sparse as ks
from tests.reference import (
    RELATIVE_TOLERANCE,
    assert_matches_reference,
    assert_standard_case_matches,
    relative_error,
    twin_layers,
)

PATTERNS = {
    "dense": ks.patterns.Dense(block_size=16),
    "sliding_window": ks.patterns.SlidingWindow(24, global_tokens=(0, 40)),
    "dilated_window": ks.patterns.SlidingWindow(24, dilation=2, block_size=16),
    "block_local": ks.patterns.BlockLocal(16),
    "big_bird": ks.patterns.BigBird(16, num_sliding_window_blocks=3, num_global_blocks=1, num_random_blocks=2, seed=7),
    "union": ks.patterns.BlockLocal(16) | ks.patterns.SlidingWindow(9),
}
IMPLEMENTATIONS = ["blocked", "sparse", "segment", "dense", "auto"]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("pattern", PATTERNS.values(), ids=PATTERNS.keys())
@pytest.mark.parametrize("masking", ["none", "padding", "causal"])
def test_layer_equals_keras_with_the_pattern_as_mask(pattern, implementation, masking):
    assert_standard_case_matches(pattern, implementation, masking)


@pytest.mark.parametrize("pattern", PATTERNS.values(), ids=PATTERNS.keys())
@pytest.mark.parametrize("masking", ["none", "padding", "causal"])
def test_blockwise_softmax_layer_equals_keras_with_the_pattern_as_mask(pattern, masking):
    assert_standard_case_matches(pattern, "blocked", masking, blockwise_softmax=True)


@pytest.mark.parametrize("implementation", ["blocked", "sparse"])
def test_user_attention_mask_is_anded_with_the_pattern(implementation):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 50, 8)).astype("float32")
    attention_mask = rng.random((2, 50, 50)) < 0.7
    assert_matches_reference(
        PATTERNS["big_bird"], implementation, x, attention_mask=attention_mask, num_heads=2, key_dim=4
    )


@pytest.mark.parametrize("implementation", ["blocked", "sparse"])
def test_keras_arguments_carry_over(implementation):
    """value_dim, output_shape, use_bias=False and use_gate change the weights; all must still match."""
    x = np.random.default_rng(2).normal(size=(1, 50, 10)).astype("float32")
    assert_matches_reference(
        PATTERNS["sliding_window"],
        implementation,
        x,
        num_heads=3,
        key_dim=5,
        value_dim=7,
        output_shape=9,
        use_bias=False,
        use_gate=True,
    )


def test_keras_sliding_window_argument_is_anded_with_the_pattern():
    x = np.random.default_rng(4).normal(size=(1, 60, 8)).astype("float32")
    pattern = PATTERNS["big_bird"]
    keras_layer, sparse = twin_layers(pattern, "blocked", x, num_heads=2, key_dim=4, sliding_window=5)
    band = np.abs(np.arange(60)[:, None] - np.arange(60)[None, :]) < 5
    expected = keras_layer(x, x, attention_mask=pattern.mask(60)[None])  # Keras ANDs its own band
    assert relative_error(sparse(x, x), expected, (pattern.mask(60) & band).any(-1)[None]) < RELATIVE_TOLERANCE


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seq_len=st.integers(1, 90),
    block_size=st.integers(1, 33),
    window=st.integers(1, 60),
    heads=st.integers(1, 3),
    key_dim=st.integers(1, 6),
    kind=st.sampled_from(["window", "big_bird", "block_local"]),
    implementation=st.sampled_from(["blocked", "sparse", "segment"]),
    causal=st.booleans(),
)
def test_random_shapes_match_keras(seq_len, block_size, window, heads, key_dim, kind, implementation, causal):
    """Lengths not divisible by the block size, and shorter than the window, included."""
    pattern = {
        "window": ks.patterns.SlidingWindow(window, block_size=block_size),
        "big_bird": ks.patterns.BigBird(block_size, num_global_blocks=1, num_random_blocks=1),
        "block_local": ks.patterns.BlockLocal(block_size),
    }[kind]
    x = np.random.default_rng(seq_len).normal(size=(2, seq_len, 5)).astype("float32")
    assert_matches_reference(pattern, implementation, x, causal=causal, num_heads=heads, key_dim=key_dim)
