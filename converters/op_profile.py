"""Per-op timing of a `.tflite` file in LiteRT: each op cut out as a one-op file and timed on its real inputs.

The Python LiteRT interpreter has no op profiler (the `benchmark_model` tool that has one is not on PyPI), so
every operator of the file becomes a file of its own: the same op, options, weights and tensor shapes, its
computed inputs as the file's inputs. Each is fed the tensors a full run of the original computed (run with
`experimental_preserve_all_tensors`) and timed by its own interpreter, so it gets the kernel the whole file
would get: XNNPACK where the delegate takes the op, else TFLite's builtin kernel. A one-op file runs without
its neighbours in the cache and pays one interpreter call (a few microseconds), so the op times add up to
about the file's time, not exactly; they say which kernels dominate.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import statistics
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from ai_edge_litert.tools import flatbuffer_utils


@dataclasses.dataclass(frozen=True)
class OpTime:
    """One operator's time.

    Attributes:
        index: its position in the file's execution order.
        op: its builtin name (`BATCH_MATMUL`, ...).
        dtype: its first output's type (`float32`, `int8`, ...).
        xnnpack: whether LiteRT's XNNPACK delegate took it (else a builtin TFLite kernel ran it).
        ms: median milliseconds per run.
        output_shape: its first output's shape.
    """

    index: int
    op: str
    dtype: str
    xnnpack: bool
    ms: float
    output_shape: tuple[int, ...]


def one_op_files(flatbuffer: bytes) -> list[tuple[bytes, list[int], list[int]]]:
    """For each operator of the file's main graph, in order: a file holding only that operator, the original
    tensor indices of its inputs (its computed operands, in order) and of its outputs."""
    model = flatbuffer_utils.read_model_from_bytearray(flatbuffer)
    graph = model.subgraphs[0]

    def constant(tensor: int) -> bool:
        buffer = model.buffers[graph.tensors[tensor].buffer]
        return (buffer.data is not None and len(buffer.data) > 0) or bool(getattr(buffer, "offset", 0))

    files = []
    for op in graph.operators:
        inputs = [t for t in op.inputs if t >= 0 and not constant(t)]
        inputs = list(dict.fromkeys(inputs))  # an op may read one tensor twice (x * x)
        outputs = list(op.outputs)
        alone, single = copy.copy(model), copy.copy(graph)
        single.operators = [op]
        single.inputs = np.array(inputs, dtype=np.int32)
        single.outputs = np.array(outputs, dtype=np.int32)
        alone.subgraphs = [single]
        alone.signatureDefs = []
        files.append((bytes(flatbuffer_utils.convert_object_to_bytearray(alone)), inputs, outputs))
    return files


def preserved_tensors(flatbuffer: bytes, inputs: list[np.ndarray] | None = None) -> Interpreter:
    """An interpreter (builtin kernels, no delegate) that ran the file once and kept every tensor.

    `inputs` are the file's inputs in its order and dtypes; default zeros (valid token ids, mid-range int8).
    """
    interpreter = Interpreter(
        model_content=flatbuffer,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()
    if inputs is None:
        inputs = [np.zeros(detail["shape"], detail["dtype"]) for detail in details]
    for detail, array in zip(details, inputs, strict=True):
        interpreter.set_tensor(detail["index"], array)
    interpreter.invoke()
    return interpreter


def profile_ops(model, inputs: list[np.ndarray] | None = None, num_threads: int = 2, repeats: int = 10) -> list[OpTime]:
    """Times every operator of a `.tflite` file (a path or its bytes), one at a time, in LiteRT.

    Args:
        model: the file.
        inputs: the file's inputs for the run whose tensors feed the ops (its order and dtypes); default zeros.
        num_threads: LiteRT's thread count, as on the device.
        repeats: timed runs per op, after one warm-up run; the median is kept.

    Returns:
        One OpTime per operator, in execution order.

    Example:

    >>> import keras, numpy as np, tempfile, pathlib
    >>> from converters import to_tflite
    >>> from converters.op_profile import profile_ops
    >>> x = keras.Input((16, 4))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.tflite"
    >>> _ = to_tflite(keras.Model(x, keras.layers.Dense(2)(x)), path)
    >>> [(t.op, t.dtype, t.xnnpack) for t in profile_ops(path, repeats=2)]
    [('FULLY_CONNECTED', 'float32', True)]
    """
    flatbuffer = model if isinstance(model, (bytes, bytearray)) else open(os.fspath(model), "rb").read()
    flatbuffer = bytes(flatbuffer)
    reference = preserved_tensors(flatbuffer, inputs)
    names = [op["op_name"] for op in reference._get_ops_details()]
    times = []
    for index, (single, op_inputs, outputs) in enumerate(one_op_files(flatbuffer)):
        interpreter = Interpreter(model_content=single, num_threads=num_threads)
        interpreter.allocate_tensors()
        for detail, tensor in zip(interpreter.get_input_details(), op_inputs, strict=True):
            interpreter.set_tensor(detail["index"], reference.get_tensor(tensor))
        interpreter.invoke()
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            interpreter.invoke()
            runs.append((time.perf_counter() - start) * 1e3)
        output = reference._get_tensor_details(outputs[0], 0)
        xnnpack = any(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
        dtype = np.dtype(output["dtype"]).name
        times.append(OpTime(index, names[index], dtype, xnnpack, statistics.median(runs), tuple(output["shape"])))
    return times
