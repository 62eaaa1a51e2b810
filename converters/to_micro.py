"""`to_micro`: a Keras model to a verified TFLite Micro bundle (int8 `.tflite`, C array, op resolver, settings)."""

from __future__ import annotations

import dataclasses
import io
import pathlib
import re
import struct
import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from converters import c_sources
from converters.converter_logs import captured_stderr
from converters.errors import ConversionError, VerificationError, explain_runtime_failure
from converters.litert import dequantized, output_order, quantized_inputs
from converters.micro_forms import micro_forms
from converters.to_tflite import ConversionResult, convert_verified
from converters.verification import verify
from keras_sparse.files import MANIFEST, check_output_folder, write_folder_atomically
from keras_sparse.models import SparseCausalLM
from keras_sparse.validation import boolean, invalid_argument, non_negative_int

if TYPE_CHECKING:
    from converters.micro_decoder import MicroDecoderBundle

MICRO_FIXES = {
    "SELECT": "a tf.where whose condition has fewer dimensions than its operands: broadcast the condition",
    "TOPK_V2": "LSH attention sorts with it: use a static pattern (SlidingWindow, BigBird, ...)",
    "GELU": "use activation='relu', or the tanh approximation",
}
"""Ops TFLite Micro lacks, and how to avoid them."""

MICRO_SAMPLES = 16
"""Verification samples TFLite Micro runs (its reference kernels are slow)."""

ARENA_MARGIN = 1.1
"""kTensorArenaSize is the smallest arena that worked, times this margin, rounded up to 16 bytes."""


@dataclasses.dataclass(frozen=True)
class MicroBundle:
    """The files written and what was measured."""

    folder: pathlib.Path
    files: tuple[str, ...]
    arena_bytes: int
    measured_arena_bytes: int
    ops: tuple[str, ...]
    max_quantization_steps: int
    tflite: ConversionResult
    micro_max_relative_error: float

    def report(self) -> str:
        return (
            f"{self.folder}: {', '.join(self.files)}\n  ops: {', '.join(self.ops)}\n"
            f"  arena: {self.measured_arena_bytes} bytes measured, kTensorArenaSize = {self.arena_bytes}\n"
            f"  TFLite Micro vs Keras on the first {min(MICRO_SAMPLES, self.tflite.samples)} of those inputs: max "
            f"relative error {self.micro_max_relative_error:.2e}; vs LiteRT: at most "
            f"{self.max_quantization_steps} quantization step(s) apart\n" + self.tflite.report()
        )


def _micro_interpreter(flatbuffer: bytes, arena: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(flatbuffer, arena_size=arena)


_PROBE = """
import io, struct, sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
(length,) = struct.unpack("<Q", sys.stdin.buffer.read(8))
arrays = np.load(io.BytesIO(sys.stdin.buffer.read(length)))
model, inputs = arrays["model"].tobytes(), [arrays[f"input_{i}"] for i in range(len(arrays.files) - 1)]
for line in sys.stdin.buffer:
    try:
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=int(line))
        for index, array in enumerate(inputs):
            interpreter.set_input(array, index)
        interpreter.invoke()
        print(1, flush=True)
    except Exception:
        print(0, flush=True)
"""


class _ArenaProbe:
    """Tries arena sizes in a TFLite Micro process fed through pipes (no file is written).

    A too-small arena may crash that process: the size then fails, and the next try starts a new one.
    """

    def __init__(self, flatbuffer: bytes, probe: list[np.ndarray]):
        buffer = io.BytesIO()
        np.savez(buffer, model=np.frombuffer(flatbuffer, np.uint8), **{f"input_{i}": a for i, a in enumerate(probe)})
        self.payload = struct.pack("<Q", len(buffer.getvalue())) + buffer.getvalue()
        self.process = None

    def works(self, size: int, fresh: bool = False) -> bool:
        """Whether the model allocates and invokes in `size` bytes; `fresh`: in a process of its own."""
        if fresh:
            self.close()
        try:
            if self.process is None:
                command = [sys.executable, "-c", _PROBE]
                self.process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                )
                self.process.stdin.write(self.payload)
            self.process.stdin.write(b"%d\n" % size)
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        except BrokenPipeError:
            answer = b""
        if not answer:
            self.close()
        return answer.strip() == b"1"

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.communicate()
            self.process = None


