"""Masks are model state: they hold through optimizer steps, `.keras` save and load, and resumed training."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse.pruning.structures import numpy

from .conftest import attention_model, every_step


def test_config_round_trip_keeps_masks_and_inner_constraint():
    mask = ks.pruning.PruningMask("n:m", inner=keras.constraints.MaxNorm(2.0))
    kept = np.random.default_rng(0).random((5, 3, 2)) > 0.5
    mask.set_mask("query", kept)
    mask.set_mask("*", np.array([True, False]), axis=-1)
    again = keras.constraints.deserialize(keras.constraints.serialize(mask))
    assert isinstance(again, ks.pruning.PruningMask) and isinstance(again.inner, keras.constraints.MaxNorm)
    np.testing.assert_array_equal(again.kept("query"), kept)
    np.testing.assert_array_equal(again.kept(), [True, False])


@pytest.mark.parametrize("structure", ["heads", "neurons", "n:m", "blocks"])
def test_masked_weights_stay_zero_when_pruning_starts_after_the_step_was_traced(structure, data):
    model = attention_model()
    schedule = ks.pruning.ConstantSparsity(0.5, begin_step=5, end_step=5)  # pruned once, at step 5
    model.fit(*data, epochs=3, batch_size=16, verbose=0, callbacks=[ks.pruning.StructuredPruning(schedule, structure)])
    checked = 0
    for variable in model.weights:
        constraint = variable.constraint
        while isinstance(constraint, ks.pruning.PruningMask):
            removed = ~constraint.kept_for(variable)
            assert (numpy(variable)[removed] == 0).all(), variable.path
            checked += int(removed.sum())
            constraint = constraint.inner
    assert checked > 0


@pytest.mark.parametrize("structure", ["heads", "neurons", "n:m", "blocks", "attention_blocks"])
def test_save_load_and_resume_keep_the_pruning(structure, data, tmp_path):
    model = attention_model()
    callback = ks.pruning.StructuredPruning(every_step(0.5), structure)
    model.fit(*data, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    before = ks.pruning.pruning_rows(model)
    assert before and all(row.sparsity > 0 for row in before)

    model.save(tmp_path / "pruned.keras")
    loaded = keras.models.load_model(tmp_path / "pruned.keras")
    assert ks.pruning.pruning_rows(loaded) == before
    np.testing.assert_allclose(loaded.predict(data[0], verbose=0), model.predict(data[0], verbose=0), rtol=1e-6)

    zero = [numpy(v) == 0 for v in loaded.weights]
    loaded.fit(*data, epochs=1, batch_size=16, verbose=0)  # resumed without the callback: masks still hold
    for was_zero, variable in zip(zero, loaded.weights, strict=True):
        if structure != "attention_blocks":
            assert (numpy(variable)[was_zero] == 0).all(), variable.path
    assert ks.pruning.pruning_rows(loaded) == before
