"""`to_tflite`: a Keras model to a verified, builtins-only `.tflite` file."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_sparse as ks
from converters.converter_logs import quiet_converter
from converters.errors import ConversionError, explain_conversion_failure, explain_runtime_failure, nodes_by_op
from converters.float32_copy import PRECISION_TOLERANCE, float32_copy, float32_global_policy, low_precision
from converters.litert import run_once
from converters.model_inputs import ModelInput, model_inputs, pack, read_samples
from converters.quantization import MODES, Mode
from converters.selective_quantization import quantize_selectively
from converters.verification import REWRITE_TOLERANCE, Comparison, check_finite, compare, verify
from keras_sparse.files import check_output_file, write_atomically
from keras_sparse.rewrites import rewritable, with_max_query_blocks
from keras_sparse.validation import boolean, number, one_of, optional_positive_int

CALIBRATION_SAMPLES = 200
"""Calibration reads at most this many samples of `representative_data` (the first ones)."""
VERIFICATION_SAMPLES = 64
"""Verification compares the file with the model on at most this many samples (the first ones)."""
PROGRESS_FROM = 100
"""Calibrations of this many samples or more show a progress bar."""
XNNPACK_HINT = (
    "LiteRT's default CPU delegate (XNNPACK) cannot prepare this file, as phones would run it. Sparse-encoded int8 "
    "weights do this (measured with n:m and block pruning): convert int8 without sparse_weights, or float32 with it."
)


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """What was written and how it compares with the Keras model the user passed.

    `rewrite_relative_error` is how far the export rewrites (`keras_sparse.exportable`, ...) moved the
    model's outputs, or None when the model was converted as it is. `samples` were compared of the
    `samples_given` the verification data held (None: more than were read); `calibration_samples` of
    `calibration_given` calibrated the int8 and int16x8 modes.
    """

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
    rewrite_relative_error: float | None = None
    samples_given: int | None = None
    calibration_samples: int = 0
    calibration_given: int | None = None

    def report(self) -> str:
        """A one-screen summary."""
        agreement = "" if self.argmax_agreement is None else f", argmax agreement {self.argmax_agreement:.1%}"
        sparse = ""
        if self.size_without_sparse_encoding is not None:
            saved = 1 - self.size_bytes / self.size_without_sparse_encoding
            sparse = (
                f" (sparse weight encoding saved {saved:.0%} of {self.size_without_sparse_encoding / 1024:.1f} KiB)"
            )
        rewrites = ""
        if self.rewrite_relative_error is not None:
            rewrites = f"\n  export rewrites moved the Keras outputs by {self.rewrite_relative_error:.1e} (relative)"
        calibration = ""
        if self.calibration_samples:
            calibration = f"\n  calibrated on {_count(self.calibration_samples, self.calibration_given)} samples"
        return (
            f"{self.path} ({self.quantization}): {self.size_bytes / 1024:.1f} KiB{sparse}, ops {', '.join(self.ops)}\n"
            f"  vs the Keras model on {_count(self.samples, self.samples_given)} inputs: max relative error "
            f"{self.max_relative_error:.2e}, mean absolute error {self.mean_absolute_error:.2e}{agreement}{rewrites}"
            f"{calibration}\n  LiteRT latency (median, batch 1): {self.latency_ms:.2f} ms"
        )


def _count(used: int, given: int | None) -> str:
    """'64', '64 of 100' or 'the first 64', for samples used of those given."""
    if given is None:
        return f"the first {used}"
    return f"{used}" if given == used else f"{used} of {given}"


@dataclasses.dataclass(frozen=True)
class VerifiedFile:
    """A converted file that passed verification, not yet written.

    Attributes:
        flatbuffer: the file's bytes.
        result: what was measured, as if written at its path.
        inputs: the model's inputs.
        samples: the verification samples.
        expected: the Keras model's outputs on each sample (flattened, in the model's output order).
        max_relative_error, min_argmax_agreement: the bounds the file met.
    """

    flatbuffer: bytes
    result: ConversionResult
    inputs: list[ModelInput]
    samples: list[list[np.ndarray]]
    expected: list[list[np.ndarray]]
    max_relative_error: float
    min_argmax_agreement: float


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
    full_integer: bool = False,
) -> ConversionResult:
    """Converts `model` to a `.tflite` file with builtin ops only, verifies it in LiteRT, then writes it.

    The file takes batch 1 and a fixed sequence length; its inputs are named after the model's (the keys
    of a model taking a dict, such as keras-hub's `token_ids`, `padding_mask`, `segment_ids`) and it has
    one output per entry of the model's flattened outputs. Sparse attention layers switch to their
    export-safe kernels first (`keras_sparse.exportable`); int8 files keep attention between its projections
    in float32 (see `full_integer`), and full-integer ones take its softmax blockwise
    (`keras_sparse.rewrites.with_blockwise_softmax`: the same numbers in float, and int8 weights with
    precision to spare on rows wider than int8 SOFTMAX's 256 steps), and for int16x8 layer norms become
    `CenteredLayerNormalization` (`keras_sparse.centered_layer_norms`). The rewritten copy must give the
    model's outputs within float32 rounding (`verification.REWRITE_TOLERANCE`, relative), else
    ConversionError. The file is then compared with `model` itself, as passed, on `verification_data`, and
    written (atomically) only if every output is finite and within the mode's tolerance. A model whose layers
    compute in float16 or bfloat16 (Keras mixed precision) is converted as a float32 copy holding its weights
    (`converters.float32_copy`), verified against the model itself within the mode's bound or that dtype's
    rounding (`PRECISION_TOLERANCE`), whichever is looser (bounds passed as arguments are kept as given).

    Args:
        model: a functional or Sequential Keras model (keras-hub backbones and tasks are).
        path: where to write the `.tflite`. Checked before any work: its folder must exist, and an existing
            file is kept unless `overwrite=True`.
        quantization: `"float32"`, `"float16"`, `"dynamic"` (int8 weights), `"int8"` (int8 weights and
            activations, int8 in and out for float inputs; see `full_integer`) or `"int16x8"` (16-bit
            activations, 8-bit weights).
        representative_data: calibration inputs, required for int8 and int16x8 and never empty: an array,
            a list of arrays or a dict of arrays (by input name) holding a batch, a `tf.data.Dataset`, or
            an iterable of samples or batches. float64 is cast to float32 and int64 to int32 (if it fits).
            Only the first `CALIBRATION_SAMPLES` (200) samples are read; the report says how many of how many.
        verification_data: held-out inputs to compare on, in the same forms; defaults to
            `representative_data`, or to seeded normal samples for a float-input model in the float modes.
            Only the first `VERIFICATION_SAMPLES` (64) samples are compared (each runs the Keras model and the
            file once); the report says how many of how many ("on 64 of 100 inputs").
        seq_len: the fixed sequence length, when the model's is not fixed.
        sparse_weights: encode pruned weights sparsely (`tf.lite.Optimize.EXPERIMENTAL_SPARSITY`); the file is
            also converted without it, and the report shows the size saved. TFLite Micro gains nothing from it.
        max_relative_error, min_argmax_agreement: override the mode's verification bounds; numbers in [0, 1].
        overwrite: replace an existing file at `path`.
        float_outputs: with int8, keep float32 output tensors around the int8 body (LiteRT.js has no int8
            tensors; phones and microcontrollers take int8 outputs).
        full_integer: with int8, quantize every op, as TFLite Micro (`to_micro` does so) and integer-only
            accelerators need. By default (False) the weightless ops that LiteRT's fast CPU kernels
            (XNNPACK) run in float32 but not in int8 stay float32: each attention layer's core (scores,
            softmax, weighted sum: everything between its projections) and layer normalization's
            SQUARED_DIFFERENCE (`converters.selective_quantization`). Weights stay int8, so the file is no
            larger; on phones it is several times faster (docs/benchmarks.md). With `sparse_weights` the
            file is full-integer (and refused: XNNPACK takes no sparse-encoded int8 weights).

    Returns:
        A ConversionResult; `.report()` summarises it.

    Raises:
        ValueError, TypeError: a bad argument or bad data, named (before the conversion starts).
        OSError: `path` cannot be written (`keras_sparse.files.check_output_file`); FileExistsError if it exists.
        ConversionError: the model needs an op without a TFLite builtin kernel, a rewrite changed its
            numbers, or LiteRT cannot run the converted file; nothing was written.
        VerificationError: the file disagrees with the model, or either gives NaN or infinite outputs.

    Example:

    >>> import keras, numpy as np, tempfile, pathlib
    >>> from converters import to_tflite
    >>> x = keras.Input((16, 4))
    >>> model = keras.Model(x, keras.layers.Dense(2)(x))
    >>> result = to_tflite(model, pathlib.Path(tempfile.mkdtemp()) / "m.tflite")
    >>> result.ops, result.max_relative_error < 1e-4
    (('FULLY_CONNECTED',), True)
    """
    path = check_output_file(path, boolean("overwrite", overwrite))
    verified = convert_verified(
        model,
        path,
        quantization,
        representative_data,
        verification_data,
        seq_len,
        sparse_weights=sparse_weights,
        max_relative_error=max_relative_error,
        min_argmax_agreement=min_argmax_agreement,
        float_outputs=float_outputs,
        full_integer=full_integer,
    )
    write_atomically(path, verified.flatbuffer, overwrite=overwrite)
    return verified.result


def _bound(name: str, value, default: float) -> float:
    """A verification bound: `default` for None, else a number in [0, 1] (NaN refused)."""
    return default if value is None else number(name, value, at_least=0, at_most=1)


def convert_verified(
    model: keras.Model,
    path: pathlib.Path,
    quantization: str,
    representative_data,
    verification_data,
    seq_len: int | None,
    *,
    sparse_weights: bool,
    max_relative_error: float | None,
    min_argmax_agreement: float | None,
    float_outputs: bool,
    full_integer: bool,
    max_query_blocks: int | None = None,
) -> VerifiedFile:
    """`to_tflite` without the write: the verified file, and its result as if written at `path`.

    The arguments are `to_tflite`'s; `max_query_blocks` also applies
    `keras_sparse.rewrites.with_max_query_blocks` (for `to_micro`).
    """
    mode = MODES[one_of("quantization", quantization, tuple(MODES))]
    default_error, default_agreement = max_relative_error is None, min_argmax_agreement is None
    max_relative_error = _bound("max_relative_error", max_relative_error, mode.max_relative_error)
    min_argmax_agreement = _bound("min_argmax_agreement", min_argmax_agreement, mode.min_argmax_agreement)
    sparse_weights = boolean("sparse_weights", sparse_weights)
    float_outputs = boolean("float_outputs", float_outputs)
    full_integer = boolean("full_integer", full_integer)
    selective = quantization == "int8" and not full_integer and not sparse_weights  # XNNPACK refuses sparse int8
    optional_positive_int("max_query_blocks", max_query_blocks)
    inputs = model_inputs(model, seq_len)
    float_inputs = all(i.dtype.kind == "f" for i in inputs)
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
    representative, calibration_given = [], None
    if representative_data is not None:
        representative, calibration_given = read_samples(
            representative_data, inputs, CALIBRATION_SAMPLES, "representative_data"
        )
    if verification_data is not None:
        verification, verification_given = read_samples(
            verification_data, inputs, VERIFICATION_SAMPLES, "verification_data"
        )
    elif representative:
        verification = representative[:VERIFICATION_SAMPLES]
        verification_given = calibration_given
    elif float_inputs:
        rng = np.random.default_rng(0)
        verification = [[rng.normal(size=i.shape).astype(i.dtype) for i in inputs] for _ in range(16)]
        verification_given = len(verification)
    else:
        raise ValueError(
            "Received an invalid value for argument `verification_data`: the model takes non-float inputs, so "
            "typical inputs cannot be made up. Pass verification_data (or representative_data)."
        )

    original = _traced(model, inputs)
    expected = _outputs(original, verification, "verification_data" if verification_data is not None else None)
    check_finite(expected, "The Keras model")
    precision = low_precision(model)  # mixed precision: float16 ops have no builtin kernels, so convert in float32
    with float32_global_policy():
        source = float32_copy(model) if precision else model
        export, rewrites = _export_copy(source, quantization, max_query_blocks, selective)
    if precision:
        rewrites.insert(0, f"a float32 copy of the {precision} model")
        if default_error:  # the user's own bounds stay as given
            max_relative_error = max(max_relative_error, PRECISION_TOLERANCE[precision])
        if default_agreement:
            min_argmax_agreement = min(min_argmax_agreement, MODES["float16"].min_argmax_agreement)
    function, rewrite_error = original, None
    if rewrites:
        function = _traced(export, inputs)
        rewrite_error = compare(_outputs(function, verification), expected).max_relative_error
        tolerance = PRECISION_TOLERANCE[precision] if precision else REWRITE_TOLERANCE
        if not rewrite_error <= tolerance:
            raise ConversionError(
                f"Rewriting the model for export ({', '.join(rewrites)}) changed its outputs by {rewrite_error:.3g} "
                f"(relative; {precision or 'float32'} rounding stays under {tolerance:g}) on {len(verification)} "
                "inputs, so the file would not compute this model; nothing was written. A layer the rewrite copies "
                "without its pattern or weights does this: please report it with the model's layers."
            )
    options = dict(float_inputs=float_inputs, float_outputs=float_outputs, selective=selective)
    flatbuffer = _convert(function, export, mode, representative, sparse_weights, **options)
    ops, comparison, latency = _verify(
        flatbuffer, inputs, verification, expected, mode, max_relative_error, min_argmax_agreement
    )
    without_sparse_encoding = None
    if sparse_weights:
        without_sparse_encoding = len(_convert(function, export, mode, representative, False, **options))
    result = ConversionResult(
        path,
        quantization,
        len(flatbuffer),
        ops,
        comparison.max_relative_error,
        comparison.mean_absolute_error,
        comparison.argmax_agreement,
        latency,
        len(verification),
        without_sparse_encoding,
        rewrite_error,
        verification_given,
        len(representative) if mode.needs_representative_data else 0,
        calibration_given,
    )
    return VerifiedFile(flatbuffer, result, inputs, verification, expected, max_relative_error, min_argmax_agreement)


def _export_copy(
    model: keras.Model, quantization: str, max_query_blocks: int | None, selective: bool
) -> tuple[keras.Model, list[str]]:
    """The copy of `model` that is converted, and the names of the rewrites that made it (`selective`: an
    int8 file whose attention stays float, so its softmax needs no blockwise form)."""
    if not rewritable(model):
        if max_query_blocks is not None:
            raise ValueError(
                "Received an invalid value for argument `max_query_blocks`: it rewrites the model's layers, which "
                "needs a functional or Sequential model."
            )
        return model, []
    steps = [("keras_sparse.exportable", ks.exportable)]
    if quantization == "int16x8":
        steps.append(("keras_sparse.centered_layer_norms", ks.centered_layer_norms))  # LayerNormalization's NEG
    if quantization == "int8" and not selective:
        steps.append(
            ("keras_sparse.rewrites.with_blockwise_softmax", ks.rewrites.with_blockwise_softmax)
        )  # int8 SOFTMAX's 1/256 steps
    if max_query_blocks is not None:
        steps.append(
            ("keras_sparse.rewrites.with_max_query_blocks", lambda copy: with_max_query_blocks(copy, max_query_blocks))
        )
    for name, rewrite in steps:
        try:
            model = rewrite(model)
        except ValueError:
            raise
        except Exception as error:  # a layer that cannot be copied: say which rewrite and why
            raise ConversionError(
                f"{name} could not copy the model for export ({type(error).__name__}: {error}); nothing was written."
            ) from error
    return model, [name for name, _ in steps]


def _traced(model: keras.Model, inputs: list[ModelInput]):
    """The model's batch-1 concrete function, returning its flattened outputs."""
    function = tf.function(lambda *arrays: keras.tree.flatten(model(pack(model, arrays), training=False)))
    try:
        return function.get_concrete_function(*[i.spec for i in inputs])
    except (ValueError, TypeError):
        raise  # our layers name the argument (a length the pattern does not fit, ...)
    except Exception as error:
        raise ConversionError(
            f"The model could not be traced at batch 1 with inputs {[(i.name, i.shape) for i in inputs]}: "
            f"{type(error).__name__}: {error}"
        ) from error


