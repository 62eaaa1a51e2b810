"""Where a local window fails and global blocks succeed: the far-retrieval task at L=256."""

import keras
import pytest

import keras_sparse as ks


def accuracy(pattern) -> float:
    train, test = ks.datasets.far_retrieval(1280, 256, seed=0), ks.datasets.far_retrieval(200, 256, seed=1)
    keras.utils.set_random_seed(0)
    model = ks.models.SparseTransformerClassifier(
        len(train.vocabulary),
        256,
        num_layers=1,
        hidden_dim=32,
        num_heads=2,
        intermediate_dim=64,
        pattern=pattern,
        num_classes=10,
        dropout=0.0,
    )
    model.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    model.fit(train.inputs, train.labels, epochs=5, batch_size=32, verbose=0)
    return model.evaluate(test.inputs, test.labels, verbose=0)[1]


@pytest.mark.slow  # 45 s: training two models to retrieve across the sequence
def test_big_bird_retrieves_across_the_sequence_and_a_window_cannot():
    big_bird = accuracy(ks.patterns.BigBird(block_size=32, num_global_blocks=1, num_random_blocks=1, seed=0))
    window = accuracy(ks.patterns.SlidingWindow(window_size=96, block_size=32))
    assert big_bird > 0.9 and window < 0.2, (big_bird, window)
