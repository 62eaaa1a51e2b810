"""`to_tflite`: a Keras model to a verified, builtins-only `.tflite` file."""

from __future__ import annotations

import dataclasses
import pathlib
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_sparse as ks
from converters.errors import ConversionError, VerificationError, explain_conversion_failure
from converters.litert import run_once
from converters.quantization import MODES
from converters.representative_data import as_samples
from keras_sparse.files import write_atomically
from keras_sparse.rewrites import rewritable

CALIBRATION_SAMPLES = 200
VERIFICATION_SAMPLES = 64
PROGRESS_FROM = 100
"""Calibrations of this many samples or more show a progress bar."""


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """What was written and how it compares with the Keras model."""

    path: pathlib.Path
    quantization: str
    size_bytes: int
    ops: tuple[str, ...]
    max_relative_error: float
    mean_absolute_error: float
    argmax_agreement: float | None
    latency_ms: float
    samples: int
    size_without_sparse_encoding: int | None = None

    def report(self) -> str:
        """A one-screen summary."""
        agreement = "" if self.argmax_agreement is None else f", argmax agreement {self.argmax_agreement:.1%}"
        sparse = ""
        if self.size_without_sparse_encoding is not None:
            saved = 1 - self.size_bytes / self.size_without_sparse_encoding
            sparse = (
                f" (sparse weight encoding saved {saved:.0%} of {self.size_without_sparse_encoding / 1024:.1f} KiB)"
            )
        return (
            f"{self.path} ({self.quantization}): {self.size_bytes / 1024:.1f} KiB{sparse}, ops {', '.join(self.ops)}\n"
            f"  vs Keras on {self.samples} inputs: max relative error {self.max_relative_error:.2e}, "
            f"mean absolute error {self.mean_absolute_error:.2e}{agreement}\n"
            f"  LiteRT latency (median, batch 1): {self.latency_ms:.2f} ms"
        )


def _input_specs(model: keras.Model, seq_len: int | None) -> list[tf.TensorSpec]:
    specs = []
    for tensor in model.inputs:
        shape = list(tensor.shape)[1:]
        if shape and shape[0] is None:
            if seq_len is None:
                raise ValueError(
                    "Received an invalid value for argument `seq_len`: the model's sequence length is not fixed, "
                    f"and devices need one (input shape {tuple(tensor.shape)}). Pass seq_len=..."
                )
            shape[0] = seq_len
        elif seq_len is not None and shape and shape[0] != seq_len:
            raise ValueError(
                f"Received an invalid value for argument `seq_len`: the model is built for length {shape[0]}. "
                f"Received: seq_len={seq_len}"
            )
        if any(dim is None for dim in shape):
            raise ValueError(
                f"Input {tensor.name} has unknown dimensions {tuple(tensor.shape)}: give it a static shape."
            )
        specs.append(tf.TensorSpec((1, *shape), tensor.dtype, name=tensor.name))  # the file's input names
    return specs


