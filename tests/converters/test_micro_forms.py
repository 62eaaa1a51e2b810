"""micro_forms: ops TFLite Micro lacks rewritten into forms it has, with the same outputs to the bit.

References: LiteRT running the file before the rewrite, and TensorFlow running the function it came from.
"""

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tflite_micro.python.tflite_micro import runtime

from converters.micro_forms import micro_forms


def converted(function, *specs) -> bytes:
    concrete = tf.function(function, input_signature=specs).get_concrete_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()


def litert(flatbuffer: bytes, inputs: list) -> list:
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    for detail, array in zip(interpreter.get_input_details(), inputs, strict=True):
        interpreter.set_tensor(detail["index"], array)
    interpreter.invoke()
    return [interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()]


def micro(flatbuffer: bytes, inputs: list) -> list:
    interpreter = runtime.Interpreter.from_bytes(flatbuffer, arena_size=2**20)
    for index, array in enumerate(inputs):
        interpreter.set_input(array, index)
    interpreter.invoke()
    return [interpreter.get_output(index) for index in range(len(litert(flatbuffer, inputs)))]


def ops(flatbuffer: bytes) -> list:
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    return sorted(op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE")


def five_d_slices(cache, positions):
    """What the ring-buffer decoder does: 5-D cache slices, same-shape and int32 selects, int32 floor_mod."""
    layers = tf.reshape(cache, (1, 4, 3, 2, 5))
    first = layers[:, 0:2][:, 1]  # shrinks an axis
    last = layers[:, -1]  # a negative index
    slots = tf.math.floormod(positions - 7, 3)
    chosen = tf.where(positions >= 2, positions * 1000, tf.range(6))  # int32, one shape: SELECT
    broadcast = tf.where(positions[:, None] > 0, positions[:, None], -1)  # int32 with broadcasting: SELECT_V2
    values = tf.where(first > 0, first, last)  # float32, one shape: SELECT
    return first, last, slots, chosen, broadcast, values


@pytest.fixture(scope="module")
def decoder_like():
    flatbuffer = converted(five_d_slices, tf.TensorSpec((1, 4, 3, 2, 5)), tf.TensorSpec((6,), tf.int32))
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(1, 4, 3, 2, 5)).astype("float32"), np.array([-9, -1, 0, 2, 7, 40000], np.int32)]
    return flatbuffer, inputs


def test_ops_micro_lacks_are_rewritten_and_micro_then_runs_the_file(decoder_like):
    flatbuffer, inputs = decoder_like
    with pytest.raises(RuntimeError):  # without the rewrites TFLite Micro refuses the file
        micro(flatbuffer, inputs)
    rewritten, counts = micro_forms(flatbuffer)
    assert counts == {
        "STRIDED_SLICE -> SLICE": 3,
        "int32 FLOOR_MOD -> float32 FLOOR_MOD": 1,
        "int32 SELECT -> CAST, SUB, MUL, ADD": 2,
        "SELECT -> SELECT_V2": 1,
    }
    assert "SELECT" not in ops(rewritten) and "SLICE" in ops(rewritten)
    expected = [np.asarray(t) for t in five_d_slices(*(tf.constant(a) for a in inputs))]
    before = litert(flatbuffer, inputs)
    for outputs in (litert(rewritten, inputs), micro(rewritten, inputs)):
        assert len(outputs) == len(before)
        for got, want in zip(outputs, before, strict=True):
            np.testing.assert_array_equal(got, want)  # bit for bit
    assert sorted(a.tobytes() for a in before) == sorted(a.tobytes() for a in expected)  # and TF's own outputs


def test_a_file_without_such_ops_is_returned_as_it_is():
    flatbuffer = converted(lambda x: x[:, 1:] * 2.0, tf.TensorSpec((2, 3)))
    assert micro_forms(flatbuffer) == (flatbuffer, {})
