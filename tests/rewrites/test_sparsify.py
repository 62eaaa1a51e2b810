"""`sparsify` reaches attention at any depth of plain Keras models, and says what it leaves dense."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.reference import RELATIVE_TOLERANCE, relative_error

LENGTH, WIDTH = 64, 16
PATTERN = ks.patterns.SlidingWindow(16, global_tokens=(0,), block_size=8)


def sparse_layers(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, ks.layers.SparseMultiHeadAttention)]


@keras.saving.register_keras_serializable(package="tests")
class AttentionBlock(keras.layers.Layer):
    """A custom layer holding its attention as an attribute, created in build() (as keras-hub's encoders do)."""

    def build(self, input_shape):
        self.attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)
        self.attention.build(input_shape, input_shape)
        self.norm = keras.layers.LayerNormalization()
        self.norm.build(input_shape)

    def call(self, x, attention_mask=None):
        return self.norm(x + self.attention(x, x, attention_mask=attention_mask))


@keras.saving.register_keras_serializable(package="tests")
class ConfiguredAttention(keras.layers.MultiHeadAttention):
    """A subclass that only adds an argument: it computes Keras's attention."""

    def __init__(self, note="", **kwargs):
        super().__init__(**kwargs)
        self.note = note

    def get_config(self):
        return {**super().get_config(), "note": self.note}


class TemperedAttention(keras.layers.MultiHeadAttention):
    """A subclass that computes something else."""

    def _compute_attention(self, query, key, value, attention_mask=None, training=None, **kwargs):
        return super()._compute_attention(query * 2.0, key, value, attention_mask, training, **kwargs)


def nested_model(mask=None):
    """Attention in a nested functional model, after a nested Sequential, and inside a custom layer."""
    keras.utils.set_random_seed(0)
    inner_input = keras.Input((LENGTH, WIDTH))
    attention = ConfiguredAttention(num_heads=2, key_dim=8, note="kept", name="inner_attention")
    inner = keras.Model(inner_input, attention(inner_input, inner_input, attention_mask=mask), name="inner")
    projection = keras.Sequential([keras.Input((LENGTH, WIDTH)), keras.layers.Dense(WIDTH)], name="projection")
    x = keras.Input((LENGTH, WIDTH))
    y = AttentionBlock(name="block")(inner(projection(x)), attention_mask=mask)
    return keras.Model(x, keras.layers.Dense(3)(y))


def data():
    return np.random.default_rng(0).normal(size=(2, LENGTH, WIDTH)).astype("float32")


def test_sparsify_reaches_nested_models_custom_layers_and_subclasses_and_equals_keras_with_masks():
    model = nested_model()
    sparse = ks.sparsify(model, PATTERN)
    assert len(sparse_layers(sparse)) == 2 and not sparse_layers(model)
    reference = nested_model(mask=PATTERN.mask(LENGTH)[None])
    reference.set_weights(model.get_weights())
    x = data()
    assert relative_error(sparse(x), reference(x), np.ones(2, bool)) < RELATIVE_TOLERANCE
    dense_copy = ks.sparsify(model, ks.patterns.Dense(block_size=8))
    assert relative_error(dense_copy(x), model(x), np.ones(2, bool)) < 1e-6


def test_the_copy_loads_back_sparse_and_trains_apart_from_the_original(tmp_path):
    model = nested_model()
    sparse = ks.sparsify(model, PATTERN)
    sparse.save(tmp_path / "sparse.keras")
    loaded = keras.saving.load_model(tmp_path / "sparse.keras")
    assert [layer.pattern for layer in sparse_layers(loaded)] == [PATTERN, PATTERN]
    x = data()
    np.testing.assert_allclose(loaded(x), sparse(x), atol=1e-6)
    before = [w.copy() for w in model.get_weights()]
    sparse.compile(optimizer="sgd", loss="mse")
    sparse.fit(x, np.zeros((2, LENGTH, 3)), epochs=1, verbose=0)
    for old, now in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, now)


def test_subclasses_that_compute_otherwise_are_left_dense_and_named():
    x = keras.Input((LENGTH, WIDTH))
    y = TemperedAttention(num_heads=2, key_dim=8, name="tempered")(x, x)
    model = keras.Model(x, keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="plain")(y, y))
    with pytest.warns(ks.rewrites.AttentionLeftDenseWarning, match="'tempered'.*overrides.*_compute_attention"):
        sparse = ks.sparsify(model, PATTERN)
    assert [layer.name for layer in sparse_layers(sparse)] == ["plain"]
    only_tempered = keras.Model(x, y)
    with pytest.raises(ValueError, match="none of whose attention layers.*'tempered'"):
        ks.sparsify(only_tempered, PATTERN)


def test_cross_attention_stays_dense_unless_asked():
    queries, keys = keras.Input((24, WIDTH)), keras.Input((LENGTH, WIDTH))
    self_attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="self")
    cross_attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="cross")
    y = self_attention(keys, keys)
    model = keras.Model([queries, keys], cross_attention(queries, y))
    assert [layer.name for layer in sparse_layers(ks.sparsify(model, PATTERN))] == ["self"]
    both = ks.sparsify(model, PATTERN, cross_attention_pattern=ks.patterns.Dense())
    assert [(layer.name, type(layer.pattern).__name__) for layer in sparse_layers(both)] == [
        ("self", "SlidingWindow"),
        ("cross", "Dense"),
    ]
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(2, 24, WIDTH)).astype("float32"), rng.normal(size=(2, LENGTH, WIDTH)).astype("float32")]
    reference = keras.Model(
        [queries, keys], cross_attention(queries, self_attention(keys, keys, attention_mask=PATTERN.mask(LENGTH)[None]))
    )
    assert relative_error(both(inputs), reference(inputs), np.ones(2, bool)) < RELATIVE_TOLERANCE
    only_cross = keras.Model([queries, keys], cross_attention(queries, keys))
    with pytest.raises(ValueError, match="cross_attention_pattern"):
        ks.sparsify(only_cross, PATTERN)


def test_sparsify_reaches_our_encoders_and_repatterns_sparse_layers():
    model = ks.models.SparseTransformerClassifier(
        12, LENGTH, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32, pattern=None, num_classes=3
    )
    sparse = ks.sparsify(model, PATTERN)
    assert [layer.pattern for layer in sparse_layers(sparse)] == [PATTERN]
    assert sparse.get_layer("encoder_0").get_config()["pattern"]["class_name"] == "SlidingWindow"


def test_sparsify_errors_name_the_argument():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="`model`"):
        ks.sparsify(Subclassed(), PATTERN)
    with pytest.raises(ValueError, match="`pattern`"):
        ks.sparsify(nested_model(), "sliding")
    with pytest.raises(ValueError, match="`cross_attention_pattern`"):
        ks.sparsify(nested_model(), PATTERN, cross_attention_pattern="dense")
    for length_dependent in (ks.patterns.BigBird(block_size=16), ks.patterns.RandomKeys(4), ks.patterns.LSH(4)):
        with pytest.raises(ValueError, match="`cross_attention_pattern`.*no rectangular form.*Dense, SlidingWindow"):
            ks.sparsify(nested_model(), PATTERN, cross_attention_pattern=length_dependent)
    with pytest.raises(ValueError, match="no attention layer"):
        ks.sparsify(keras.Sequential([keras.Input((LENGTH, WIDTH)), keras.layers.Dense(8)]), PATTERN)
    with pytest.raises(ValueError, match="`implementation`"):
        ks.sparsify(nested_model(), PATTERN, implementation="fast")
