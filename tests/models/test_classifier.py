"""SparseTransformerClassifier: a plain functional model that trains, saves, and trains on two replicas."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from tests.two_devices import run_on_two_devices

PATTERN = ks.patterns.BigBird(block_size=16, num_global_blocks=1, num_random_blocks=1, seed=0)


def small_classifier(**kwargs):
    arguments = dict(
        vocab_size=23,
        seq_len=128,
        num_layers=2,
        hidden_dim=32,
        num_heads=2,
        intermediate_dim=64,
        pattern=PATTERN,
        num_classes=10,
    )
    return ks.models.SparseTransformerClassifier(**{**arguments, **kwargs})


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(num_layers=-1), "num_layers"),
        (dict(normalize_first="no"), "normalize_first"),
        (dict(vocab_size=16.5), "vocab_size"),
        (dict(dropout=1.0), "dropout"),
        (dict(pooling="max"), "pooling"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        small_classifier(**kwargs)


def test_numpy_scalars_are_accepted_where_python_numbers_are():
    i = np.int64
    model = small_classifier(
        vocab_size=i(23), seq_len=i(128), num_layers=i(1), hidden_dim=i(32), num_classes=i(3), dropout=np.float32(0)
    )
    reference = small_classifier(num_layers=1, num_classes=3, dropout=0.0)
    reference.set_weights(model.get_weights())
    tokens = ks.datasets.far_retrieval(2, 128).inputs
    np.testing.assert_array_equal(model.predict(tokens, verbose=0), reference.predict(tokens, verbose=0))


@pytest.mark.parametrize("pooling, position", [("cls", "learned"), ("mean", "sinusoidal")])
def test_save_and_load(pooling, position, tmp_path):
    model = small_classifier(pooling=pooling, position=position, normalize_first=pooling == "mean")
    tokens = ks.datasets.far_retrieval(4, 128).inputs
    model.save(tmp_path / "classifier.keras")
    loaded = keras.models.load_model(tmp_path / "classifier.keras")
    np.testing.assert_array_equal(loaded.predict(tokens, verbose=0), model.predict(tokens, verbose=0))
    assert model.output_shape == (None, 10) and model.input.dtype == "int32"


def test_padding_does_not_reach_real_tokens():
    """Changing what sits at padded positions (embedding of id 0 aside) leaves the logits unchanged."""
    model = small_classifier(pooling="mean")
    tokens = ks.datasets.listops(2, 128, seed=0, min_length=20).inputs
    embedding = model.get_layer("token_embedding")
    before = model.predict(tokens, verbose=0)
    embedding.embeddings.assign(np.asarray(embedding.embeddings) * np.r_[[10.0], np.ones(22)][:, None])
    np.testing.assert_allclose(model.predict(tokens, verbose=0), before, rtol=1e-5, atol=1e-6)


def test_bad_pooling_is_named():
    with pytest.raises(ValueError, match="`pooling`"):
        small_classifier(pooling="max")


def test_two_replicas_train_as_one_device():
    """MirroredStrategy over two logical CPUs: same global batches, same weights as on one device."""
    stdout = run_on_two_devices(
        """
        data = ks.datasets.far_retrieval(128, 64, seed=0)

        def train(scope, initial=None):
            with scope.scope():
                model = ks.models.SparseTransformerClassifier(
                    len(data.vocabulary), 64, 1, 32, 2, 64, ks.patterns.BigBird(16, num_global_blocks=1), 10,
                    dropout=0.0)
                model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            if initial is not None:
                model.set_weights(initial)
            start = model.get_weights()
            model.fit(ks.datasets.as_dataset(data, 32), epochs=2, verbose=0)
            return start, model.get_weights()

        start, one = train(tf.distribute.get_strategy())
        _, two = train(strategy, initial=start)
        moved = max(float(np.abs(a - b).max()) for a, b in zip(start, one))
        worst = max(float(np.abs(a - b).max()) for a, b in zip(one, two))
        assert moved > 1e-2 and worst < 1e-3 * moved, (moved, worst)
        print("mirrored classifier ok", worst)
        """
    )
    assert "mirrored classifier ok" in stdout