def _convert(
    model: keras.Model, specs, mode, representative, sparse_weights: bool, float_inputs: bool, float_outputs: bool
) -> bytes:
    single = len(specs) == 1
    function = tf.function(lambda *xs: model(xs[0] if single else list(xs), training=False))
    # Not from_concrete_functions([...], model): with the model as trackable object, files were seen to keep
    # uninitialised variables and return garbage (FACTS.md); verification below would catch it.
    concrete = function.get_concrete_function(*specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    mode.configure(converter, lambda: _with_progress(representative), sparse_weights, float_inputs, float_outputs)
    try:
        return converter.convert()
    except Exception as error:  # the converter raises ConverterError and others, with the op list in the text
        graph_nodes = {}
        for node in concrete.graph.get_operations():
            graph_nodes.setdefault(node.type, []).append(node.name)
        layer_names = [layer.name for layer in model._flatten_layers()]
        raise explain_conversion_failure(str(error), graph_nodes, layer_names) from None


def _with_progress(samples: list, shown_from: int = PROGRESS_FROM):
    """Yields the calibration samples, with Keras's progress bar when there are many."""
    bar = keras.utils.Progbar(len(samples), unit_name="calibration sample") if len(samples) >= shown_from else None
    for index, sample in enumerate(samples, 1):
        yield sample
        if bar is not None:
            bar.update(index)


def _verify(flatbuffer: bytes, model: keras.Model, samples, mode, max_relative_error, min_argmax_agreement):
    try:
        interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        hint = ""
        if "XNNPack" in str(error):
            hint = (
                " LiteRT's default CPU delegate (XNNPACK) cannot prepare this file, as phones would run it. "
                "Sparse-encoded int8 weights do this (measured with n:m and block pruning): convert int8 without "
                "sparse_weights, or float32 with it."
            )
        reason = str(error).rstrip(". ")
        raise ConversionError(
            f"LiteRT cannot run the converted {mode.name} file: {reason}.{hint} Nothing was written."
        ) from None
    ops = tuple(sorted({op["op_name"] for op in interpreter._get_ops_details()} - {"DELEGATE"}))
    actual, times = [], []
    for sample in samples:
        start = time.perf_counter()
        actual.append(run_once(interpreter, sample))
        times.append((time.perf_counter() - start) * 1e3)
    actual = np.concatenate(actual)
    expected = np.concatenate([np.asarray(model(s[0] if len(s) == 1 else s, training=False)) for s in samples])
    max_error = float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))
    agreement = None
    if expected.ndim == 2 and expected.shape[-1] > 1:
        agreement = float((actual.argmax(-1) == expected.argmax(-1)).mean())
    failures = []
    if max_error > max_relative_error:
        failures.append(f"max relative error {max_error:.3g} > {max_relative_error:g}")
    if agreement is not None and min_argmax_agreement is not None and agreement < min_argmax_agreement:
        failures.append(f"argmax agreement {agreement:.1%} < {min_argmax_agreement:.0%}")
    if failures:
        raise VerificationError(
            f"The {mode.name} file disagrees with the Keras model on {len(samples)} inputs ({'; '.join(failures)}); "
            "it was not written. Give more or better representative_data, or choose another quantization."
        )
    return ops, max_error, float(np.abs(actual - expected).mean()), agreement, statistics.median(times)


