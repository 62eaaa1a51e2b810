"""End to end: pruning heads or attention blocks to 50% during fit keeps accuracy (same seed, same steps)."""

import keras
import pytest

import keras_sparse as ks

SEQ_LEN = 128


@pytest.fixture(scope="module")
def task():
    return ks.datasets.far_retrieval(1280, SEQ_LEN, seed=0), ks.datasets.far_retrieval(300, SEQ_LEN, seed=1)


def trained_accuracy(task, structure=None):
    train, test = task
    keras.utils.set_random_seed(0)
    model = ks.models.SparseTransformerClassifier(
        len(train.vocabulary),
        SEQ_LEN,
        num_layers=1,
        hidden_dim=32,
        num_heads=4,
        intermediate_dim=64,
        pattern=ks.patterns.Dense(block_size=16),
        num_classes=10,
        dropout=0.0,
    )
    model.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    callbacks = []
    if structure is not None:
        schedule = ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=80, end_step=200, frequency=20)
        callbacks.append(ks.pruning.StructuredPruning(schedule, structure))
    model.fit(train.inputs, train.labels, epochs=6, batch_size=32, verbose=0, callbacks=callbacks)
    if structure is not None:
        (row,) = ks.pruning.pruning_rows(model)
        assert row.sparsity == 0.5
    return model.evaluate(test.inputs, test.labels, verbose=0)[1]


@pytest.fixture(scope="module")
def unpruned(task):
    accuracy = trained_accuracy(task)
    assert accuracy > 0.9  # the task is learned: chance is 0.1
    return accuracy


@pytest.mark.parametrize("structure", ["heads", pytest.param("attention_blocks", marks=pytest.mark.slow)])
def test_pruning_to_half_keeps_accuracy_within_two_points(structure, task, unpruned):
    assert trained_accuracy(task, structure) >= unpruned - 0.02
