"""The per-op profiler: every one-op file computes exactly what its op computes inside the whole file, and each
op is reported with the kernel LiteRT gives it. (Its times are measured, never asserted.)"""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import keras_sparse as ks
from converters import to_tflite
from converters.op_profile import one_op_files, preserved_tensors, profile_ops
from tests.converters.conftest import build_classifier, retrieval_task


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    model = build_classifier(ks.patterns.BigBird(32, num_global_blocks=1, num_random_blocks=1), layer_norm=True)
    tokens, _ = retrieval_task(32, seed=0)
    folder = tmp_path_factory.mktemp("profile")
    bounds = {"max_relative_error": 1.0, "min_argmax_agreement": 0.0}  # untrained: the files are what is tested
    return {
        "float32": to_tflite(model, folder / "f.tflite", verification_data=tokens, **bounds).path.read_bytes(),
        "int8": to_tflite(model, folder / "q.tflite", "int8", tokens, full_integer=True, **bounds).path.read_bytes(),
        "tokens": tokens[:1],
    }


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_each_one_op_file_reproduces_its_op_in_the_whole_file(files, mode):
    flatbuffer = files[mode]
    reference = preserved_tensors(flatbuffer, [files["tokens"]])
    singles = one_op_files(flatbuffer)
    assert len(singles) == len(reference._get_ops_details()) > 20
    for single, inputs, outputs in singles:
        alone = Interpreter(
            model_content=single, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        alone.allocate_tensors()
        for detail, tensor in zip(alone.get_input_details(), inputs, strict=True):
            alone.set_tensor(detail["index"], reference.get_tensor(tensor))
        alone.invoke()
        for detail, tensor in zip(alone.get_output_details(), outputs, strict=True):
            np.testing.assert_array_equal(alone.get_tensor(detail["index"]), reference.get_tensor(tensor))


def test_profile_names_every_op_its_type_and_kernel(files):
    times = profile_ops(files["int8"], [files["tokens"]], repeats=2)
    interpreter = Interpreter(
        model_content=files["int8"], experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    assert [t.op for t in times] == [op["op_name"] for op in interpreter._get_ops_details()]
    assert all(np.isfinite(t.ms) and t.ms > 0 for t in times)
    kernels = {(t.op, t.dtype, t.xnnpack) for t in times}
    assert ("FULLY_CONNECTED", "int8", True) in kernels  # XNNPACK has int8 FULLY_CONNECTED
    assert ("BATCH_MATMUL", "int8", False) in kernels  # and no int8 BATCH_MATMUL of two activations


def test_profile_takes_a_path(files, tmp_path):
    path = tmp_path / "f.tflite"
    path.write_bytes(files["float32"])
    times = profile_ops(path, repeats=1)
    assert ("BATCH_MATMUL", "float32", True) in {(t.op, t.dtype, t.xnnpack) for t in times}
    assert all(len(t.output_shape) >= 1 for t in times)
