"""`to_micro` on a `SparseCausalLM`: its int8 decode step as a TFLite Micro bundle, and generation in TFLite Micro.

TFLite Micro runs one subgraph with fixed shapes, so the bundle holds only the decode step of
`converters.to_tflite_decoder`: inputs `token_ids` int32 `(1, 1)`, `position` int32 `(1,)` and the ring-buffer
`cache` int8 `(1, num_layers, 2, slots, num_heads, key_dim)`; outputs the new `cache` (int8, the input's scale and
zero point) and the next-token `logits` int8 `(1, 1, vocab_size)`. A prompt is read one token per step (there is
no prefill). The cache is int8 at the boundary: a float32 cache would take 4 times its bytes twice over (input
and output) in the arena, and a C++ caller copies int8 bytes from the output to the input between steps.
"""

from __future__ import annotations

import dataclasses
import pathlib
import statistics
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from converters import c_sources
from converters.converter_logs import quiet_converter
from converters.errors import (
    ConversionError,
    VerificationError,
    explain_conversion_failure,
    explain_runtime_failure,
    nodes_by_op,
)
from converters.float32_copy import low_precision
from converters.micro_forms import micro_forms
from converters.quantization import MODES
from converters.tflite_decoder import INT8_MAX_RELATIVE_ERROR, calibration_inputs, frozen_function, teacher_forcing
from converters.to_micro import ARENA_MARGIN, check_micro_ops, micro_settings, smallest_arena
from converters.verification import verify
from keras_sparse import kernels
from keras_sparse.files import MANIFEST, check_output_folder, read_input_file, write_folder_atomically
from keras_sparse.models import SparseCausalLM
from keras_sparse.models.decoding import decode, drawer_of, one_prompt, prompt_array
from keras_sparse.validation import (
    boolean,
    invalid_argument,
    non_negative_int,
    number,
    optional_positive_int,
    positive_int,
)

INPUTS = ("token_ids", "position", "cache")
"""The step's inputs, in the file's order (`kTokenIdsInput`, `kPositionInput`, `kCacheInput`)."""
OUTPUTS = ("cache", "logits")
"""The step's outputs, in the file's order (`kCacheOutput`, `kLogitsOutput`)."""


@dataclasses.dataclass(frozen=True)
class MicroDecoderBundle:
    """The files `to_micro` wrote for a `SparseCausalLM` and what was measured.

    Attributes:
        folder, files: the bundle.
        size_bytes: the `.tflite` file (and so the C array).
        ops: its builtin ops (the resolver registers exactly these).
        rewritten: ops rewritten into forms TFLite Micro has (`converters.micro_forms`), and how many.
        cache_shape: the int8 cache's shape; its bytes do not depend on the position.
        arena_bytes, measured_arena_bytes: `kTensorArenaSize` and the smallest arena that worked.
        steps: positions compared in verification (prompt and generated).
        litert_max_relative_error, micro_max_relative_error: max |file - Keras| / max |Keras| over every step's
            next-token logits, in LiteRT and in TFLite Micro.
        litert_argmax_agreement, micro_argmax_agreement: the share of steps whose next token is Keras's.
        max_quantization_steps: the largest difference between TFLite Micro's and LiteRT's int8 logits.
        micro_step_ms: median TFLite Micro step in the Python interpreter (reference kernels, x86).
    """

    folder: pathlib.Path
    files: tuple[str, ...]
    size_bytes: int
    ops: tuple[str, ...]
    rewritten: dict
    cache_shape: tuple[int, ...]
    arena_bytes: int
    measured_arena_bytes: int
    steps: int
    litert_max_relative_error: float
    litert_argmax_agreement: float
    micro_max_relative_error: float
    micro_argmax_agreement: float
    max_quantization_steps: int
    micro_step_ms: float

    def report(self) -> str:
        """A one-screen summary."""
        rewritten = ", ".join(f"{count} {what}" for what, count in self.rewritten.items()) or "none"
        return (
            f"{self.folder}: {', '.join(self.files)}\n  decode step: {self.size_bytes / 1024:.1f} KiB, int8 cache "
            f"{self.cache_shape} ({int(np.prod(self.cache_shape))} bytes), ops {', '.join(self.ops)}\n"
            f"  rewritten for TFLite Micro: {rewritten}\n"
            f"  arena: {self.measured_arena_bytes} bytes measured, kTensorArenaSize = {self.arena_bytes}\n"
            f"  vs Keras over a greedy run of {self.steps} positions (max relative error, same next token): LiteRT "
            f"{self.litert_max_relative_error:.3f}, {self.litert_argmax_agreement:.1%}; TFLite Micro "
            f"{self.micro_max_relative_error:.3f}, {self.micro_argmax_agreement:.1%}; TFLite Micro vs LiteRT: at "
            f"most {self.max_quantization_steps} quantization step(s) apart\n"
            f"  TFLite Micro step (Python interpreter, reference kernels): {self.micro_step_ms:.2f} ms"
        )


