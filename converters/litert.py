"""Running `.tflite` files in LiteRT: inputs quantized as the file takes them, outputs dequantized."""

from __future__ import annotations

import os

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def quantized_inputs(interpreter: Interpreter, sample: list[np.ndarray]) -> list[np.ndarray]:
    """The sample as the file's inputs take it: float arrays quantized where an input is int8/int16."""
    arrays = []
    for detail, array in zip(interpreter.get_input_details(), sample, strict=True):
        if detail["dtype"] in (np.int8, np.int16) and array.dtype.kind == "f":
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            array = np.clip(np.round(array / scale + zero), info.min, info.max)
        arrays.append(array.astype(detail["dtype"]))
    return arrays


def run_once(interpreter: Interpreter, sample: list[np.ndarray]) -> np.ndarray:
    """The first output for one sample (a list of batch-1 input arrays), as float32 if it was quantized."""
    for detail, array in zip(interpreter.get_input_details(), quantized_inputs(interpreter, sample), strict=True):
        interpreter.set_tensor(detail["index"], array)
    interpreter.invoke()
    detail = interpreter.get_output_details()[0]
    output = interpreter.get_tensor(detail["index"])
    if detail["dtype"] in (np.int8, np.int16):
        scale, zero = detail["quantization"]
        output = (output.astype(np.float32) - zero) * scale
    return output


def predict(model, inputs: np.ndarray, num_threads: int = 2) -> np.ndarray:
    """Outputs of a single-input `.tflite` (a path or its bytes) for `inputs`, one example at a time.

    Example:

    >>> import keras, numpy as np, tempfile, pathlib
    >>> from converters import predict, to_tflite
    >>> x = keras.Input((4,))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.tflite"
    >>> _ = to_tflite(keras.Model(x, keras.layers.Dense(2)(x)), path)
    >>> predict(path, np.ones((3, 4), "float32")).shape
    (3, 2)
    """
    if isinstance(model, (bytes, bytearray)):
        interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
    else:
        interpreter = Interpreter(model_path=os.fspath(model), num_threads=num_threads)
    interpreter.allocate_tensors()
    return np.concatenate([run_once(interpreter, [row[None]]) for row in np.asarray(inputs)])
