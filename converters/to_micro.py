"""`to_micro`: a Keras model to a verified TFLite Micro bundle (int8 `.tflite`, C array, op resolver, settings)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from converters import c_sources
from converters.errors import ConversionError, VerificationError
from converters.litert import quantized_inputs
from converters.representative_data import as_samples
from converters.to_tflite import ConversionResult, to_tflite
from keras_sparse.files import write_atomically
from keras_sparse.rewrites import with_max_query_blocks

MICRO_FIXES = {
    "SELECT": "keras.layers.Embedding emits it (negative-id wrapping): use keras_sparse.layers.TokenEmbedding",
    "TOPK_V2": "LSH attention sorts with it: use a static pattern (SlidingWindow, BigBird, ...)",
    "GELU": "use activation='relu', or the tanh approximation",
}
"""Ops TFLite Micro lacks, and how to avoid them."""

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

    def report(self) -> str:
        return (
            f"{self.folder}: {', '.join(self.files)}\n  ops: {', '.join(self.ops)}\n"
            f"  arena: {self.measured_arena_bytes} bytes measured, kTensorArenaSize = {self.arena_bytes}\n"
            f"  TFLite Micro vs LiteRT: at most {self.max_quantization_steps} quantization step(s) apart\n"
            + self.tflite.report()
        )


def _micro_interpreter(flatbuffer: bytes, arena: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(flatbuffer, arena_size=arena)


_PROBE = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
interpreter = runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
inputs = np.load(sys.argv[3])
for index in range(len(inputs.files)):
    interpreter.set_input(inputs[f"arr_{index}"], index)
interpreter.invoke()
"""


def smallest_arena(flatbuffer: bytes, probe: list[np.ndarray], upper: int = 64 * 2**20) -> int:
    """The smallest arena (bytes, to 16) in which the model allocates and invokes, by binary search.

    Each try runs in its own process: TFLite Micro may crash, not just fail, in a too-small arena.
    """
    with tempfile.TemporaryDirectory() as scratch:
        model_path, inputs_path = os.path.join(scratch, "model.tflite"), os.path.join(scratch, "inputs.npz")
        pathlib.Path(model_path).write_bytes(flatbuffer)
        np.savez(inputs_path, *probe)

        def works(size: int) -> bool:
            command = [sys.executable, "-c", _PROBE, model_path, str(size), inputs_path]
            return subprocess.run(command, capture_output=True).returncode == 0

        if not works(upper):
            raise ConversionError(f"The model does not run in TFLite Micro even with a {upper >> 20} MiB arena.")
        low, high = 16 * 1024, 16 * 1024
        while not works(high):  # exponential search first: a few tries find the right power of two
            low, high = high, high * 2
        low = 0 if low == high else low
        while high - low > 16:
            middle = (low + high) // 32 * 16
            low, high = (low, middle) if works(middle) else (middle, high)
        return high


