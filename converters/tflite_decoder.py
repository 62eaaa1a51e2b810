"""A `SparseCausalLM` as one verified `.tflite` decoder (`prefill` and `decode` signatures), and generation in LiteRT.

Both signatures take `token_ids` int32 `(1, T)`, `position` int32 `(1,)` (the first token's position) and
`cache` float32 `(1, num_layers, 2, S, num_heads, key_dim)`, and return `logits` float32 `(1, T, vocab)`, the
updated `cache` and `max_positions` int32 `(1,)`: 0 when the cache is a ring buffer (any position), else S.
`prefill` takes `T = prefill_length` tokens, `decode` one. With a ring buffer S is the layout's length, so no
input grows with the position; the caches stay float32 in every mode (LiteRT.js refuses int8 I/O), only the
body is quantized.
"""

from __future__ import annotations

import dataclasses
import pathlib
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from converters.converter_logs import quiet_converter
from converters.errors import explain_conversion_failure, explain_runtime_failure, nodes_by_op
from converters.float32_copy import low_precision
from converters.quantization import MODES, OpsSet
from converters.selective_quantization import quantize_selectively
from converters.verification import verify
from keras_sparse.files import check_output_file, read_input_file, write_atomically
from keras_sparse.models import SparseCausalLM
from keras_sparse.models.decoding import decode, drawer_of, one_prompt, prompt_array
from keras_sparse.validation import boolean, invalid_argument, number, one_of, optional_positive_int, positive_int

CALIBRATION_STEPS = 200
"""Decode steps (and prefill chunks) recorded from the Keras model to calibrate int8 files."""

INT8_MAX_RELATIVE_ERROR = 0.25
"""The int8 decoder's default logit bound (the classifier modes' 0.15 is for class scores): the files of four
trained 2-layer window models (vocabulary 12, tests/converters/test_tflite_decoder.py's, differently seeded and
calibrated) measured 0.099, 0.116, 0.150 and 0.175; 0.25 is 1.4x the worst. Token agreement (99% by default) is
the bound generation needs."""


@dataclasses.dataclass(frozen=True)
class DecoderConversionResult:
    """What `to_tflite_decoder` wrote and how its greedy run compares with Keras's.

    Attributes:
        path, quantization, size_bytes, ops: the file.
        cache_shape: the `cache` input's shape (it does not depend on the position with a ring buffer).
        prefill_length: tokens per `prefill` call.
        steps: positions compared (prompt and generated), the last at `steps - 1`.
        max_relative_error: max |LiteRT - Keras| / max |Keras| over every step's next-token logits.
        argmax_agreement: share of steps where LiteRT's next token is Keras's (1.0: the same greedy tokens).
        decode_ms: median LiteRT `decode` call, batch 1, 2 threads.
    """

    path: pathlib.Path
    quantization: str
    size_bytes: int
    ops: tuple[str, ...]
    cache_shape: tuple[int, ...]
    prefill_length: int
    steps: int
    max_relative_error: float
    argmax_agreement: float
    decode_ms: float

    def report(self) -> str:
        """A one-screen summary."""
        return (
            f"{self.path} ({self.quantization}): {self.size_bytes / 1024:.1f} KiB, cache {self.cache_shape}, ops "
            f"{', '.join(self.ops)}\n  vs Keras over a greedy run of {self.steps} positions: max relative error "
            f"{self.max_relative_error:.2e}, same next token at {self.argmax_agreement:.1%} of steps\n"
            f"  LiteRT decode step (median, batch 1): {self.decode_ms:.2f} ms"
        )