def _outputs(function, samples: list[list[np.ndarray]], argument: str | None = None) -> list[list[np.ndarray]]:
    """The function's outputs on each sample; a TensorFlow error on bad data becomes a ValueError naming it."""
    outputs = []
    for index, sample in enumerate(samples):
        try:
            outputs.append([np.asarray(t) for t in function(*sample)])
        except tf.errors.OpError as error:
            message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", error.message).strip().splitlines()[0]
            if isinstance(error, tf.errors.InvalidArgumentError):  # ids outside a table, ...: the data's fault
                raise ValueError(
                    f"Received an invalid value for argument `{argument or 'representative_data'}`: the Keras model "
                    f"fails on sample {index}: {message}"
                ) from None
            raise ConversionError(f"The Keras model failed on sample {index}: {message}") from None
    return outputs


def _convert(
    function,
    model: keras.Model,
    mode: Mode,
    representative,
    sparse_weights: bool,
    *,
    float_inputs: bool,
    float_outputs: bool,
    selective: bool,
) -> bytes:
    # Not from_concrete_functions([...], model): with the model as trackable object, files were seen to keep
    # uninitialised variables and return garbage (FACTS.md); verification below would catch it.
    with quiet_converter():  # absl's warning that a trackable_obj is missing
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    mode.configure(converter, lambda: _with_progress(representative), sparse_weights, float_inputs, float_outputs)
    try:
        with quiet_converter():
            if selective:
                return quantize_selectively(converter)
            return converter.convert()
    except Exception as error:  # the converter raises ConverterError and others, with the op list in the text
        layer_names = [layer.name for layer in model._flatten_layers()]
        raise explain_conversion_failure(str(error), nodes_by_op([function.graph]), layer_names) from None


