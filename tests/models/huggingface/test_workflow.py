"""A loaded checkpoint in the Keras workflow: fine-tuning with fit, `.keras` files, pruning, TFLite files."""

import keras
import numpy as np
import pytest

import keras_sparse as ks
from converters import to_tflite

from .fixtures import cases, load

SLOW = pytest.mark.slow  # each fit traces a whole model's training step: 30-60 s on 2 shared cores
ARCHITECTURES = [
    "longformer",
    pytest.param("big_bird_block_sparse", marks=SLOW),
    pytest.param("reformer_causal", marks=SLOW),
]
EXPORTS = [
    pytest.param(
        folder, quantization, marks=[] if (folder, quantization) == ("big_bird_block_sparse", "float32") else SLOW
    )
    for folder in ("longformer", "big_bird_block_sparse", "reformer_causal")
    for quantization in ("float32", "int8")
]


def classifier(folder: str) -> tuple[keras.Model, dict]:
    """The checkpoint's model with a two-class head on its first token, and the case it was sized for."""
    inputs, _ = cases(folder)["padded"]
    backbone = load(folder, inputs)
    logits = keras.layers.Dense(2, name="logits")(backbone.output[:, 0])
    return keras.Model(backbone.input, logits), inputs


def training_data(inputs: dict, count: int = 32) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 64, size=(count, inputs["input_ids"].shape[1])).astype("int32")
    data = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "global_attention_mask" in inputs:
        data["global_attention_mask"] = np.zeros_like(ids)
        data["global_attention_mask"][:, 0] = 1
    return data, (ids[:, 0] > 33).astype("int32")  # what the first token knows, causal models included


@pytest.mark.parametrize("folder", ARCHITECTURES)
def test_fine_tunes_while_pruning_heads_and_round_trips_through_a_keras_file(folder, tmp_path):
    keras.utils.set_random_seed(0)
    model, inputs = classifier(folder)
    data, labels = training_data(inputs)
    # SGD: Adam's update, traced for every weight, more than doubles the first epoch (the test's cost)
    model.compile(keras.optimizers.SGD(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    prune = ks.pruning.StructuredPruning(ks.pruning.ConstantSparsity(0.5, begin_step=0, frequency=1), "heads")
    # Losses without dropout, before and after: the epochs' own losses (dropout, 4 steps each) are too noisy
    # to compare (the causal Reformer's last epoch was above its first for 3 of 6 seeds at lr 0.05; these
    # losses fell for all 6 seeds).
    before = model.evaluate(data, labels, verbose=0)
    model.fit(data, labels, epochs=4, batch_size=8, verbose=0, callbacks=[prune])
    assert model.evaluate(data, labels, verbose=0) < before
    attention = [layer for layer in model._flatten_layers() if isinstance(layer, ks.layers.SparseMultiHeadAttention)]
    assert attention and all(ks.pruning.Heads().kept(layer).mean() == 0.5 for layer in attention)
    for layer in attention:  # a pruned head's output weights are zero, so it contributes nothing
        assert not np.asarray(layer._output_dense.kernel)[~ks.pruning.Heads().kept(layer)].any()
    model.save(tmp_path / "fine_tuned.keras")
    loaded = keras.saving.load_model(tmp_path / "fine_tuned.keras")  # no custom_objects
    np.testing.assert_allclose(loaded(data), model(data), rtol=1e-5, atol=1e-5)
    small = ks.pruning.finalize(model)  # the pruned heads taken out
    assert small.count_params() < model.count_params()
    np.testing.assert_allclose(small(data), model(data), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("folder, quantization", EXPORTS)
def test_converts_to_builtins_only_tflite_matching_keras(folder, quantization, tmp_path):
    inputs, _ = cases(folder)["padded"]
    data, _ = training_data(inputs, count=24)  # a dict keyed by the model's input names
    result = to_tflite(
        load(folder, inputs),
        tmp_path / f"{folder}.tflite",
        quantization=quantization,
        representative_data=data if quantization == "int8" else None,
        verification_data=data,
    )
    assert result.path.exists() and "FLEX" not in " ".join(result.ops).upper()
    assert result.max_relative_error < (1e-5 if quantization == "float32" else 0.05)
