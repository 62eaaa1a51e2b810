"""PositionEmbedding: the sinusoidal table, learned weights, limits, config."""

import math

import keras
import numpy as np
import pytest

import keras_sparse as ks


def test_sinusoidal_values():
    table = np.asarray(ks.layers.PositionEmbedding(50, kind="sinusoidal")(np.zeros((1, 50, 8), "float32")))[0]
    position, feature = 7, 5  # odd feature: cos with the rate of feature 4
    assert table[position, feature] == pytest.approx(math.cos(position / 10000 ** (4 / 8)), abs=1e-6)
    assert table[position, 4] == pytest.approx(math.sin(position / 10000 ** (4 / 8)), abs=1e-6)


def test_learned_table_is_a_weight_and_shorter_inputs_slice_it():
    layer = ks.layers.PositionEmbedding(64)
    out = np.asarray(layer(np.zeros((2, 40, 8), "float32")))
    assert [w.shape for w in layer.weights] == [(64, 8)]
    np.testing.assert_array_equal(out[1], np.asarray(layer.table)[:40])


def test_longer_input_is_refused():
    with pytest.raises(ValueError, match="sequence_length=16"):
        ks.layers.PositionEmbedding(16)(np.zeros((1, 20, 4), "float32"))


def test_bad_kind_is_named():
    with pytest.raises(ValueError, match="`kind`"):
        ks.layers.PositionEmbedding(16, kind="rotary")


def test_config_round_trip():
    layer = ks.layers.PositionEmbedding(16, kind="sinusoidal", name="p")
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert again.get_config() == layer.get_config()


def test_rotary_encoding_equals_keras_hubs_rotary_embedding_at_any_start():
    keras_hub = pytest.importorskip("keras_hub")
    from keras_sparse.layers.position_embedding import rotary_encoding

    x = np.random.default_rng(0).normal(size=(2, 40, 3, 8)).astype("float32")  # (batch, T, heads, key_dim)
    reference = keras_hub.layers.RotaryEmbedding(max_wavelength=500)
    np.testing.assert_allclose(rotary_encoding(x, np.arange(40), 500.0), reference(x), atol=2e-5)
    shifted = reference(x, start_index=1000)  # a cached decoding step far out
    np.testing.assert_allclose(rotary_encoding(x, 1000 + np.arange(40), 500.0), shifted, atol=2e-4)


def test_rotary_attention_refuses_what_has_no_positions():
    with pytest.raises(ValueError, match="argument `rotary_max_wavelength`.*odd key_dim"):
        ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=5, rotary_max_wavelength=1e4)
    layer = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, rotary_max_wavelength=1e4)
    query, value = np.zeros((1, 4, 8), "float32"), np.zeros((1, 6, 8), "float32")
    with pytest.raises(ValueError, match="argument `rotary_max_wavelength`.*cross-attention"):
        layer(query, value)
