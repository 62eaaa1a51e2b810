"""`rewrite_layers`: copies with replacements at any depth, keeping class, config and (separate) weights."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.rewrites.hub_models import backbone, inputs


@keras.saving.register_keras_serializable(package="tests")
class Residual(keras.layers.Layer):
    """Holds a Dense as an attribute."""

    def build(self, input_shape):
        self.inner = keras.layers.Dense(input_shape[-1], name="inner")
        self.inner.build(input_shape)

    def call(self, x):
        return x + self.inner(x)


class Unrebuildable(keras.layers.Layer):
    """Its config lacks an argument of its constructor."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {"name": self.name}


def model():
    keras.utils.set_random_seed(0)
    x = keras.Input((4, 6))
    inner_input = keras.Input((4, 6))
    inner = keras.Model(inner_input, Residual(name="residual")(inner_input), name="inner")
    return keras.Model(x, keras.layers.Dense(2, name="head")(inner(x)))


def test_a_replacement_deep_inside_is_swapped_and_the_rest_copied_with_its_weights():
    original = model()
    seen = []

    def replace(layer):
        seen.append(layer.name)
        if layer.name == "inner" and isinstance(layer, keras.layers.Dense):
            return keras.layers.Dense(6, activation="relu", name="inner")
        return None

    copy = ks.rewrites.rewrite_layers(original, replace)
    assert {"inner", "residual", "head"} <= set(seen)
    assert copy.get_layer("inner").get_layer("residual").inner.activation is keras.activations.relu
    for old, new in zip(original.weights, copy.weights, strict=True):
        np.testing.assert_array_equal(old.numpy(), new.numpy())
        assert old is not new
    x = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    inner = original.get_layer("inner").get_layer("residual").inner
    expected = original.get_layer("head")(x + np.maximum(inner(x), 0))
    np.testing.assert_allclose(copy(x), expected, atol=1e-6)


def test_a_keras_hub_backbone_copy_keeps_its_class_and_has_its_own_variables():
    original = backbone("GPT2")
    copy = ks.rewrites.rewrite_layers(original, lambda layer: None)
    assert type(copy) is type(original) and copy.get_config() == original.get_config()
    data = inputs(original)
    np.testing.assert_array_equal(copy(data), original(data))
    copy.token_embedding.embeddings.assign(np.zeros(copy.token_embedding.embeddings.shape))
    assert np.abs(original.token_embedding.embeddings.numpy()).max() > 0


def test_a_layer_that_does_not_rebuild_from_its_config_is_named():
    x = keras.Input((4, 6))
    broken = keras.Model(x, Unrebuildable(3, name="unrebuildable")(x))
    with pytest.raises(ValueError, match="'unrebuildable'.*does not rebuild from its own config"):
        ks.rewrites.rewrite_layers(broken, lambda layer: None)
