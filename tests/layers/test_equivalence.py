"""SparseMultiHeadAttention equals Keras's MultiHeadAttention with `attention_mask=pattern.mask(T)`.

Outputs within float32 relative error 1e-5 and gradients (inputs and weights) within 1e-4,
for every pattern x kernel x {no mask, padding, causal}, on rows that have an allowed key.
"""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_sparse as ks
from tests.reference import GRADIENT_TOLERANCE, RELATIVE_TOLERANCE, full_mask, relative_error, twin_layers

PATTERNS = {
    "dense": ks.patterns.Dense(block_size=16),
    "sliding_window": ks.patterns.SlidingWindow(24, global_tokens=(0, 40)),
    "dilated_window": ks.patterns.SlidingWindow(24, dilation=2, block_size=16),
    "block_local": ks.patterns.BlockLocal(16),
    "big_bird": ks.patterns.BigBird(16, num_sliding_window_blocks=3, num_global_blocks=1, num_random_blocks=2, seed=7),
    "union": ks.patterns.BlockLocal(16) | ks.patterns.SlidingWindow(9),
}
IMPLEMENTATIONS = ["blocked", "sparse", "segment", "dense", "auto"]


def compare_with_keras(pattern, implementation, x, key_padding=None, causal=False, attention_mask=None, **layer_kwargs):
    dense, sparse = twin_layers(pattern, implementation, x, **layer_kwargs)
    seq_len = x.shape[1]
    mask = np.broadcast_to(
        full_mask(pattern.mask(seq_len), key_padding, causal, attention_mask), (x.shape[0], seq_len, seq_len)
    )
    live = mask.any(-1)
    weights = tf.constant(
        np.random.default_rng(3).normal(size=dense.compute_output_shape(x.shape, x.shape)) * live[..., None], tf.float32
    )
    x = tf.constant(x)

    def run(layer, **call_kwargs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, x, **call_kwargs)
            loss = tf.reduce_sum(out * weights)
        return out, tape.gradient(loss, [x, *layer.trainable_weights])

    sparse_kwargs = {"use_causal_mask": causal}
    if key_padding is not None:
        sparse_kwargs["value_mask"] = tf.constant(key_padding)
    if attention_mask is not None:
        sparse_kwargs["attention_mask"] = tf.constant(attention_mask)
    out, grads = run(sparse, **sparse_kwargs)
    ref, ref_grads = run(dense, attention_mask=tf.constant(mask))
    assert relative_error(out, ref, live) < RELATIVE_TOLERANCE
    assert relative_error(grads[0], ref_grads[0], np.ones_like(live)) < GRADIENT_TOLERANCE
    # The key bias's gradient is zero in exact arithmetic (softmax ignores a per-row shift), so weight
    # gradients are measured against the largest weight gradient of the layer.
    scale = max(np.abs(g).max() for g in ref_grads[1:])
    for grad, ref_grad in zip(grads[1:], ref_grads[1:], strict=True):
        assert np.abs(grad - ref_grad).max() / scale < GRADIENT_TOLERANCE


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("pattern", PATTERNS.values(), ids=PATTERNS.keys())
@pytest.mark.parametrize("masking", ["none", "padding", "causal"])
def test_layer_equals_keras_with_the_pattern_as_mask(pattern, implementation, masking):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 70, 12)).astype("float32")
    key_padding = None
    if masking == "padding":
        key_padding = np.ones((2, 70), bool)
        key_padding[1, 52:] = False
    compare_with_keras(
        pattern, implementation, x, key_padding=key_padding, causal=masking == "causal", num_heads=2, key_dim=6
    )


@pytest.mark.parametrize("implementation", ["blocked", "sparse"])
def test_user_attention_mask_is_anded_with_the_pattern(implementation):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 50, 8)).astype("float32")
    attention_mask = rng.random((2, 50, 50)) < 0.7
    compare_with_keras(PATTERNS["big_bird"], implementation, x, attention_mask=attention_mask, num_heads=2, key_dim=4)


@pytest.mark.parametrize("implementation", ["blocked", "sparse"])
def test_keras_arguments_carry_over(implementation):
    """value_dim, output_shape, use_bias=False and use_gate change the weights; all must still match."""
    x = np.random.default_rng(2).normal(size=(1, 50, 10)).astype("float32")
    compare_with_keras(
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
    compare_with_keras(pattern, implementation, x, causal=causal, num_heads=heads, key_dim=key_dim)