def _with_progress(samples: list, shown_from: int = PROGRESS_FROM):
    """Yields the calibration samples, with Keras's progress bar when there are many."""
    bar = keras.utils.Progbar(len(samples), unit_name="calibration sample") if len(samples) >= shown_from else None
    for index, sample in enumerate(samples, 1):
        yield sample
        if bar is not None:
            bar.update(index)


def _verify(
    flatbuffer: bytes, inputs: list[ModelInput], samples, expected, mode: Mode, max_relative_error, min_argmax_agreement
) -> tuple[tuple[str, ...], Comparison, float]:
    """Runs the file in LiteRT on every sample and compares it with the Keras model's outputs."""
    try:
        with quiet_converter():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate"
            interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        hint = XNNPACK_HINT if "XNNPack" in str(error) else ""
        raise explain_runtime_failure(str(error), "LiteRT", hint) from None
    ops = tuple(sorted({op["op_name"] for op in interpreter._get_ops_details()} - {"DELEGATE"}))
    names = [i.name for i in inputs]
    actual, times = [], []
    for sample in samples:
        start = time.perf_counter()
        try:
            actual.append(run_once(interpreter, sample, names))
        except (RuntimeError, ValueError) as error:
            raise explain_runtime_failure(str(error), f"LiteRT ({mode.name})") from None
        times.append((time.perf_counter() - start) * 1e3)
    comparison = verify(actual, expected, f"The {mode.name} file", max_relative_error, min_argmax_agreement)
    return ops, comparison, statistics.median(times)