def smallest_arena(flatbuffer: bytes, probe: list[np.ndarray], upper: int = 64 * 2**20) -> int:
    """The smallest arena (bytes, to 16) in which the model allocates and invokes `probe`, by binary search.

    `probe` holds one array per input of the file, in its order, as the file takes them. The tries run in
    another process (TFLite Micro may crash, not just fail, in a too-small arena); the answer is then
    confirmed in fresh processes, since a too-small arena might also corrupt that process's memory
    without crashing it (if it is not confirmed, every try gets a process of its own).

    Raises:
        ConversionError: the model does not run even in an `upper`-byte arena.
    """
    arena = _ArenaProbe(flatbuffer, probe)
    try:
        if not arena.works(upper, fresh=True):
            raise ConversionError(f"The model does not run in TFLite Micro even with a {upper >> 20} MiB arena.")
        high = _search(arena.works)
        if arena.works(high, fresh=True) and not arena.works(high - 16, fresh=True):
            return high
        return _search(lambda size: arena.works(size, fresh=True))
    finally:
        arena.close()


def _search(works) -> int:
    """The smallest size (to 16) for which `works(size)`, assuming larger sizes work too."""
    low, high = 16 * 1024, 16 * 1024
    while not works(high):  # exponential search first: a few tries find the right power of two
        low, high = high, high * 2
    low = 0 if low == high else low
    while high - low > 16:
        middle = (low + high) // 32 * 16
        low, high = (low, middle) if works(middle) else (middle, high)
    return high


def check_micro_ops(flatbuffer: bytes) -> None:
    """Raises ConversionError naming the ops TFLite Micro has no kernel for, and how to avoid them."""
    with captured_stderr() as log:
        try:
            _micro_interpreter(flatbuffer, 64 * 2**20)
            return
        except (RuntimeError, ValueError):  # the runtime's refusals; its log names the ops
            pass
    missing = sorted(set(re.findall(r"Didn't find op for builtin opcode '(\w+)'", log[0])))
    fixes = [f"- {op}: {MICRO_FIXES.get(op, 'avoid the layer that emits it')}" for op in missing]
    raise ConversionError(
        f"TFLite Micro has no kernel for {', '.join(missing) or 'an op of this model'}; nothing was written.\n"
        + ("\n".join(fixes) or log[0].strip()[-300:])
    )


