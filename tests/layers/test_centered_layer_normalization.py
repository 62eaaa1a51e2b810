"""CenteredLayerNormalization equals Keras's LayerNormalization and saves; the rewrite swaps it in."""

import keras
import numpy as np
import pytest

import keras_sparse as ks


@pytest.mark.parametrize(
    "arguments",
    [{}, {"axis": [1, 2]}, {"axis": 1}, {"center": False}, {"scale": False}, {"epsilon": 1e-5}],
    ids=["last", "two-axes", "middle", "no-beta", "no-gamma", "epsilon"],
)
def test_equals_keras_layer_normalization_with_the_same_weights(arguments):
    x = np.random.default_rng(0).normal(4.0, 3.0, size=(3, 6, 10)).astype("float32")
    theirs = keras.layers.LayerNormalization(**arguments)
    theirs.build(x.shape)
    theirs.set_weights([np.random.default_rng(i).normal(size=w.shape) for i, w in enumerate(theirs.weights)])
    ours = ks.layers.CenteredLayerNormalization.from_config(theirs.get_config())
    ours.build(x.shape)
    ours.set_weights(theirs.get_weights())
    expected = np.asarray(theirs(x))
    assert np.abs(np.asarray(ours(x)) - expected).max() / np.abs(expected).max() < 1e-5


def test_mixed_precision_computes_in_float32():
    ours = ks.layers.CenteredLayerNormalization(dtype="mixed_float16")
    theirs = keras.layers.LayerNormalization(dtype="mixed_float16")
    x = np.random.default_rng(0).normal(size=(2, 8)).astype("float16")
    assert ours(x).dtype == theirs(x).dtype == "float16"
    np.testing.assert_allclose(np.asarray(ours(x), "float32"), np.asarray(theirs(x), "float32"), atol=2e-3)


def test_saves_and_loads(tmp_path):
    x = keras.Input((4, 6))
    model = keras.Model(x, ks.layers.CenteredLayerNormalization(epsilon=1e-4)(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    data = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(data)), np.asarray(model(data)))
    assert isinstance(loaded.layers[1], ks.layers.CenteredLayerNormalization)


def test_centered_layer_norms_swaps_keras_layer_normalization_and_keeps_outputs():
    x = keras.Input((8, 6))
    model = keras.Model(x, keras.layers.LayerNormalization()(x * 3.0 + 1.0))
    copy = ks.centered_layer_norms(model)
    assert [type(layer).__name__ for layer in copy.layers if "Normalization" in type(layer).__name__] == [
        "CenteredLayerNormalization"
    ]
    data = np.random.default_rng(0).normal(size=(2, 8, 6)).astype("float32")
    np.testing.assert_allclose(np.asarray(copy(data)), np.asarray(model(data)), atol=1e-5)


def test_centered_layer_norms_reaches_encoders_keeps_outputs_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    x = keras.Input((64, 16))
    encoder = ks.layers.SparseTransformerEncoder(2, 32, pattern=ks.patterns.SlidingWindow(16, block_size=16))
    model = keras.Model(x, encoder(x))
    copy = ks.centered_layer_norms(model)
    norms = [layer for layer in copy._flatten_layers() if isinstance(layer, keras.layers.LayerNormalization)]
    assert len(norms) == 2 and all(isinstance(layer, ks.layers.CenteredLayerNormalization) for layer in norms)
    assert not model.layers[1].centered_layer_norm  # the original is unchanged
    data = np.random.default_rng(0).normal(2.0, 3.0, size=(2, 64, 16)).astype("float32")
    expected = np.asarray(model(data))
    assert np.abs(np.asarray(copy(data)) - expected).max() / np.abs(expected).max() < 1e-5
    copy.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.layers[1].centered_layer_norm
    np.testing.assert_array_equal(np.asarray(loaded(data)), np.asarray(copy(data)))