class LiteRTDecoder:
    """A decoder file in LiteRT, keeping its cache: `decoder(token_ids (1, T), position) -> logits (1, T, vocab)`.

    Args:
        model: the `.tflite` path or its bytes, as `to_tflite_decoder` writes it.
        num_threads: LiteRT CPU threads (default 2).

    Raises:
        ValueError: the file lacks the `prefill` and `decode` signatures.
    """

    def __init__(self, model, num_threads: int = 2):
        if not isinstance(model, (bytes, bytearray)):
            model = read_input_file(model, "path", "decoder .tflite file (to_tflite_decoder)")
        self.interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        if not {"prefill", "decode"} <= set(signatures):
            raise invalid_argument(
                "model", "a decoder file with 'prefill' and 'decode' signatures (to_tflite_decoder)", f"{signatures}"
            )
        self.prefill = self.interpreter.get_signature_runner("prefill")
        self.decode = self.interpreter.get_signature_runner("decode")
        inputs = self.prefill.get_input_details()
        self.prefill_length = int(inputs["token_ids"]["shape"][1])
        self.cache_shape = tuple(int(n) for n in inputs["cache"]["shape"])
        self.reset()
        self.max_positions = int(self.decode(**self._inputs(np.zeros((1, 1), np.int32), 0))["max_positions"][0])

    def reset(self) -> None:
        """Empties the cache (a new sequence starts at position 0)."""
        self.cache = np.zeros(self.cache_shape, np.float32)

    def _inputs(self, token_ids: np.ndarray, position: int) -> dict:
        return {
            "token_ids": token_ids.astype(np.int32),
            "position": np.array([position], np.int32),
            "cache": self.cache,
        }

    def __call__(self, token_ids: np.ndarray, position: int) -> np.ndarray:
        if self.max_positions and position + token_ids.shape[1] > self.max_positions:
            raise invalid_argument(
                "max_new_tokens",
                f"a sequence within the file's full cache of {self.max_positions} positions (its pattern cannot be "
                "decoded with a ring buffer: convert with a larger max_length)",
                f"position {position + token_ids.shape[1] - 1}",
            )
        runner = self.prefill if token_ids.shape[1] == self.prefill_length and token_ids.shape[1] > 1 else self.decode
        outputs = runner(**self._inputs(token_ids, position))
        self.cache = outputs["cache"]
        return outputs["logits"]


def generate_tflite(
    path,
    prompt_ids,
    max_new_tokens: int,
    sampler="greedy",
    deterministic: bool = False,
    num_threads: int = 2,
) -> np.ndarray:
    """`SparseCausalLM.generate` in LiteRT, from a file `to_tflite_decoder` wrote.

    Args:
        path: the `.tflite` file (or its bytes).
        prompt_ids: int `(length,)` or `(1, length)`.
        max_new_tokens, sampler, deterministic: as `SparseCausalLM.generate`.
        num_threads: LiteRT CPU threads.

    Returns:
        int32 `(1, length + max_new_tokens)`: the prompt followed by the new tokens.

    Raises:
        ValueError: naming the argument (a batch of several prompts, ids out of range, max_new_tokens < 1 or past
            a full cache's end, an unseeded sampler with deterministic=True).
    """
    decoder = LiteRTDecoder(path, positive_int("num_threads", num_threads))
    vocab_size = int(decoder.decode.get_output_details()["logits"]["shape"][-1])
    prompt = one_prompt(prompt_ids, vocab_size)
    max_new_tokens = positive_int("max_new_tokens", max_new_tokens)
    if decoder.max_positions and prompt.shape[1] + max_new_tokens > decoder.max_positions:
        raise invalid_argument(
            "max_new_tokens",
            f"at most {decoder.max_positions - prompt.shape[1]} after this prompt: the file's full cache holds "
            f"{decoder.max_positions} positions",
            f"max_new_tokens={max_new_tokens}",
        )
    draw = drawer_of(sampler, boolean("deterministic", deterministic))
    return decode(decoder, prompt, max_new_tokens, draw, decoder.prefill_length)