def to_micro(
    model,
    folder,
    representative_data,
    name: str = "model",
    verification_data=None,
    seq_len: int | None = None,
    max_relative_error: float | None = None,
    min_argmax_agreement: float | None = None,
    overwrite: bool = False,
    max_quantization_steps: int | None = None,
    max_query_blocks: int | None = None,
) -> MicroBundle | MicroDecoderBundle:
    """Writes a TFLite Micro bundle for `model` as the folder `folder`, after verifying it.

    A `keras_sparse.models.SparseCausalLM` becomes its int8 decode step, with a README holding a C++ decode
    loop (`converters.micro_decoder.to_micro_decoder`, which returns a `MicroDecoderBundle`): `representative_data`
    is then token ids `(N, L)`, `verification_data` the verification prompt, and `seq_len` and
    `max_query_blocks` must be None.

    Files: `<name>_int8.tflite` (verified against `model` as `to_tflite` verifies), `<name>_model_data.cc/.h`
    (an `alignas(16)` array and its size), `<name>_op_resolver.h` (a `MicroMutableOpResolver<N>`
    registering exactly the ops used, with TFLite Micro's own method names, `c_sources.RESOLVER_METHODS_FILE`),
    `<name>_model_settings.h` (input and output shapes and quantization, and `kTensorArenaSize`: the
    smallest arena that worked in the tflite-micro Python interpreter, times 1.1; a model with several
    inputs or outputs gets them numbered, `kInput0Dim0`, `kOutput1Scale`, ...) and
    `keras_sparse_manifest.json` (the files' SHA-256).

    The bundle is written all or nothing (`keras_sparse.files.write_folder_atomically`): it is built and
    read back beside `folder`, then takes its place in one step, so readers and a process killed midway
    see the old bundle or the new one. `folder` must be new, empty, or (with `overwrite`) hold an earlier
    bundle unchanged; a file of anyone else's in it, whatever its name, is never touched: the call is refused.

    Ops TFLite Micro lacks but has an exact form of (SELECT, int32 SELECT_V2 and FLOOR_MOD, 5-D STRIDED_SLICE) are
    rewritten first (`converters.micro_forms`): the bundle's `.tflite` is the rewritten file.
    TFLite Micro runs the file too, and its outputs must meet the same bounds against the Keras model as
    LiteRT's (`max_relative_error`, `min_argmax_agreement`). The two runtimes' int8 kernels round
    differently and the differences add up through a network, so the bundle also reports how many output
    quantization steps apart they were; `max_quantization_steps` (default None: reported, not required)
    bounds that too. Steps depend on the output scale: a classifier with small logits had both runtimes
    0.03-0.07 from Keras while 19 steps of 0.005 apart.
    With `max_query_blocks`, sparse attention layers compute at most that many query blocks per step in
    the file (`keras_sparse.rewrites.with_max_query_blocks`; the same numbers, fewer tensors live at
    once, but each step gathers its own queries). Measure both: with one softmax per row, at L=512
    (BigBird on blocks of 32, d_model 128) the arena fell from 1319 KiB in one step to 1083 with 4; for
    the ListOps main job's pruned model (hidden 64) it stayed at 381 KiB (and once grew).
    None (default) keeps the model's steps.
    `representative_data`, `verification_data`, `seq_len`, `max_relative_error` and `min_argmax_agreement`
    are those of `to_tflite` in int8.

    Raises:
        ValueError, TypeError: a bad argument or bad data, named (before the conversion starts).
        OSError: `folder` cannot be written (`keras_sparse.files.check_output_folder`): FileExistsError if it
            holds an earlier bundle and not `overwrite`, or anything else.
        ConversionError: an op without a builtin (or TFLite Micro) kernel, or a runtime cannot run the file.
        VerificationError: the file disagrees with the model, or TFLite Micro with LiteRT.

    Example:

    >>> import keras, numpy as np, tempfile, pathlib
    >>> from converters import to_micro
    >>> x = keras.Input((16, 4))
    >>> model = keras.Model(x, keras.layers.Dense(2)(x))
    >>> data = np.random.default_rng(0).normal(size=(32, 16, 4)).astype("float32")
    >>> bundle = to_micro(model, pathlib.Path(tempfile.mkdtemp()) / "tiny", data, name="tiny")
    >>> bundle.ops, bundle.max_quantization_steps <= 1
    (('FULLY_CONNECTED',), True)
    """
    if isinstance(model, SparseCausalLM):
        for argument, value in (("seq_len", seq_len), ("max_query_blocks", max_query_blocks)):
            if value is not None:
                raise invalid_argument(argument, "None for a SparseCausalLM (its decode step reads one token)", value)
        from converters.micro_decoder import to_micro_decoder  # which uses this module's arena search

        return to_micro_decoder(
            model,
            folder,
            representative_data,
            name,
            verification_data,
            max_relative_error=max_relative_error,
            min_argmax_agreement=min_argmax_agreement,
            max_quantization_steps=max_quantization_steps,
            overwrite=overwrite,
        )
    name = c_sources.c_identifier(name)
    overwrite = boolean("overwrite", overwrite)
    if max_quantization_steps is not None:
        max_quantization_steps = non_negative_int("max_quantization_steps", max_quantization_steps)
    names = [
        f"{name}_int8.tflite",
        f"{name}_model_data.cc",
        f"{name}_model_data.h",
        f"{name}_op_resolver.h",
        f"{name}_model_settings.h",
    ]
    folder = check_output_folder(folder, overwrite, file_names=names)
    verified = convert_verified(
        model,
        folder / names[0],
        "int8",
        representative_data,
        verification_data,
        seq_len,
        sparse_weights=False,  # TFLite Micro has no sparse kernels
        max_relative_error=max_relative_error,
        min_argmax_agreement=min_argmax_agreement,
        float_outputs=False,
        full_integer=True,
        max_query_blocks=max_query_blocks,
    )
    flatbuffer, _ = micro_forms(verified.flatbuffer)
    check_micro_ops(flatbuffer)
    litert = Interpreter(model_content=flatbuffer)
    litert.allocate_tensors()
    ops = sorted({op["op_name"] for op in litert._get_ops_details()} - {"DELEGATE"})  # after the rewrites
    resolver = c_sources.op_resolver_header(name, ops)  # before the slow arena search: every op needs a method

    input_names = [i.name for i in verified.inputs]
    samples = [quantized_inputs(litert, sample, input_names) for sample in verified.samples[:MICRO_SAMPLES]]
    micro_outputs, worst = _run_micro(flatbuffer, litert, samples)
    comparison = verify(
        micro_outputs,
        verified.expected[:MICRO_SAMPLES],
        "The TFLite Micro run of the int8 file",
        verified.max_relative_error,
        verified.min_argmax_agreement,
    )
    if max_quantization_steps is not None and worst > max_quantization_steps:
        raise VerificationError(
            f"TFLite Micro and LiteRT differ by {worst} quantization steps on the outputs (allowed: "
            f"max_quantization_steps={max_quantization_steps}); nothing was written."
        )

    measured = smallest_arena(flatbuffer, samples[0])
    arena = -(-int(measured * ARENA_MARGIN) // 16) * 16
    contents = {
        names[0]: flatbuffer,
        names[1]: c_sources.model_data_source(name, flatbuffer).encode(),
        names[2]: c_sources.model_data_header(name).encode(),
        names[3]: resolver.encode(),
        names[4]: c_sources.model_settings_header(name, micro_settings(litert, arena)).encode(),
    }
    write_folder_atomically(folder, contents, overwrite=overwrite)
    return MicroBundle(
        folder, (*names, MANIFEST), arena, measured, tuple(ops), worst, verified.result, comparison.max_relative_error
    )


def _run_micro(
    flatbuffer: bytes, litert: Interpreter, samples: list[list[np.ndarray]]
) -> tuple[list[list[np.ndarray]], int]:
    """TFLite Micro's outputs on `samples` (dequantized, in the Keras model's output order), and the largest
    difference in quantization steps between them and LiteRT's."""
    worst, outputs = 0, []
    order = output_order(litert)
    details = litert.get_output_details()
    micro = _micro_interpreter(flatbuffer, 64 * 2**20)
    for index, sample in enumerate(samples):
        try:
            micro.reset()
            for position, array in enumerate(sample):
                micro.set_input(array, position)
                litert.set_tensor(litert.get_input_details()[position]["index"], array)
            micro.invoke()
            litert.invoke()
        except (RuntimeError, ValueError) as error:
            raise explain_runtime_failure(
                f"{error} (on verification sample {index})", "TFLite Micro or LiteRT"
            ) from None
        for position, detail in enumerate(details):
            expected = litert.get_tensor(detail["index"]).astype(np.int32)
            worst = max(worst, int(np.abs(micro.get_output(position).astype(np.int32) - expected).max()))
        outputs.append([dequantized(details[k], micro.get_output(k)) for k in order])
    return outputs, worst


def micro_settings(litert: Interpreter, arena: int) -> dict:
    """The constants of `<name>_model_settings.h`: shapes and quantization of the inputs and outputs, and the arena."""
    inputs, outputs = litert.get_input_details(), litert.get_output_details()
    settings = {}
    for index, detail in enumerate(inputs):
        prefix = "kInput" if len(inputs) == 1 else f"kInput{index}"
        settings.update({f"{prefix}Dim{i}": int(d) for i, d in enumerate(detail["shape"])})
        settings.update(
            {f"{prefix}Scale": float(detail["quantization"][0]), f"{prefix}ZeroPoint": int(detail["quantization"][1])}
        )
    for index, detail in enumerate(outputs):
        prefix = "kOutput" if len(outputs) == 1 else f"kOutput{index}"
        settings.update({f"{prefix}Size": int(np.prod(detail["shape"]))})
        settings.update(
            {f"{prefix}Scale": float(detail["quantization"][0]), f"{prefix}ZeroPoint": int(detail["quantization"][1])}
        )
    settings["kTensorArenaSize"] = arena
    return settings
