"""The streaming page's contract: its golden tokens are LiteRT Python's greedy tokens from the committed int8 file."""

import hashlib
import json
import pathlib

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from converters import generate_tflite

MODEL = pathlib.Path(__file__).parents[2] / "web_demo/model/streaming_int8.tflite"


@pytest.fixture(scope="module")
def golden():
    return json.loads(MODEL.with_name("streaming_golden.json").read_text())


def test_golden_file_describes_the_committed_model(golden):
    assert golden["model"] == MODEL.name and golden["sampler"] == "greedy"
    assert golden["model_sha256"] == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert MODEL.stat().st_size < 1024 * 1024  # a page's download
    for example in golden["examples"]:
        assert example["prompt_ids"] == list(example["prompt"].encode())  # byte-level, as the page encodes


def test_file_is_a_decoder_litert_js_can_feed():
    interpreter = Interpreter(model_path=str(MODEL))
    assert set(interpreter.get_signature_list()) == {"prefill", "decode"}
    for name in ("prefill", "decode"):
        details = interpreter.get_signature_runner(name).get_input_details()
        dtypes = {key: value["dtype"] for key, value in details.items()}
        assert dtypes == {"token_ids": np.int32, "position": np.int32, "cache": np.float32}  # LiteRT.js has no int8
    assert any(tensor["dtype"] == np.int8 for tensor in interpreter.get_tensor_details())  # an int8 body


def test_golden_tokens_are_litert_pythons_far_past_the_window(golden):
    interpreter = Interpreter(model_path=str(MODEL))
    slots = interpreter.get_signature_runner("decode").get_input_details()["cache"]["shape"][3]
    prefill_length = interpreter.get_signature_runner("prefill").get_input_details()["token_ids"]["shape"][1]
    # The page prefills as generate_tflite does: a prompt longer than a chunk takes `prefill`, then `decode` steps.
    assert any(
        len(example["prompt_ids"]) % prefill_length and len(example["prompt_ids"]) > prefill_length
        for example in golden["examples"]
    )
    for example in golden["examples"]:
        tokens = generate_tflite(MODEL, np.array(example["prompt_ids"], np.int32), len(example["new_tokens"]))
        assert tokens[0, len(example["prompt_ids"]) :].tolist() == example["new_tokens"]
        assert len(example["prompt_ids"]) + len(example["new_tokens"]) > 4 * slots  # the ring buffer wrapped around