class MicroDecoder:
    """The decode-step file in TFLite Micro (or LiteRT), keeping its int8 cache.

    `decoder(token_ids (1, T), position) -> logits float32 (1, T, vocab)` reads the T tokens one step each.

    `step_ms` lists each step's time (milliseconds: setting the inputs, invoking, reading the outputs).

    Args:
        model: the `.tflite` path or its bytes (`<name>_int8.tflite` of a decoder bundle).
        runtime: "micro" (the tflite-micro Python interpreter, default) or "litert".
        arena_size: TFLite Micro's arena in bytes (default 64 MiB).
    """

    def __init__(self, model, runtime: str = "micro", arena_size: int = 64 * 2**20):
        if isinstance(model, (bytes, bytearray)):
            flatbuffer = bytes(model)
        else:
            flatbuffer = read_input_file(model, "model", "bundle's <name>_int8.tflite file")
        litert = Interpreter(
            model_content=flatbuffer, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        litert.allocate_tensors()
        self.inputs, self.outputs = _io_details(litert)
        if runtime == "micro":
            from tflite_micro.python.tflite_micro import runtime as micro

            self.micro = micro.Interpreter.from_bytes(flatbuffer, arena_size=arena_size)
        elif runtime == "litert":
            self.micro, self.litert = None, litert
        else:
            raise invalid_argument("runtime", "'micro' or 'litert'", f"runtime={runtime!r}")
        self.cache_shape = tuple(int(n) for n in self.inputs["cache"]["shape"])
        self.step_ms = []
        self.reset()

    def reset(self) -> None:
        """Empties the cache: zeros (the int8 zero point), as a new sequence starts at position 0."""
        self.cache = np.full(self.cache_shape, self.inputs["cache"]["quantization"][1], np.int8)

    def step(self, token: int, position: int) -> np.ndarray:
        """The int8 logits `(1, 1, vocab)` after `token` at `position`; the cache then holds it."""
        arrays = {
            "token_ids": np.array([[token]], np.int32),
            "position": np.array([position], np.int32),
            "cache": self.cache,
        }
        start = time.perf_counter()
        if self.micro is not None:
            self.micro.reset()
            for index, name in enumerate(INPUTS):
                self.micro.set_input(arrays[name], index)
            self.micro.invoke()
            outputs = {name: self.micro.get_output(index) for index, name in enumerate(OUTPUTS)}
        else:
            for name in INPUTS:
                self.litert.set_tensor(self.inputs[name]["index"], arrays[name])
            self.litert.invoke()
            outputs = {name: self.litert.get_tensor(self.outputs[name]["index"]) for name in OUTPUTS}
        self.cache = outputs["cache"].astype(np.int8)
        self.step_ms.append((time.perf_counter() - start) * 1e3)
        return outputs["logits"]

    def __call__(self, token_ids: np.ndarray, position: int) -> np.ndarray:
        scale, zero = self.outputs["logits"]["quantization"]
        logits = [self.step(int(token), position + index) for index, token in enumerate(token_ids[0])]
        return (np.concatenate(logits, axis=1).astype(np.float32) - zero) * scale


def generate_micro(
    model, prompt_ids, max_new_tokens: int, sampler="greedy", deterministic: bool = False, runtime: str = "micro"
) -> np.ndarray:
    """`SparseCausalLM.generate` in TFLite Micro's Python interpreter, from a decoder bundle's `.tflite` file.

    Args:
        model: the bundle's `<name>_int8.tflite` (a path or its bytes).
        prompt_ids: int `(length,)` or `(1, length)`, read one token per step.
        max_new_tokens, sampler, deterministic: as `SparseCausalLM.generate`.
        runtime: "micro" (default) or "litert" (the same file in LiteRT).

    Returns:
        int32 `(1, length + max_new_tokens)`: the prompt followed by the new tokens.

    Raises:
        ValueError: naming the argument (several prompts, ids out of range, max_new_tokens < 1, ...).
    """
    decoder = MicroDecoder(model, runtime)
    prompt = one_prompt(prompt_ids, int(decoder.outputs["logits"]["shape"][-1]))
    max_new_tokens = positive_int("max_new_tokens", max_new_tokens)
    return decode(decoder, prompt, max_new_tokens, drawer_of(sampler, boolean("deterministic", deterministic)), 1)


def _io_details(litert: Interpreter) -> tuple[dict, dict]:
    """The file's input and output details by name, checked to be a decode step in INPUTS and OUTPUTS order."""
    inputs = litert.get_input_details()
    outputs = litert.get_output_details()
    names = [detail["name"].removeprefix("serving_default_").removesuffix(":0") for detail in inputs]
    ranks = [len(detail["shape"]) for detail in outputs]
    if names != list(INPUTS) or ranks != [6, 3]:
        raise invalid_argument(
            "model", "a decode step written by to_micro for a SparseCausalLM", f"inputs {names}, output ranks {ranks}"
        )
    return dict(zip(INPUTS, inputs, strict=True)), dict(zip(OUTPUTS, outputs, strict=True))


def decode_step_file(lm: SparseCausalLM, data: np.ndarray) -> bytes:
    """The int8 decode step of `lm` (bounded cache) as one subgraph, calibrated on `data` (int `(N, L)`)."""
    layout = lm.cache_layout("bounded")
    cache_shape = (1, lm.num_layers, 2, layout.length, lm.num_heads, lm.key_dim)
    specs = (
        tf.TensorSpec((1, 1), tf.int32, name="token_ids"),
        tf.TensorSpec((1,), tf.int32, name="position"),
        tf.TensorSpec(cache_shape, tf.float32, name="cache"),
    )

    def step(token_ids, position, cache):
        logits, cache = lm.call_with_cache(token_ids, cache, position[0], True)
        return {"cache": cache, "logits": logits}  # flattened in key order: OUTPUTS

    function = frozen_function(tf.function(step, input_signature=specs), specs)

    def representative_dataset():
        for _, inputs in calibration_inputs(lm, data, "bounded", layout.length, 1):
            yield [inputs[name] for name in INPUTS]

    try:
        with quiet_converter():  # from_concrete_functions: absl's warning that a trackable_obj is missing
            converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
            MODES["int8"].configure(converter, representative_dataset, False, float_inputs=True, float_outputs=False)
            return converter.convert()
    except Exception as error:  # the converter's errors list the ops in their text
        graph_nodes = nodes_by_op([function.get_concrete_function().graph])
        layer_names = [layer.name for layer in lm._flatten_layers()]
        raise explain_conversion_failure(str(error), graph_nodes, layer_names) from None


def to_micro_decoder(
    lm: SparseCausalLM,
    folder,
    representative_data,
    name: str = "decoder",
    verification_prompt=None,
    verification_steps: int | None = None,
    max_relative_error: float | None = None,
    min_argmax_agreement: float | None = None,
    max_quantization_steps: int | None = None,
    overwrite: bool = False,
) -> MicroDecoderBundle:
    """Writes the int8 decode step of `lm` as a TFLite Micro bundle in `folder`, after verifying it token by token.

    `converters.to_micro(lm, folder, ...)` calls this (its `verification_data` is the `verification_prompt`).
    The files are `to_micro`'s (`<name>_int8.tflite`, `<name>_model_data.cc/.h`, `<name>_op_resolver.h`,
    `<name>_model_settings.h`, the manifest), written all or nothing, plus `README.md` with a C++ decode
    loop (token -> logits -> argmax -> next token, the cache carried between calls, the position counter).
    The settings name the step's tensors (`kTokenIdsInput`, `kPositionInput`, `kCacheInput`, `kCacheOutput`,
    `kLogitsOutput`), `kVocabSize`, `kCacheBytes`, `kCacheZeroPoint` and `kTensorArenaSize` (the smallest arena
    that worked in the tflite-micro Python interpreter, times 1.1).

    Before writing, Keras generates greedily from `verification_prompt` for `verification_steps` tokens (by
    default past the ring buffer twice over); the file reads the same tokens one step each in LiteRT and in
    TFLite Micro, and in both every step's next-token logits must be within `max_relative_error` of Keras's
    (default `INT8_MAX_RELATIVE_ERROR`, 0.25) and give Keras's token at `min_argmax_agreement` of the steps
    (default 0.99). Ops TFLite Micro lacks are rewritten into exact forms it has (`converters.micro_forms`).

    Args:
        lm: a built `SparseCausalLM` whose pattern has a bounded cache (a causal `SlidingWindow` with global
            tokens within `window_size // 2`): TFLite Micro has fixed shapes, and a full cache grows.
        folder: the bundle's folder (new, empty, or an earlier bundle with `overwrite`).
        representative_data: int token ids `(N, L)` of typical text: up to 200 decode steps of Keras reading
            it calibrate the int8 ranges. Cover the positions you will decode (the position's sinusoid is
            quantized with the calibrated range).
        name: a C identifier prefixing the files and C names (default "decoder").
        verification_prompt: int ids `(length,)`; default the first 8 tokens of `representative_data`.
        verification_steps: tokens generated in verification (default: twice the ring buffer plus 16, at most 256).
        max_relative_error, min_argmax_agreement: the bounds above.
        max_quantization_steps: also bound the int8 logits' difference between TFLite Micro and LiteRT (default
            None: reported).
        overwrite: replace an earlier bundle in `folder`.

    Raises:
        ValueError: naming the argument (a model that is not a built SparseCausalLM, a pattern that cannot be
            bounded, missing or malformed representative_data, ...), before any work.
        OSError: `folder` cannot be written (see `to_micro`).
        ConversionError: an op TFLite Micro has no kernel or exact form for.
        VerificationError: LiteRT or TFLite Micro disagree with Keras beyond the bounds; nothing was written.
    """
    if not isinstance(lm, SparseCausalLM) or not lm.built:
        raise invalid_argument("model", "a built keras_sparse.models.SparseCausalLM (call it once)", f"{lm!r}")
    if low_precision(lm):
        raise invalid_argument(
            "model",
            "a model computing in float32 (the decode step is verified token by token against it). Fix: build it "
            "under keras.mixed_precision.set_global_policy('float32') and copy the weights with set_weights",
            f"dtype policy {lm.dtype_policy.name}",
        )
    reason = kernels.unbounded_reason(lm.pattern)
    if reason is not None:
        raise invalid_argument(
            "model",
            "a SparseCausalLM with a bounded (ring-buffer) cache: TFLite Micro has fixed shapes, and a full cache "
            "grows with the position. Fix: train with a causal SlidingWindow(window_size, global_tokens) whose "
            "global tokens lie within window_size // 2, or export for LiteRT with "
            "to_tflite_decoder(lm, path, cache='full', max_length=...)",
            f"pattern={lm.pattern!r} ({reason})",
        )
    name = c_sources.c_identifier(name)
    overwrite = boolean("overwrite", overwrite)
    data = np.asarray(representative_data) if representative_data is not None else None
    if data is None or data.ndim != 2 or data.dtype.kind not in "iu":
        shape = None if data is None else f"shape {data.shape}, dtype {data.dtype}"
        raise invalid_argument("representative_data", "int token ids shaped (N, length) for int8 calibration", shape)
    prompt_array(data, lm.vocab_size, "representative_data")
    given = data[0, :8] if verification_prompt is None else verification_prompt
    prompt = one_prompt(given, lm.vocab_size, "verification_prompt")
    layout = lm.cache_layout("bounded")
    steps = optional_positive_int("verification_steps", verification_steps) or min(2 * layout.length + 16, 256)
    max_relative_error = number(
        "max_relative_error", INT8_MAX_RELATIVE_ERROR if max_relative_error is None else max_relative_error, at_least=0
    )
    if min_argmax_agreement is None:
        min_argmax_agreement = MODES["int8"].min_argmax_agreement
    agreement = number("min_argmax_agreement", min_argmax_agreement, at_least=0, at_most=1)
    if max_quantization_steps is not None:
        max_quantization_steps = non_negative_int("max_quantization_steps", max_quantization_steps)
    names = [f"{name}_int8.tflite", f"{name}_model_data.cc", f"{name}_model_data.h", f"{name}_op_resolver.h"]
    names += [f"{name}_model_settings.h", "README.md"]
    folder = check_output_folder(folder, overwrite, file_names=names)

    flatbuffer, rewritten = micro_forms(decode_step_file(lm, data))
    check_micro_ops(flatbuffer)
    litert = MicroDecoder(flatbuffer, "litert")
    ops = tuple(sorted({op["op_name"] for op in litert.litert._get_ops_details()}))
    resolver = c_sources.op_resolver_header(name, list(ops))  # before the slow arena search: every op needs a method
    cache_in, cache_out = litert.inputs["cache"]["quantization"], litert.outputs["cache"]["quantization"]
    if cache_in != cache_out:  # the converter gives the cache's concatenation and gather one scale
        raise ConversionError(
            f"The converter quantized the cache input {cache_in} and output {cache_out} differently: a C++ caller "
            "could not carry it between steps by copying bytes. Nothing was written."
        )

    expected, runs = [], {"LiteRT": [], "TFLite Micro": []}
    tokens = decode(
        lm.decoder(1, "bounded"), prompt, steps, drawer_of("greedy", False), 1, on_token=_recorder(expected)
    )
    micro = MicroDecoder(flatbuffer)
    for runtime, decoder in (("LiteRT", litert), ("TFLite Micro", micro)):
        try:
            decode(
                decoder, prompt, steps, teacher_forcing(tokens, prompt.shape[1]), 1, on_token=_recorder(runs[runtime])
            )
        except (RuntimeError, ValueError) as error:
            raise explain_runtime_failure(str(error), runtime) from None
    comparisons = {
        runtime: verify(actual, expected, f"The int8 decode step in {runtime}", max_relative_error, agreement)
        for runtime, actual in runs.items()
    }
    scale = litert.outputs["logits"]["quantization"][0]
    difference = np.abs(np.array(runs["TFLite Micro"]) - np.array(runs["LiteRT"])).max()
    worst = int(np.round(difference / scale))
    if max_quantization_steps is not None and worst > max_quantization_steps:
        raise VerificationError(
            f"TFLite Micro and LiteRT differ by {worst} quantization steps on the logits (allowed: "
            f"max_quantization_steps={max_quantization_steps}); nothing was written."
        )

    probe = [np.zeros((1, 1), np.int32), np.zeros((1,), np.int32), litert.cache]
    measured = smallest_arena(flatbuffer, probe)
    arena = -(-int(measured * ARENA_MARGIN) // 16) * 16
    settings = {
        "kTokenIdsInput": INPUTS.index("token_ids"),
        "kPositionInput": INPUTS.index("position"),
        "kCacheInput": INPUTS.index("cache"),
        "kCacheOutput": OUTPUTS.index("cache"),
        "kLogitsOutput": OUTPUTS.index("logits"),
        "kVocabSize": lm.vocab_size,
        "kCacheBytes": int(np.prod(litert.cache_shape)),
        "kCacheZeroPoint": int(cache_in[1]),
        **micro_settings(litert.litert, arena),
    }
    bundle = MicroDecoderBundle(
        folder,
        (*names, MANIFEST),
        len(flatbuffer),
        ops,
        rewritten,
        litert.cache_shape,
        arena,
        measured,
        prompt.shape[1] + steps,
        comparisons["LiteRT"].max_relative_error,
        comparisons["LiteRT"].argmax_agreement,
        comparisons["TFLite Micro"].max_relative_error,
        comparisons["TFLite Micro"].argmax_agreement,
        worst,
        statistics.median(micro.step_ms),
    )
    contents = {
        names[0]: flatbuffer,
        names[1]: c_sources.model_data_source(name, flatbuffer).encode(),
        names[2]: c_sources.model_data_header(name).encode(),
        names[3]: resolver.encode(),
        names[4]: c_sources.model_settings_header(name, settings).encode(),
        names[5]: readme(name, bundle).encode(),
    }
    write_folder_atomically(folder, contents, overwrite=overwrite)
    return bundle


def _recorder(steps: list):
    """An `on_token` callback appending each step's next-token logits (batch 1) as a one-output sample."""
    return lambda position, logits: steps.append([np.asarray(logits, np.float32)])


README = """# {name}: a keras-sparse causal language model's decode step for TFLite Micro

Written by `converters.to_micro` (keras-sparse) from a `SparseCausalLM` with a ring-buffer cache: one call reads
one token at its position and returns the next-token logits and the updated cache. The cache's size does not
depend on the position, so the loop below runs in `kTensorArenaSize` bytes plus the model array however long
it generates, up to position 16,777,215 (the step computes the ring slot in float32, exact below 2^24; the
loop refuses longer runs).

| file | what |
|---|---|
| `{name}_int8.tflite` | the int8 decode step (one subgraph), verified against Keras in LiteRT and TFLite Micro |
| `{name}_model_data.cc/.h` | the file as an `alignas(16)` C array `g_{name}_model_data` |
| `{name}_op_resolver.h` | `Register{Name}Ops`: a `MicroMutableOpResolver<{op_count}>` registering exactly its ops |
| `{name}_model_settings.h` | tensor indices, `kVocabSize`, `kCacheBytes`, `kCacheZeroPoint`, `kTensorArenaSize` |

Measured when it was written: {size} bytes of model, smallest arena {measured} bytes (`kTensorArenaSize` =
{arena}), int8 cache {cache_shape} ({cache_bytes} bytes). Over a greedy run of {steps} positions, TFLite Micro
gave Keras's next token at {agreement:.1%} of the steps (logits within {error:.3f} of Keras's largest).

Inputs: `token_ids` int32 `(1, 1)`, `position` int32 `(1,)` (0 for the first token; exact up to 16,777,215),
`cache` int8 `{cache_shape}`. Outputs: the new `cache` (int8, with the input's scale and zero point: copy its
bytes back into the input) and `logits` int8 `(1, 1, kVocabSize)` (the argmax of the int8 values is the
greedy token). An empty cache is `kCacheZeroPoint` everywhere. A prompt is read one token per call; the
logits of its last token give the first new token.

```cpp
#include <cstdint>
#include <cstring>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "{name}_model_data.h"
#include "{name}_model_settings.h"
#include "{name}_op_resolver.h"

alignas(16) static uint8_t tensor_arena[kTensorArenaSize];

constexpr int32_t kMaxPositions = 16777216;  // positions are exact below 2^24

// Greedy generation: the prompt (at least one token), then `count` new tokens written to `out`. Returns false
// on an error. The cache lives in the interpreter: to resume generation later, keep the interpreter.
bool Generate(const int32_t* prompt, int prompt_length, int32_t* out, int count) {{
  if (prompt_length < 1 || count < 0 || prompt_length - 1 + count > kMaxPositions) return false;
  const tflite::Model* model = tflite::GetModel(g_{name}_model_data);
  {Name}OpResolver resolver;
  if (Register{Name}Ops(resolver) != kTfLiteOk) return false;
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) return false;

  TfLiteTensor* token = interpreter.input(kTokenIdsInput);
  TfLiteTensor* position = interpreter.input(kPositionInput);
  TfLiteTensor* cache = interpreter.input(kCacheInput);
  std::memset(cache->data.int8, kCacheZeroPoint, kCacheBytes);  // an empty cache

  int32_t next = prompt[0];
  for (int32_t step = 0; step < prompt_length - 1 + count; ++step) {{
    token->data.i32[0] = next;
    position->data.i32[0] = step;  // the ring buffer keeps the last positions whatever `step` is
    if (interpreter.Invoke() != kTfLiteOk) return false;
    if (step + 1 < prompt_length) {{
      next = prompt[step + 1];  // still reading the prompt
    }} else {{
      const int8_t* logits = interpreter.output(kLogitsOutput)->data.int8;
      int32_t best = 0;
      for (int32_t id = 1; id < kVocabSize; ++id) {{
        if (logits[id] > logits[best]) best = id;
      }}
      next = best;
      out[step + 1 - prompt_length] = next;
    }}
    // Carry the cache, after reading the logits: an input's arena memory may be reused by the outputs.
    std::memmove(cache->data.int8, interpreter.output(kCacheOutput)->data.int8, kCacheBytes);
  }}
  return true;
}}
```

`converters.generate_micro("{name}_int8.tflite", prompt_ids, max_new_tokens)` runs the same loop in the
tflite-micro Python interpreter.
"""


def readme(name: str, bundle: MicroDecoderBundle) -> str:
    """The bundle's README.md: what the files are, what was measured, and a C++ greedy decode loop."""
    return README.format(
        name=name,
        Name=name.capitalize(),
        op_count=len(bundle.ops),
        size=bundle.size_bytes,
        measured=bundle.measured_arena_bytes,
        arena=bundle.arena_bytes,
        cache_shape=bundle.cache_shape,
        cache_bytes=int(np.prod(bundle.cache_shape)),
        steps=bundle.steps,
        agreement=bundle.micro_argmax_agreement,
        error=bundle.micro_max_relative_error,
    )
