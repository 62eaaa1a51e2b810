"""Selective int8 quantization: attention cores and SQUARED_DIFFERENCE stay float32, the rest int8, for LiteRT.

What is checked: which ops stay float (found by structure, for Keras's attention and ours), that XNNPACK then
takes every matmul and softmax (the full-int8 file leaves them to TFLite's slow builtin int8 kernels: the reason
for it, measured in docs/benchmarks.md), that the file is verified against Keras, no larger, and at least as
accurate, and that `full_integer=True` (TFLite Micro's form) quantizes every op as before.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_sparse as ks
from converters import predict, to_tflite
from converters.op_profile import profile_ops
from converters.selective_quantization import float_nodes
from tests.converters.conftest import build_classifier, retrieval_task


def float_file(model, shape) -> bytes:
    function = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([function]).convert()


def op_types(path) -> dict[str, set[str]]:
    """Each op's output types in the file, by op name (DELEGATE nodes excluded: no delegate is applied)."""
    from ai_edge_litert.interpreter import OpResolverType

    interpreter = Interpreter(
        model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    types = {}
    for op in interpreter._get_ops_details():
        dtype = np.dtype(interpreter._get_tensor_details(op["outputs"][0], 0)["dtype"]).name
        types.setdefault(op["op_name"], set()).add(dtype)
    return types


def left_to_builtin_kernels(path) -> set[str]:
    """The ops LiteRT's default XNNPACK delegate does not take (each op alone, as `converters.op_profile` runs it)."""
    return {time.op for time in profile_ops(path, repeats=1) if not time.xnnpack}


def test_float_nodes_are_the_attention_between_its_projections_and_the_variance():
    keras.utils.set_random_seed(0)
    x = keras.Input((32, 8))
    h = keras.layers.Dense(8, name="before")(x)
    h = keras.layers.LayerNormalization()(h + keras.layers.MultiHeadAttention(2, 4, name="attention")(h, h))
    model = keras.Model(x, keras.layers.Dense(3, name="after")(keras.layers.GlobalAveragePooling1D()(h)))
    flatbuffer = float_file(model, (1, 32, 8))
    interpreter = Interpreter(model_content=flatbuffer)
    ops = interpreter._get_ops_details()
    kept = set(float_nodes(flatbuffer))
    kinds = {}
    for op in ops:
        name = interpreter._get_tensor_details(op["outputs"][0], 0)["name"]
        kinds.setdefault(op["op_name"], []).append(name in kept)
    assert all(kinds["BATCH_MATMUL"]) and all(kinds["SOFTMAX"]) and all(kinds["SQUARED_DIFFERENCE"])
    assert not any(kinds["FULLY_CONNECTED"])  # projections, feed-forward and classifier carry the weights
    assert not any(kinds["MEAN"][-1:])  # the pooling after the attention stays int8
    assert len(kept) < len(ops)


def test_a_model_without_attention_or_variance_keeps_nothing_float():
    x = keras.Input((16, 4))
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(x)))
    assert float_nodes(float_file(model, (1, 16, 4))) == []


@pytest.fixture(scope="module")
def files(trained_classifier, held_out, tmp_path_factory):
    """The trained BigBird classifier in int8, selective and full-integer."""
    calibration, _ = retrieval_task(200, seed=2)
    folder = tmp_path_factory.mktemp("selective")
    results = {}
    for full_integer in (False, True):
        path = folder / f"full_{full_integer}.tflite"
        results[full_integer] = to_tflite(
            trained_classifier,
            path,
            quantization="int8",
            representative_data=calibration,
            verification_data=held_out[0],
            full_integer=full_integer,
        )
    return results


def test_int8_keeps_attention_float_and_weights_int8(files):
    selective, full = op_types(files[False].path), op_types(files[True].path)
    assert selective["BATCH_MATMUL"] == {"float32"} and selective["SOFTMAX"] == {"float32"}
    assert selective["FULLY_CONNECTED"] == {"int8"}
    assert full["BATCH_MATMUL"] == {"int8"} and full["SOFTMAX"] == {"int8"}
    assert "LOG_SOFTMAX" in full and "LOG_SOFTMAX" not in selective  # blockwise softmax: full integer only
    assert files[False].size_bytes <= 1.02 * files[True].size_bytes  # weights int8 in both


def test_xnnpack_takes_every_matmul_and_softmax_of_the_selective_file(files):
    assert not {"BATCH_MATMUL", "SOFTMAX"} & left_to_builtin_kernels(files[False].path)
    assert {"BATCH_MATMUL", "SOFTMAX"} <= left_to_builtin_kernels(files[True].path)


def test_selective_file_is_verified_and_at_least_as_accurate(files):
    for result in files.values():
        assert result.argmax_agreement >= 0.99 and result.max_relative_error <= 0.15
    assert files[False].max_relative_error <= files[True].max_relative_error * 1.1


def test_selective_int8_keeps_float_io_for_litert_js(trained_classifier, held_out, tmp_path):
    calibration, _ = retrieval_task(200, seed=2)
    path = tmp_path / "js.tflite"
    to_tflite(trained_classifier, path, quantization="int8", representative_data=calibration, float_outputs=True)
    interpreter = Interpreter(model_path=str(path))
    details = interpreter.get_input_details() + interpreter.get_output_details()
    assert {np.dtype(detail["dtype"]).name for detail in details} == {"int32", "float32"}
    assert np.abs(predict(path, held_out[0][:8]) - trained_classifier.predict(held_out[0][:8], verbose=0)).max() < 1


def test_selective_quantization_of_a_layer_norm_classifier_with_a_masked_pattern(tmp_path):
    model = build_classifier(ks.patterns.SlidingWindow(48, block_size=16), layer_norm=True)
    tokens, _ = retrieval_task(64, seed=3)
    bounds = {"max_relative_error": 0.15, "min_argmax_agreement": 0.0}  # untrained: ties in the argmax
    result = to_tflite(model, tmp_path / "m.tflite", quantization="int8", representative_data=tokens, **bounds)
    types = op_types(result.path)
    assert types["SQUARED_DIFFERENCE"] == {"float32"} and types["BATCH_MATMUL"] == {"float32"}


def test_full_integer_must_be_a_bool(trained_classifier, tmp_path):
    with pytest.raises(ValueError, match="`full_integer`"):
        to_tflite(trained_classifier, tmp_path / "m.tflite", full_integer="yes")
