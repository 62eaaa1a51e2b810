"""Sparsified keras-hub models load back sparse in a fresh process after `import keras_sparse`, nothing more."""

import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse.rewrites import swapped_layers
from tests.rewrites.hub_models import LENGTH, backbone, inputs

PATTERN = ks.patterns.SlidingWindow(8, global_tokens=(0,), block_size=8)

LOADER = """
import sys, numpy as np, keras, keras_sparse
assert "keras_hub" not in sys.modules, "import keras_sparse imported keras_hub"
expected_pattern = keras_sparse.patterns.SlidingWindow(8, global_tokens=(0,), block_size=8)
for name in ("causal_lm", "encoder"):
    model = keras.saving.load_model(f"{sys.argv[1]}/{name}.keras")
    saved = np.load(f"{sys.argv[1]}/{name}.npz")
    data = {key: saved[key] for key in saved.files if key != "expected"}
    output = model(data if len(data) > 1 else data["x"])
    sparse = keras_sparse.layers.SparseMultiHeadAttention
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, sparse)]
    assert layers and all(layer.pattern == expected_pattern for layer in layers)
    print(name, type(model).__name__, float(np.abs(np.asarray(output) - saved["expected"]).max()))
"""


def test_models_load_back_sparse_in_a_fresh_process_without_custom_objects(tmp_path):
    lm = keras_hub.models.GPT2CausalLM(backbone=ks.sparsify(backbone("GPT2"), PATTERN), preprocessor=None)
    data = inputs(lm)
    lm.save(tmp_path / "causal_lm.keras")
    np.savez(tmp_path / "causal_lm.npz", expected=np.asarray(lm(data)), **data)
    x = keras.Input((LENGTH, 16))
    encoder_model = keras.Model(x, keras_hub.layers.TransformerEncoder(32, num_heads=2)(x))  # a layer of keras-hub's
    sparse = ks.sparsify(encoder_model, PATTERN)
    features = np.random.default_rng(0).normal(size=(2, LENGTH, 16)).astype("float32")
    sparse.save(tmp_path / "encoder.keras")
    np.savez(tmp_path / "encoder.npz", expected=np.asarray(sparse(features)), x=features)
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split() for line in result.stdout.splitlines()]
    assert [line[:2] for line in lines] == [["causal_lm", "GPT2CausalLM"], ["encoder", "Functional"]]
    assert all(float(line[2]) < 1e-6 for line in lines)


def test_a_saved_config_may_name_only_keras_family_modules(tmp_path):
    sparse = ks.sparsify(backbone("Bert"), PATTERN)
    config = keras.saving.serialize_keras_object(sparse)
    assert config["registered_name"] == "keras_sparse>SwappedLayers"
    config["config"][swapped_layers.BASE_KEY] = {"module": "os", "class_name": "system", "registered_name": "os>system"}
    with pytest.raises(TypeError, match="Could not find the layer class 'system'"):
        keras.saving.deserialize_keras_object(config)
