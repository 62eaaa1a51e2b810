"""Running `.tflite` files in LiteRT: inputs matched by name and quantized as the file takes them, outputs dequantized.

The converters name a file's inputs after the model's (`ModelInput.name`) and give it one output per
entry of `keras.tree.flatten(model.outputs)`, in that order (TFLite names them `Identity`, `Identity_1`, ...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import numpy as np
from ai_edge_litert.interpreter import Interpreter

_OUTPUT_NAME = re.compile(r"Identity(?:_(\d+))?(?::0)?")


def input_order(interpreter: Interpreter, names: list[str]) -> list[int]:
    """For each of the file's inputs, in its order, the position of its array in a sample ordered as `names`."""
    details = interpreter.get_input_details()
    file_names = [detail["name"].removeprefix("serving_default_").removesuffix(":0") for detail in details]
    if sorted(file_names) == sorted(names):
        return [names.index(name) for name in file_names]
    return list(range(len(details)))  # a file made elsewhere: inputs in order


def output_order(interpreter: Interpreter) -> list[int]:
    """The file's output details, listed in the order of the Keras model's flattened outputs."""
    details = interpreter.get_output_details()
    matches = [_OUTPUT_NAME.fullmatch(detail["name"]) for detail in details]
    if all(matches):
        positions = [int(match.group(1) or 0) for match in matches]
        if sorted(positions) == list(range(len(details))):
            return sorted(range(len(details)), key=positions.__getitem__)
    return list(range(len(details)))


def quantized_inputs(interpreter: Interpreter, sample: list[np.ndarray], names: list[str]) -> list[np.ndarray]:
    """The sample as the file's inputs take it, in the file's order: float arrays quantized where an input is int."""
    arrays = []
    for detail, position in zip(interpreter.get_input_details(), input_order(interpreter, names), strict=True):
        array = sample[position]
        if detail["dtype"] in (np.int8, np.int16) and array.dtype.kind == "f":
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            array = np.clip(np.round(array / scale + zero), info.min, info.max)
        arrays.append(array.astype(detail["dtype"]))
    return arrays


def dequantized(detail: dict, array: np.ndarray) -> np.ndarray:
    """An output tensor as float32 if the file quantized it."""
    if detail["dtype"] in (np.int8, np.int16):
        scale, zero = detail["quantization"]
        return (array.astype(np.float32) - zero) * scale
    return array


def run_once(interpreter: Interpreter, sample: list[np.ndarray], names: list[str]) -> list[np.ndarray]:
    """Every output for one sample (a list of batch-1 arrays ordered as `names`), in the Keras model's order.

    Raises:
        RuntimeError: LiteRT could not invoke the file (a kernel refused its tensors).
    """
    for detail, array in zip(
        interpreter.get_input_details(), quantized_inputs(interpreter, sample, names), strict=True
    ):
        interpreter.set_tensor(detail["index"], array)
    interpreter.invoke()
    details = interpreter.get_output_details()
    return [dequantized(details[k], interpreter.get_tensor(details[k]["index"])) for k in output_order(interpreter)]


def predict(model, inputs, num_threads: int = 2):
    """Outputs of a `.tflite` file (a path or its bytes), one example at a time.

    `inputs` is an array `(N, ...)` for a file with one input, or a list (in the file's input order) or a
    dict (by input name) of such arrays. Returns an array `(N, ...)` for a file with one output, else a
    list of them in the Keras model's output order.

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
    names = [
        detail["name"].removeprefix("serving_default_").removesuffix(":0") for detail in interpreter.get_input_details()
    ]
    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) ^ set(names))
        if unknown:
            raise ValueError(
                f"Received an invalid value for argument `inputs`: its keys must be the file's input names {names}. "
                f"Received: {sorted(inputs)}"
            )
        arrays = [np.asarray(inputs[name]) for name in names]
    else:
        arrays = [np.asarray(a) for a in inputs] if isinstance(inputs, (list, tuple)) else [np.asarray(inputs)]
    if len(arrays) != len(names):
        raise ValueError(
            f"Received an invalid value for argument `inputs`: the file has {len(names)} inputs ({names}); "
            f"received {len(arrays)} arrays."
        )
    rows = [run_once(interpreter, [a[k : k + 1] for a in arrays], names) for k in range(len(arrays[0]))]
    outputs = [np.concatenate(column) for column in zip(*rows, strict=True)]
    return outputs[0] if len(outputs) == 1 else outputs
