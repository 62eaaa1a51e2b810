"""The demos' contract: golden vectors (expression -> token ids -> answer) agree with Python and the .tflite."""

import json
import pathlib

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import keras_sparse as ks

ROOT = pathlib.Path(__file__).parents[2]
ASSET_FOLDERS = [ROOT / "web_demo/model", ROOT / "android_demo/app/src/main/assets"]
FILES = ("listops_int8.tflite", "listops_vocab.json", "golden.json")


@pytest.fixture(scope="module")
def golden():
    return json.loads((ASSET_FOLDERS[0] / "golden.json").read_text())


def test_both_demos_ship_the_same_files():
    for name in FILES:
        assert (ASSET_FOLDERS[0] / name).read_bytes() == (ASSET_FOLDERS[1] / name).read_bytes(), name


def test_vocabulary_is_the_listops_vocabulary():
    saved = json.loads((ASSET_FOLDERS[0] / "listops_vocab.json").read_text())
    assert saved["tokens"] == ks.datasets.listops(1, 64).vocabulary.tokens


def padded(golden, example) -> list[int]:
    """Golden token ids are stored without their padding (0s up to seq_len)."""
    return example["token_ids"] + [0] * (golden["seq_len"] - len(example["token_ids"]))


def test_token_ids_and_answers_match_python(golden):
    vocabulary = ks.datasets.listops(1, 64).vocabulary
    for example in golden["examples"]:
        assert vocabulary.encode(example["expression"], golden["seq_len"]).tolist() == padded(golden, example)
        assert ks.datasets.evaluate(example["expression"]) == example["answer"]


def test_model_answers_are_the_int8_models_in_litert(golden):
    interpreter = Interpreter(model_path=str(ASSET_FOLDERS[0] / "listops_int8.tflite"))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert tuple(inp["shape"]) == (1, golden["seq_len"]) and inp["dtype"] == np.int32
    assert inp["name"] == golden["input_name"] == "tokens"
    assert out["dtype"] == np.float32  # LiteRT.js has no int8 tensors: float logits around an int8 body
    for example in golden["examples"]:
        interpreter.set_tensor(inp["index"], np.array([padded(golden, example)], np.int32))
        interpreter.invoke()
        assert int(np.argmax(interpreter.get_tensor(out["index"]))) == example["model_answer"]
