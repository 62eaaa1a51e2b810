"""`finalize` returns a smaller model with the masked model's outputs (float32 relative error < 1e-5)."""

import keras
import numpy as np
import pytest

import keras_sparse as ks

from .conftest import attention_model, every_step


def relative_error(actual, expected):
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def train_pruned(model, data, structures, sparsity=0.5):
    callbacks = [ks.pruning.StructuredPruning(every_step(sparsity), s) for s in structures]
    model.fit(*data, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
    return model


@pytest.mark.parametrize(
    "attention, pattern, structures",
    [
        ("keras", None, ["heads"]),
        ("sparse", None, ["heads", "neurons"]),
        ("sparse", ks.patterns.Strided(stride=8, block_size=8), ["heads"]),  # per-head pattern follows its heads
        ("sparse", None, ["attention_blocks"]),
        ("sparse", ks.patterns.SlidingWindow(window_size=17, block_size=8), ["attention_blocks", "heads"]),
        ("sparse", None, ["heads", "neurons", "attention_blocks"]),
        ("sparse", ks.patterns.LSH(num_buckets=4, chunk_size=8), ["heads"]),  # no static layout to learn
    ],
    ids=["keras-heads", "heads-neurons", "strided-heads", "blocks", "window-blocks-heads", "all-three", "lsh-heads"],
)
def test_finalized_model_matches_the_masked_model(attention, pattern, structures, data):
    model = train_pruned(attention_model(attention, pattern), data, structures)
    small = ks.pruning.finalize(model)
    expected = model.predict(data[0], verbose=0)
    assert relative_error(small.predict(data[0], verbose=0), expected) < 1e-5
    if "heads" in structures:
        assert small.get_layer("attention").num_heads == 2
        assert small.count_params() < model.count_params()
    if "neurons" in structures:
        assert small.get_layer("hidden").units == 16
    if "attention_blocks" in structures:
        pattern = small.get_layer("attention").pattern
        learned = pattern if isinstance(pattern, ks.patterns.Learned) else pattern.second
        assert isinstance(learned, ks.patterns.Learned) and learned.blocks.mean() < 0.75
    for layer in small.layers:  # no pruning constraint is left behind
        assert not isinstance(getattr(layer, "kernel_constraint", None), ks.pruning.PruningMask)


def test_dense_layout_becomes_plain_learned_data(data):
    model = train_pruned(attention_model(), data, ["attention_blocks"])
    pattern = ks.pruning.finalize(model).get_layer("attention").pattern
    assert isinstance(pattern, ks.patterns.Learned)
    assert pattern.blocks.mean() == pytest.approx(0.5, abs=0.1)


def test_neurons_fold_a_nonzero_activation_into_the_next_bias(data):
    model = train_pruned(attention_model(activation="sigmoid"), data, ["neurons"])
    small = ks.pruning.finalize(model)
    assert small.get_layer("hidden").units == 16
    assert relative_error(small.predict(data[0], verbose=0), model.predict(data[0], verbose=0)) < 1e-5


def test_weight_patterns_keep_their_zeros_and_drop_their_masks(data):
    model = train_pruned(attention_model(), data, ["n:m"])
    small = ks.pruning.finalize(model)
    kernel = keras.ops.convert_to_numpy(small.get_layer("hidden").kernel)
    assert ((kernel != 0).reshape(4, 4, 32).sum(axis=1) == 2).all()
    assert small.get_layer("hidden").kernel_constraint is None
    assert relative_error(small.predict(data[0], verbose=0), model.predict(data[0], verbose=0)) < 1e-5


def test_finalize_and_report_without_pruning_state_say_what_to_do():
    model = attention_model()
    for function in (ks.pruning.finalize, ks.pruning.report):
        with pytest.raises(ValueError, match="no pruning state.*StructuredPruning"):
            function(model)


def test_finalized_model_exports_to_tflite(data, tmp_path):
    from converters import to_tflite

    model = train_pruned(attention_model(), data, ["heads", "attention_blocks"])
    small = ks.pruning.finalize(model)
    result = to_tflite(small, tmp_path / "small.tflite", verification_data=data[0][:4])
    assert result.max_relative_error < 1e-4
