"""Queries and keys of different lengths: Keras's numbers with the pattern's rectangular form, or a clear error."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.reference import RELATIVE_TOLERANCE, relative_error

BATCH, QUERIES, KEYS = 2, 24, 56


def layers(pattern, **kwargs):
    rng = np.random.default_rng(0)
    query = rng.normal(size=(BATCH, QUERIES, 8)).astype("float32")
    value = rng.normal(size=(BATCH, KEYS, 6)).astype("float32")
    dense = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, **kwargs)
    dense(query, value)
    sparse = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=pattern, **kwargs)
    sparse(query, value)
    sparse.set_weights(dense.get_weights())
    return dense, sparse, query, value


@pytest.mark.parametrize(
    "pattern",
    [
        ks.patterns.Dense(),
        ks.patterns.SlidingWindow(16, global_tokens=(3,)),
        ks.patterns.DistanceDecay(rate=0.1, threshold=0.01),
    ],
    ids=["dense", "window", "distance-decay"],
)
def test_cross_attention_equals_keras_with_the_rectangular_mask(pattern):
    dense, sparse, query, value = layers(pattern)
    keep = np.ones((BATCH, KEYS), bool)
    keep[1, 40:] = False
    mask = pattern.rectangular_mask(QUERIES, KEYS)[None] & keep[:, None, :]
    live = mask.any(-1)
    bias = pattern.rectangular_bias(QUERIES, KEYS)
    if bias is None:
        expected = dense(query, value, attention_mask=mask)
    else:  # Keras's layer takes no bias: its attention written out with the bias added
        q, k, v = dense.query_dense(query), dense.key_dense(value), dense.value_dense(value)
        scores = np.einsum("bthd,bshd->bhts", q, k) / 2.0 + bias
        scores = np.where(mask[:, None], scores, -1e9)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        expected = dense.output_dense(np.einsum("bhts,bshd->bthd", probs, v).astype("float32"))
    actual = sparse(query, value, attention_mask=keep[:, None, :])
    assert relative_error(actual, expected, live) < RELATIVE_TOLERANCE
    actual, scores = sparse(query, value, return_attention_scores=True)
    assert scores.shape == (BATCH, 2, QUERIES, KEYS)


def test_causal_cross_attention_equals_keras():
    dense, sparse, query, value = layers(ks.patterns.Dense())
    expected = dense(query, value, use_causal_mask=True)
    assert relative_error(sparse(query, value, use_causal_mask=True), expected, np.ones(BATCH, bool)) < 1e-5


def test_a_pattern_without_rectangular_form_names_the_layer():
    attention = ks.layers.SparseMultiHeadAttention(
        num_heads=2, key_dim=4, pattern=ks.patterns.BigBird(block_size=8), name="decoder_cross_attention"
    )
    with pytest.raises(ValueError, match="'decoder_cross_attention'.*`pattern`.*no rectangular form"):
        attention(np.zeros((1, QUERIES, 8), "float32"), np.zeros((1, KEYS, 8), "float32"))


def test_rectangular_masks_of_the_patterns_that_have_one():
    window = ks.patterns.SlidingWindow(4, global_tokens=(1,))
    expected = np.abs(np.arange(3)[:, None] - np.arange(6)) <= 2
    expected[1, :] = True
    expected[:, 1] = True
    np.testing.assert_array_equal(window.rectangular_mask(3, 6), expected)
    np.testing.assert_array_equal(window.rectangular_mask(6, 6), window.mask(6))
    combined = window & ks.patterns.BlockLocal(block_size=2)
    np.testing.assert_array_equal(
        combined.rectangular_mask(3, 6), expected & (np.arange(3)[:, None] // 2 == np.arange(6) // 2)
    )
    assert ks.patterns.PerHead([window, ks.patterns.Dense()]).rectangular_mask(3, 6).shape == (2, 3, 6)
    for pattern in (
        ks.patterns.BigBird(block_size=4),
        ks.patterns.RandomKeys(2, block_size=4),
        window | ks.patterns.BigBird(block_size=4),
    ):
        assert not pattern.length_independent
        with pytest.raises(ValueError, match="no rectangular form"):
            pattern.rectangular_mask(3, 6)
