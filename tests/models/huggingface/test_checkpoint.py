"""Reading checkpoint folders: what is read, and the errors for what cannot be."""

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import keras_sparse as ks
from keras_sparse.models import UnsupportedCheckpointError
from keras_sparse.models.huggingface.checkpoint import read_checkpoint

from .fixtures import RELATIVE_TOLERANCE, ROOT, cases, copy_without, load, relative_error


def edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_hub_id_is_not_fetched_and_the_error_says_how_to_get_the_folder():
    with pytest.raises(FileNotFoundError, match=r"Hub id.*huggingface-cli download allenai/longformer-base-4096"):
        ks.models.from_huggingface("allenai/longformer-base-4096")


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder") as error:
        ks.models.from_huggingface(tmp_path / "nowhere")
    assert "Hub" not in str(error.value)


def test_a_folder_without_config_or_safetensors_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        ks.models.from_huggingface(tmp_path)
    folder = copy_without("longformer", tmp_path, "model.safetensors")
    (folder / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"pytorch_model.bin.*safetensors only"):
        ks.models.from_huggingface(folder)


def test_sharded_weights_read_like_one_file(tmp_path):
    folder = copy_without("big_bird_original_full", tmp_path, "model.safetensors")
    weights = load_file(ROOT / "big_bird_original_full" / "model.safetensors")
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, shard_names in shards.items():
        save_file({name: weights[name] for name in shard_names}, folder / shard)
    index = {"weight_map": {name: shard for shard, shard_names in shards.items() for name in shard_names}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    inputs, expected = cases("big_bird_original_full")["unpadded"]
    model = ks.models.from_huggingface(folder, seq_len=inputs["input_ids"].shape[1])
    assert relative_error(model, inputs, expected) < RELATIVE_TOLERANCE


def test_float16_weights_are_read_as_float32(tmp_path):
    folder = copy_without("longformer", tmp_path, "model.safetensors")
    weights = load_file(ROOT / "longformer" / "model.safetensors")
    save_file({name: value.astype(np.float16) for name, value in weights.items()}, folder / "model.safetensors")
    checkpoint = read_checkpoint(folder)
    assert {value.dtype for value in checkpoint.weights.values()} == {np.dtype("float32")}


def test_bfloat16_weights_get_a_clear_error(tmp_path):
    folder = copy_without("longformer", tmp_path, "model.safetensors")
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(UnsupportedCheckpointError, match="bfloat16"):
        ks.models.from_huggingface(folder)


def test_another_architecture_is_named_with_the_supported_ones(tmp_path):
    folder = copy_without("longformer", tmp_path)
    edit_config(folder, model_type="bert")
    with pytest.raises(UnsupportedCheckpointError, match=r"'bert' model.*\['big_bird', 'longformer', 'reformer'\]"):
        ks.models.from_huggingface(folder)


@pytest.mark.parametrize(
    "folder, changes, named",
    [
        ("longformer", {"is_decoder": True}, "is_decoder=True"),
        ("longformer", {"hidden_act": "swish"}, "hidden_act='swish'"),
        ("big_bird_block_sparse", {"attention_type": "sliding"}, "attention_type='sliding'"),
        ("big_bird_block_sparse", {"use_bias": False}, "use_bias=False"),
        ("big_bird_original_full", {"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ("reformer", {"attn_layers": ["local", "lsh", "global", "lsh"]}, "attn_layers"),
    ],
)
def test_unsupported_options_are_named(tmp_path, folder, changes, named):
    copy = copy_without(folder, tmp_path)
    edit_config(copy, **changes)
    with pytest.raises(UnsupportedCheckpointError, match=named):
        ks.models.from_huggingface(copy, seq_len=32)


def test_a_missing_weight_is_named(tmp_path):
    folder = copy_without("big_bird_block_sparse", tmp_path, "model.safetensors")
    weights = load_file(ROOT / "big_bird_block_sparse" / "model.safetensors")
    del weights["bert.encoder.layer.1.attention.self.key.weight"]
    save_file(weights, folder / "model.safetensors")
    with pytest.raises(UnsupportedCheckpointError, match=r"no weight `encoder.layer.1.attention.self.key.weight`"):
        ks.models.from_huggingface(folder, seq_len=64)


def test_config_and_weights_that_disagree_name_the_layer(tmp_path):
    folder = copy_without("longformer", tmp_path)
    edit_config(folder, intermediate_size=48)
    with pytest.raises(UnsupportedCheckpointError, match=r"encoder.layer.0.intermediate.dense.*'layer_0_intermediate'"):
        ks.models.from_huggingface(folder, seq_len=40)


@pytest.mark.parametrize(
    "folder, kwargs, argument",
    [
        ("longformer", {"seq_len": 0}, "seq_len"),
        ("longformer", {"seq_len": 63}, "seq_len"),  # 64 positions, offset by the padding id + 1
        ("big_bird_block_sparse", {"seq_len": 97}, "seq_len"),
        ("reformer", {"seq_len": 65}, "seq_len"),
        ("big_bird_block_sparse", {"global_tokens": (0,)}, "global_tokens"),
        ("reformer", {"random_blocks": "random"}, "random_blocks"),
    ],
)
def test_arguments_that_do_not_apply_are_named(folder, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ks.models.from_huggingface(ROOT / folder, **kwargs)


def test_numpy_integers_are_taken_as_python_integers():
    """As everywhere in the public API (keras_sparse.validation); seq_len=np.int64(40) was refused."""
    model = ks.models.from_huggingface(ROOT / "longformer", seq_len=np.int64(40), seed=np.int32(1))
    assert model.inputs[0].shape == (None, 40)


def test_default_length_is_the_longest_the_positions_allow():
    inputs, _ = cases("big_bird_block_sparse")["unpadded"]
    assert ks.models.from_huggingface(ROOT / "big_bird_block_sparse").inputs[0].shape == (None, 96)
    assert load("big_bird_block_sparse", inputs).inputs[0].shape == (None, 62)


def test_a_damaged_config_and_a_bare_global_token_are_named(tmp_path):
    folder = copy_without("longformer", tmp_path, "config.json")
    (folder / "config.json").write_text('{"model_type": "longformer",')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON.*Download it again"):
        ks.models.from_huggingface(folder)
    with pytest.raises(ValueError, match=r"argument `global_tokens`.*Received: global_tokens=0"):
        ks.models.from_huggingface(ROOT / "longformer", seq_len=16, global_tokens=0)