class _Signatures(tf.Module):
    """The two signatures over one model, sharing its variables."""

    def __init__(self, lm: SparseCausalLM, cache_shape: tuple[int, ...], prefill_length: int, bounded: bool):
        super().__init__()
        self.lm = lm
        max_positions = 0 if bounded else cache_shape[3]

        def step(token_ids, position, cache):
            logits, cache = lm.call_with_cache(token_ids, cache, position[0], bounded)
            return {"logits": logits, "cache": cache, "max_positions": tf.constant([max_positions], tf.int32)}

        def specs(length):
            return (
                tf.TensorSpec((1, length), tf.int32, name="token_ids"),
                tf.TensorSpec((1,), tf.int32, name="position"),
                tf.TensorSpec(cache_shape, tf.float32, name="cache"),
            )

        self.prefill = tf.function(step, input_signature=specs(prefill_length))
        self.decode = tf.function(step, input_signature=specs(1))


def calibration_inputs(lm: SparseCausalLM, data: np.ndarray, cache: str, cache_length: int, prefill_length: int):
    """Yields `(signature, inputs)` while the Keras model reads `data` (int `(N, L)`): a prefill chunk, then one
    token per step, `CALIBRATION_STEPS` in all. One cache is alive at a time, however long a full cache is."""
    count = 0
    if cache == "full":
        data = data[:, :cache_length]
    for sequence in data.astype(np.int32):
        decoder = lm.decoder(1, cache, cache_length)
        position = 0
        while position < len(sequence) and count < CALIBRATION_STEPS:
            length = prefill_length if position == 0 and len(sequence) >= prefill_length > 1 else 1
            tokens = sequence[None, position : position + length]
            inputs = {"token_ids": tokens, "position": np.array([position], np.int32), "cache": decoder.cache.numpy()}
            yield ("prefill" if length > 1 else "decode"), inputs
            decoder(tokens, position)
            position, count = position + length, count + 1


def teacher_forcing(tokens: np.ndarray, start: int):
    """A draw function returning `tokens[:, start]`, then `tokens[:, start + 1]`, ...: teacher forcing."""
    columns = iter(range(start, tokens.shape[1]))
    return lambda logits: tokens[:, next(columns)].astype(np.int32)


