"""Config, saving, tracing, XLA, training, dropout, Keras masks, attention scores and shapes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks
from tests.reference import RELATIVE_TOLERANCE, full_mask, relative_error, twin_layers

PATTERN = ks.patterns.BigBird(8, num_global_blocks=1, num_random_blocks=1, seed=3)


def make_layer(**kwargs):
    return ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=4, pattern=PATTERN, **kwargs)


def inputs(batch=2, seq_len=40, dim=6, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, seq_len, dim)).astype("float32")


def test_config_round_trip_keeps_every_argument():
    layer = make_layer(
        implementation="segment",
        dropout=0.1,
        value_dim=3,
        output_shape=5,
        use_gate=True,
        seed=4,
        blockwise_softmax=True,
    )
    config = layer.get_config()
    restored = ks.layers.SparseMultiHeadAttention.from_config(config)
    assert restored.get_config() == config
    assert restored.pattern == PATTERN and restored.implementation == "segment" and restored.blockwise_softmax
    assert set(keras.layers.MultiHeadAttention(num_heads=1, key_dim=1).get_config()) <= set(config)


def test_keras_file_round_trip_needs_no_custom_objects(tmp_path):
    x = keras.Input((40, 6))
    model = keras.Model(x, make_layer()(x, x))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    data = inputs()
    np.testing.assert_allclose(loaded(data), model(data), rtol=0, atol=1e-6)
    assert loaded.layers[1].pattern == PATTERN


@pytest.mark.parametrize("implementation", ["blocked", "segment", "dense"])
def test_xla_compiled_call_equals_eager(implementation):
    layer = make_layer(implementation=implementation)
    data = inputs()
    eager = layer(data, data)
    compiled = tf.function(lambda q: layer(q, q), jit_compile=True)
    np.testing.assert_allclose(compiled(data), eager, rtol=0, atol=1e-5)


def test_xla_compiled_blockwise_softmax_equals_eager():
    layer = make_layer(implementation="blocked", blockwise_softmax=True)
    data = inputs()
    compiled = tf.function(lambda q: layer(q, q), jit_compile=True)
    np.testing.assert_allclose(compiled(data), layer(data, data), rtol=0, atol=1e-5)


@pytest.mark.parametrize("implementation", ["blocked", "sparse", "segment"])
def test_traced_with_a_dynamic_batch(implementation):
    layer = make_layer(implementation=implementation)
    traced = tf.function(lambda q: layer(q, q), input_signature=[tf.TensorSpec((None, 40, 6), tf.float32)])
    for batch in (1, 3):
        data = inputs(batch=batch)
        np.testing.assert_allclose(traced(data), layer(data, data), rtol=0, atol=1e-6)


@pytest.mark.parametrize("implementation", ["blocked", "sparse"])
def test_fit_lowers_the_loss(implementation):
    keras.utils.set_random_seed(0)
    x = keras.Input((32, 4))
    h = ks.layers.SparseMultiHeadAttention(
        num_heads=2, key_dim=4, pattern=ks.patterns.SlidingWindow(8, block_size=8), implementation=implementation
    )(x, x)
    model = keras.Model(x, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(h)))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    data = inputs(batch=64, seq_len=32, dim=4)
    target = data[:, :, 0].mean(axis=1, keepdims=True) * 3
    history = model.fit(data, target, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_blockwise_softmax_must_be_a_bool():
    with pytest.raises(ValueError, match="`blockwise_softmax`"):
        make_layer(blockwise_softmax="yes")


@pytest.mark.parametrize("blockwise_softmax", [False, True])
def test_dropout_only_in_training(blockwise_softmax):
    data = inputs()
    keras_layer, layer = twin_layers(
        PATTERN, "blocked", data, num_heads=2, key_dim=4, dropout=0.5, seed=1, blockwise_softmax=blockwise_softmax
    )
    reference = keras_layer(data, data, attention_mask=PATTERN.mask(40)[None], training=False)
    assert relative_error(layer(data, data, training=False), reference, np.ones((2, 40), bool)) < RELATIVE_TOLERANCE
    assert np.abs(layer(data, data, training=True) - reference).max() > 1e-3


@pytest.mark.parametrize("implementation", ["blocked", "sparse", "segment"])
def test_attention_scores_equal_keras_scores(implementation):
    data = inputs()
    keras_layer, layer = twin_layers(PATTERN, implementation, data, num_heads=2, key_dim=4)
    _, expected = keras_layer(data, data, attention_mask=PATTERN.mask(40)[None], return_attention_scores=True)
    output, scores = layer(data, data, return_attention_scores=True)
    assert scores.shape == (2, 2, 40, 40)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    symbolic = keras.Input((40, 6))
    out, sym_scores = layer(symbolic, symbolic, return_attention_scores=True)
    assert tuple(sym_scores.shape) == (None, 2, 40, 40) and tuple(out.shape) == (None, 40, 6)


def test_keras_masks_from_embedding_are_honoured_and_propagated():
    tokens = np.array([[3, 4, 5, 6, 0, 0, 0, 0] * 4, [1, 2, 3, 4, 5, 6, 7, 8] * 4])
    tokens[0, 8:] = 0  # first sequence: 4 real tokens then padding
    embed = keras.layers.Embedding(10, 6, mask_zero=True)
    keras_layer, layer = twin_layers(PATTERN, "blocked", embed(tokens), num_heads=2, key_dim=4)
    x = embed(tokens)
    out = layer(x, x)
    mask = full_mask(PATTERN.mask(32), tokens != 0)
    expected = keras_layer(x, x, attention_mask=mask)
    live = mask.any(-1) & (tokens != 0)
    assert relative_error(out, expected, live) < RELATIVE_TOLERANCE
    np.testing.assert_array_equal(out._keras_mask, tokens != 0)


def test_compute_output_shape_follows_output_shape_argument():
    layer = make_layer(output_shape=9)
    assert layer.compute_output_shape((2, 40, 6), (2, 40, 6)) == (2, 40, 9)
    assert layer(inputs(), inputs()).shape == (2, 40, 9)


def test_weights_are_those_of_keras_in_the_same_order():
    data = inputs()
    keras_layer, layer = twin_layers(PATTERN, "blocked", data, num_heads=2, key_dim=4, use_gate=True)
    assert [w.path.split("/", 1)[1] for w in layer.weights] == [w.path.split("/", 1)[1] for w in keras_layer.weights]