@contextlib.contextmanager
def _captured_stderr():
    """Captures what C code writes to file descriptor 2 (TFLite Micro logs missing ops there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        text = []
        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text.append(capture.read().decode(errors="replace"))


def _check_micro_ops(flatbuffer: bytes) -> None:
    with _captured_stderr() as log:
        try:
            _micro_interpreter(flatbuffer, 64 * 2**20)
            return
        except RuntimeError:
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
    max_quantization_steps: int = 8,
    max_query_blocks: int | None = None,
) -> MicroBundle:
    """Writes a TFLite Micro bundle for `model` into `folder`, after verifying it.

    Files: `<name>_int8.tflite` (verified against Keras by `to_tflite`), `<name>_model_data.cc/.h`
    (an `alignas(16)` array and its size), `<name>_op_resolver.h` (a `MicroMutableOpResolver<N>`
    registering exactly the ops used) and `<name>_model_settings.h` (input and output shapes and
    quantization, and `kTensorArenaSize`: the smallest arena that worked in the tflite-micro Python
    interpreter, times 1.1). TFLite Micro's outputs must be within `max_quantization_steps` (default 8)
    of LiteRT's: their int8 kernels round differently, and the differences add up through a network.
    Measured on random inputs: a Dense layer 1 step, Keras's LayerNormalization (MEAN, SQUARED_DIFFERENCE,
    RSQRT) 2, Keras's own MultiHeadAttention 2, SparseMultiHeadAttention 3 (4 with key padding), one
    sparse Transformer encoder block 3 to 5; a trained one-layer ListOps classifier 6.
    The bundle reports the difference it measured.
    With `max_query_blocks`, sparse attention layers compute at most that many query blocks per step in
    the file (`keras_sparse.rewrites.with_max_query_blocks`; the same numbers, fewer tensors live at
    once, but each step gathers its own queries). Measure both: with one softmax per row, at L=512
    (BigBird on blocks of 32, d_model 128) the arena fell from 1319 KiB in one step to 1083 with 4; for
    the ListOps main job's pruned model (hidden 64) it stayed at 381 KiB (and once grew).
    None (default) keeps the model's steps.
    `max_relative_error` and `min_argmax_agreement` override the int8 bounds of `to_tflite`.

    Example:

    >>> import keras, numpy as np, tempfile
    >>> from converters import to_micro
    >>> x = keras.Input((16, 4))
    >>> model = keras.Model(x, keras.layers.Dense(2)(x))
    >>> data = np.random.default_rng(0).normal(size=(32, 16, 4)).astype("float32")
    >>> bundle = to_micro(model, tempfile.mkdtemp(), data, name="tiny")
    >>> bundle.ops, bundle.max_quantization_steps <= 1
    (('FULLY_CONNECTED',), True)
    """
    name = c_sources.c_identifier(name)
    folder = pathlib.Path(folder)
    names = [
        f"{name}_int8.tflite",
        f"{name}_model_data.cc",
        f"{name}_model_data.h",
        f"{name}_op_resolver.h",
        f"{name}_model_settings.h",
    ]
    existing = [n for n in names if (folder / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{folder} already holds {', '.join(existing)}. Pass overwrite=True to replace them.")
    scratch = folder / f".{name}_unverified.tflite"
    if max_query_blocks is not None:  # a functional or Sequential model: a subclassed one cannot be copied
        model = with_max_query_blocks(model, max_query_blocks)
    result = to_tflite(
        model,
        scratch,
        quantization="int8",
        representative_data=representative_data,
        verification_data=verification_data,
        seq_len=seq_len,
        max_relative_error=max_relative_error,
        min_argmax_agreement=min_argmax_agreement,
        overwrite=True,
    )
    flatbuffer = scratch.read_bytes()
    scratch.unlink()
    _check_micro_ops(flatbuffer)

    litert = Interpreter(model_content=flatbuffer)
    litert.allocate_tensors()
    ranks = [len(d["shape"]) for d in litert.get_input_details()]
    samples = as_samples(verification_data if verification_data is not None else representative_data, ranks, 16)
    worst = 0
    micro = _micro_interpreter(flatbuffer, 64 * 2**20)
    for sample in samples:
        inputs = quantized_inputs(litert, sample)
        micro.reset()
        for index, array in enumerate(inputs):
            micro.set_input(array, index)
            litert.set_tensor(litert.get_input_details()[index]["index"], array)
        micro.invoke()
        litert.invoke()
        expected = litert.get_tensor(litert.get_output_details()[0]["index"]).astype(np.int32)
        worst = max(worst, int(np.abs(micro.get_output(0).astype(np.int32) - expected).max()))
    if worst > max_quantization_steps:
        raise VerificationError(
            f"TFLite Micro and LiteRT differ by {worst} quantization steps on the outputs (allowed: "
            f"max_quantization_steps={max_quantization_steps}); nothing was written."
        )

    measured = smallest_arena(flatbuffer, quantized_inputs(litert, samples[0]))
    arena = -(-int(measured * ARENA_MARGIN) // 16) * 16
    inp, out = litert.get_input_details()[0], litert.get_output_details()[0]
    settings = {f"kInputDim{i}": int(d) for i, d in enumerate(inp["shape"])}
    settings.update(
        kInputScale=float(inp["quantization"][0]),
        kInputZeroPoint=int(inp["quantization"][1]),
        kOutputSize=int(np.prod(out["shape"])),
        kOutputScale=float(out["quantization"][0]),
        kOutputZeroPoint=int(out["quantization"][1]),
        kTensorArenaSize=arena,
    )
    ops = list(result.ops)
    contents = {
        names[0]: flatbuffer,
        names[1]: c_sources.model_data_source(name, flatbuffer).encode(),
        names[2]: c_sources.model_data_header(name).encode(),
        names[3]: c_sources.op_resolver_header(name, ops).encode(),
        names[4]: c_sources.model_settings_header(name, settings).encode(),
    }
    for file_name, data in contents.items():
        write_atomically(folder / file_name, data, overwrite=True)  # checked above: absent, or overwrite asked
    final = dataclasses.replace(result, path=folder / names[0])
    return MicroBundle(folder, tuple(names), arena, measured, tuple(ops), worst, final)