def frozen_function(
    function: tf.types.experimental.GenericFunction, specs: tuple
) -> tf.types.experimental.GenericFunction:
    """`function` with the model's variables folded in as constants, taking `specs`.

    A SavedModel holding the variables converts to a file that reads them with VAR_HANDLE / READ_VARIABLE and
    never initializes them (LiteRT returned NaN), as FACTS.md records for `from_concrete_functions` with the
    model as trackable object; frozen, the file holds the weights as constants.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # TF's own

    concrete = function.get_concrete_function()
    constant = convert_variables_to_constants_v2(concrete)
    return tf.function(
        lambda *inputs: tf.nest.pack_sequence_as(concrete.structured_outputs, tf.nest.flatten(constant(*inputs))),
        input_signature=specs,
    )


def _convert(module: _Signatures, mode, representative_dataset) -> bytes:
    """The file's bytes; the converter's routine logs kept off stderr, its failures a ConversionError."""
    frozen = tf.Module()
    signatures = {}
    try:
        with quiet_converter(), tempfile.TemporaryDirectory() as folder:  # freezing and saving log from C++ too
            frozen.prefill = frozen_function(module.prefill, module.prefill.input_signature)
            frozen.decode = frozen_function(module.decode, module.decode.input_signature)
            signatures = {name: getattr(frozen, name).get_concrete_function() for name in ("prefill", "decode")}
            tf.saved_model.save(frozen, folder, signatures=signatures)
            converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["prefill", "decode"])
            mode.configure(converter, representative_dataset, False, float_inputs=False, float_outputs=True)
            if mode.name == "int8":  # SIN, the position arithmetic and the cache copies have no int8 kernels
                converter.target_spec.supported_ops = [OpsSet.TFLITE_BUILTINS_INT8, OpsSet.TFLITE_BUILTINS]
                return quantize_selectively(converter)  # attention, rotary angles and cache writes stay float
            return converter.convert()
    except Exception as error:  # the converter's errors list the ops in their text
        graph_nodes = nodes_by_op(function.graph for function in signatures.values())
        layer_names = [layer.name for layer in module.lm._flatten_layers()]
        raise explain_conversion_failure(str(error), graph_nodes, layer_names) from None


def to_tflite_decoder(
    lm: SparseCausalLM,
    path,
    quantization: str = "float32",
    representative_data=None,
    prefill_length: int = 32,
    cache: str = "auto",
    max_length: int | None = None,
    verification_prompt=None,
    verification_steps: int | None = None,
    max_relative_error: float | None = None,
    min_argmax_agreement: float | None = None,
    overwrite: bool = False,
) -> DecoderConversionResult:
    """Converts `lm` to one `.tflite` file with `prefill` and `decode` signatures, verified before it is written.

    The file is written (atomically) only if a greedy run in LiteRT follows Keras's: Keras generates
    greedily from `verification_prompt` for `verification_steps` tokens (by default past the window twice
    over), the file reads the same tokens, and at every step its next-token logits must be within the mode's
    relative error and give Keras's token (the agreement bound: 1.0 for float32, so the same greedy tokens).

    Args:
        lm: a built `keras_sparse.models.SparseCausalLM`.
        path: the `.tflite` file to write.
        quantization: "float32" (default), "float16", "dynamic" or "int8" (`converters.MODES`); int8 quantizes
            the body with float32 inputs and outputs (caches and logits).
        representative_data: int token ids `(N, L)`, typical text; needed for int8, whose activation ranges are
            calibrated on up to 200 prefill and decode steps of the Keras model reading it.
        prefill_length: tokens per `prefill` call (default 32); a longer prompt is prefilled in chunks, the rest
            token by token.
        cache: "auto", "bounded" or "full", as `SparseCausalLM.cache_layout`.
        max_length: positions a full cache holds (required with a full cache, unused with a ring buffer).
        verification_prompt: int ids `(length,)`; defaults to the first `prefill_length + 1` tokens of
            `representative_data`, else to `1, 2, ...`.
        verification_steps: tokens generated in verification (default: twice the ring buffer's length plus 16,
            or what a full cache holds, at most 256).
        max_relative_error, min_argmax_agreement: override the bounds: the mode's (`converters.MODES`), but
            int8's logits within `INT8_MAX_RELATIVE_ERROR` and float32's tokens all equal (agreement 1.0).
        overwrite: replace an existing file.

    Returns:
        A `DecoderConversionResult`.

    Raises:
        ValueError: naming the argument (a model that is not a SparseCausalLM or not built, a missing
            representative_data or max_length, ...).
        converters.VerificationError: the file disagrees with Keras; nothing was written.
        FileExistsError: `path` exists and `overwrite` is False.
    """
    if not isinstance(lm, SparseCausalLM) or not lm.built:
        raise invalid_argument("lm", "a built keras_sparse.models.SparseCausalLM (call it once)", f"lm={lm!r}")
    precision = low_precision(lm)
    if precision:
        raise invalid_argument(
            "lm",
            "a model computing in float32: TFLite takes float32 graphs and the file is verified token by token, "
            "which float16 rounding changes. Fix: build it under keras.mixed_precision.set_global_policy('float32') "
            "and load the weights (lm.set_weights(trained.get_weights()))",
            f"dtype policy {lm.dtype_policy.name} (layers computing in {precision})",
        )
    mode = MODES[one_of("quantization", quantization, ("float32", "float16", "dynamic", "int8"))]
    path = check_output_file(path, boolean("overwrite", overwrite))
    prefill_length = positive_int("prefill_length", prefill_length)
    layout = lm.cache_layout(cache)
    if layout is None:
        if max_length is None:
            raise invalid_argument(
                "max_length", "the positions the full cache holds, as the pattern cannot be bounded", "None"
            )
        cache_length = positive_int("max_length", max_length)
    else:
        cache_length = layout.length
    data = None
    if representative_data is not None:
        data = np.asarray(representative_data)
        if data.ndim != 2 or data.dtype.kind not in "iu":
            raise invalid_argument(
                "representative_data", "int token ids shaped (N, length)", f"shape {data.shape}, dtype {data.dtype}"
            )
        prompt_array(data, lm.vocab_size, "representative_data")
    if mode.needs_representative_data and data is None:
        raise invalid_argument(
            "representative_data", f"token ids (N, length) of typical text for {quantization} calibration", "None"
        )
    if verification_prompt is None:
        verification_prompt = data[0, : prefill_length + 1] if data is not None else np.arange(1, 9) % lm.vocab_size
    prompt = one_prompt(verification_prompt, lm.vocab_size, "verification_prompt")
    default_steps = min(2 * cache_length + 16, 256) if layout is not None else cache_length - prompt.shape[1]
    steps = optional_positive_int("verification_steps", verification_steps) or default_steps
    if prompt.shape[1] + steps > (cache_length if layout is None else np.inf):
        raise invalid_argument(
            "verification_steps",
            f"at most {cache_length - prompt.shape[1]}: the full cache holds {cache_length} positions",
            f"verification_steps={steps}",
        )
    if max_relative_error is None:
        max_relative_error = INT8_MAX_RELATIVE_ERROR if mode.name == "int8" else mode.max_relative_error
    max_relative_error = number("max_relative_error", max_relative_error, at_least=0)
    if min_argmax_agreement is None:
        min_argmax_agreement = 1.0 if mode.name == "float32" else mode.min_argmax_agreement
    min_argmax_agreement = number("min_argmax_agreement", min_argmax_agreement, at_least=0, at_most=1)

    cache_shape = (1, lm.num_layers, 2, cache_length, lm.num_heads, lm.key_dim)
    cache = "full" if layout is None else "bounded"
    signatures = _Signatures(lm, cache_shape, prefill_length, layout is not None)
    flatbuffer = _convert(signatures, mode, lambda: calibration_inputs(lm, data, cache, cache_length, prefill_length))

    expected, actual, times = [], [], []
    tokens = decode(
        lm.decoder(1, cache, cache_length),
        prompt,
        steps,
        drawer_of("greedy", False),
        prefill_length,
        on_token=lambda position, logits: expected.append([logits]),
    )
    try:
        with quiet_converter():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate"
            decoder = LiteRTDecoder(flatbuffer)
    except (RuntimeError, ValueError) as error:
        raise explain_runtime_failure(str(error), f"LiteRT ({mode.name})") from None

    def timed(token_ids, position):
        start = time.perf_counter()
        logits = decoder(token_ids, position)
        if token_ids.shape[1] == 1:
            times.append((time.perf_counter() - start) * 1e3)
        return logits

    decode(  # the file reads Keras's tokens: 100% agreement is the same greedy run
        timed,
        prompt,
        steps,
        teacher_forcing(tokens, prompt.shape[1]),
        prefill_length,
        on_token=lambda position, logits: actual.append([logits]),
    )
    comparison = verify(actual, expected, f"The {mode.name} decoder file", max_relative_error, min_argmax_agreement)
    ops = tuple(sorted({op["op_name"] for op in decoder.interpreter._get_ops_details()} - {"DELEGATE"}))
    write_atomically(path, flatbuffer, overwrite=overwrite)
    return DecoderConversionResult(
        path,
        mode.name,
        len(flatbuffer),
        ops,
        cache_shape,
        prefill_length,
        prompt.shape[1] + steps,
        comparison.max_relative_error,
        comparison.argmax_agreement,
        statistics.median(times),
    )