def to_tflite(
    model: keras.Model,
    path,
    quantization: str = "float32",
    representative_data=None,
    verification_data=None,
    seq_len: int | None = None,
    sparse_weights: bool = False,
    max_relative_error: float | None = None,
    min_argmax_agreement: float | None = None,
    overwrite: bool = False,
    float_outputs: bool = False,
) -> ConversionResult:
    """Converts `model` to a `.tflite` file with builtin ops only, verifies it in LiteRT, then writes it.

    The file takes batch 1 and a fixed sequence length. Sparse attention layers switch to their
    export-safe kernels first (`keras_sparse.exportable`); for int8 they also take their softmax blockwise
    (`keras_sparse.rewrites.with_blockwise_softmax`: the same numbers in float, and int8 weights with
    precision to spare on rows wider than int8 SOFTMAX's 256 steps), and for int16x8 layer norms become
    `CenteredLayerNormalization` (`keras_sparse.centered_layer_norms`). The file is written (atomically) only if its
    outputs on `verification_data` match the Keras model within the mode's tolerance; otherwise
    VerificationError is raised and nothing is written. A model needing Flex or custom ops raises
    ConversionError naming the op, its layer and the fix.

    Args:
        model: a Keras model.
        path: where to write the `.tflite`. An existing file is kept unless `overwrite=True`.
        quantization: `"float32"`, `"float16"`, `"dynamic"` (int8 weights), `"int8"` (full integer, int8 in
            and out for float inputs) or `"int16x8"` (16-bit activations, 8-bit weights).
        representative_data: calibration inputs (array, list of arrays, tf.data.Dataset or iterable);
            required for int8 and int16x8.
        verification_data: held-out inputs to compare on; defaults to `representative_data`, or to
            seeded normal samples for a float-input model in the float modes.
        seq_len: the fixed sequence length, when the model's is not fixed.
        sparse_weights: encode pruned weights sparsely (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`); the file is
            also converted without it, and the report shows the size saved. TFLite Micro gains nothing from it.
        max_relative_error, min_argmax_agreement: override the mode's verification bounds.
        overwrite: replace an existing file at `path`.
        float_outputs: with int8, keep float32 output tensors around the int8 body (LiteRT.js has no int8
            tensors; phones and microcontrollers take int8 outputs).

    Returns:
        A ConversionResult; `.report()` summarises it.

    Example:

    >>> import keras, numpy as np, tempfile, pathlib
    >>> from converters import to_tflite
    >>> x = keras.Input((16, 4))
    >>> model = keras.Model(x, keras.layers.Dense(2)(x))
    >>> result = to_tflite(model, pathlib.Path(tempfile.mkdtemp()) / "m.tflite")
    >>> result.ops, result.max_relative_error < 1e-4
    (('FULLY_CONNECTED',), True)
    """
    if quantization not in MODES:
        raise ValueError(
            f"Received an invalid value for argument `quantization`, expected one of {tuple(MODES)}. "
            f"Received: quantization={quantization!r}"
        )
    mode = MODES[quantization]
    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists. Pass overwrite=True to replace it, or choose another path.")
    specs = _input_specs(model, seq_len)
    ranks = [len(spec.shape) for spec in specs]
    float_inputs = all(spec.dtype.is_floating for spec in specs)
    if quantization == "int16x8" and not float_inputs:
        raise ValueError(
            "Received an invalid value for argument `quantization`: the TF 2.21 converter cannot calibrate "
            "integer inputs (token ids) in 16x8 mode. Use quantization='int8' for token models."
        )
    if mode.needs_representative_data and representative_data is None:
        raise ValueError(
            f"Received an invalid value for argument `representative_data`: {quantization} quantization "
            "calibrates activation ranges on it. Pass a few hundred typical inputs."
        )
    representative = [] if representative_data is None else as_samples(representative_data, ranks, CALIBRATION_SAMPLES)
    if verification_data is not None:
        verification = as_samples(verification_data, ranks, VERIFICATION_SAMPLES, name="verification_data")
    elif representative:
        verification = representative[:VERIFICATION_SAMPLES]
    elif float_inputs:
        rng = np.random.default_rng(0)
        verification = [[rng.normal(size=spec.shape).astype(np.float32) for spec in specs] for _ in range(16)]
    else:
        raise ValueError(
            "Received an invalid value for argument `verification_data`: the model takes non-float inputs, so "
            "typical inputs cannot be made up. Pass verification_data (or representative_data)."
        )
    if rewritable(model):
        model = ks.exportable(model)
        if quantization == "int16x8":
            model = ks.centered_layer_norms(model)  # Keras's LayerNormalization emits NEG: no 16x8 kernel
        if quantization == "int8":
            model = ks.rewrites.with_blockwise_softmax(model)  # int8 SOFTMAX's 1/256 steps: see its module
    flatbuffer = _convert(model, specs, mode, representative, sparse_weights, float_inputs, float_outputs)
    ops, max_error, mean_error, agreement, latency = _verify(
        flatbuffer,
        model,
        verification,
        mode,
        mode.max_relative_error if max_relative_error is None else max_relative_error,
        mode.min_argmax_agreement if min_argmax_agreement is None else min_argmax_agreement,
    )
    without_sparse_encoding = None
    if sparse_weights:
        without_sparse_encoding = len(_convert(model, specs, mode, representative, False, float_inputs, float_outputs))
    write_atomically(path, flatbuffer, overwrite=overwrite)
    return ConversionResult(
        path,
        quantization,
        len(flatbuffer),
        ops,
        max_error,
        mean_error,
        agreement,
        latency,
        len(verification),
        without_sparse_encoding,
    )
