"""Decoding: per-token latency and peak memory against position, ring-buffer decoder against a full-cache dense one.

    .venv/bin/python benchmarks/decoding.py                 # the tables in docs/decoding.md (about 15 minutes)
    .venv/bin/python benchmarks/decoding.py --positions 1024 4096 --runtimes keras litert-float32
    .venv/bin/python benchmarks/decoding.py --int8-vs-float32 --positions 4096   # one process, alternating files

The model: `SparseCausalLM`, vocabulary 256 (bytes), 2 layers, d_model 128, 4 heads, feed-forward 512. The
ring-buffer decoder's pattern is `SlidingWindow(257, global_tokens=(0, 1, 2, 3))`: 4 sink slots and 129 window
slots per layer. The dense decoder has the same sizes with `Dense()` and a full cache holding the position
plus the timed steps (as keras-hub's caches hold `max_length`). Weights are random (a step's cost does not
depend on them). At position p the decoder starts from a cache of zeros and decodes `--steps` tokens at
p, p + 1, ...; the median step is reported. LiteRT files are written and verified by
`converters.to_tflite_decoder` (int8 calibrated on random bytes). Each (runtime, decoder) runs in its own
process, positions in ascending order, so the peak RSS after a position (VmHWM, which includes TensorFlow's
~560 MiB) is what decoding up to it took; times are medians over rounds that interleave the positions. The
machine is shared: read the ratio across positions in one row, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

VOCAB, LAYERS, HIDDEN, HEADS, FFN = 256, 2, 128, 4, 512
WINDOW, SINKS = 257, (0, 1, 2, 3)
RUNTIMES = ("keras", "litert-float32", "litert-int8")
DECODERS = ("ring", "dense")
PREFILL = 32
WARM_UP = 3


def language_model(decoder: str):
    import keras

    import keras_sparse as ks

    keras.utils.set_random_seed(0)
    pattern = ks.patterns.SlidingWindow(WINDOW, global_tokens=SINKS) if decoder == "ring" else ks.patterns.Dense()
    lm = ks.models.SparseCausalLM(VOCAB, LAYERS, HIDDEN, HEADS, FFN, pattern=pattern)
    lm(np.zeros((1, 64), "int32"))
    return lm


def cache_length(decoder: str, position: int, steps: int) -> int:
    return len(SINKS) + WINDOW // 2 + 1 if decoder == "ring" else position + steps + WARM_UP


def convert(decoder: str, mode: str, position: int, steps: int, folder: str) -> str:
    """Writes the decoder's verified file (the dense one's cache sized for `position`)."""
    import converters

    lm = language_model(decoder)
    path = f"{folder}/{decoder}_{mode}_{position}.tflite"
    options = (
        dict(cache="bounded")
        if decoder == "ring"
        else dict(cache="full", max_length=cache_length(decoder, position, steps))
    )
    data = np.random.default_rng(1).integers(0, VOCAB, size=(2, 96))
    result = converters.to_tflite_decoder(
        lm,
        path,
        quantization=mode,
        representative_data=data,
        prefill_length=PREFILL,
        verification_steps=40,
        min_argmax_agreement=0.0 if mode == "int8" else None,
        **options,
    )
    print(f"  {result.report()}", file=sys.stderr)
    return path


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not carried over from the parent by exec)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def measure(runtime: str, decoder: str, positions: list[int], steps: int, paths: list[str], rounds: int) -> list[dict]:
    """One process per (runtime, decoder): for each position (ascending) the median step time from it on, the
    median over `rounds` interleaved rounds, and the process's peak RSS once that position was first decoded."""
    lm = language_model(decoder) if runtime == "keras" else None

    def stepper(position: int, path: str):
        if lm is not None:
            length = cache_length(decoder, position, steps)
            return lm.decoder(1, "bounded" if decoder == "ring" else "full", length)
        from converters.tflite_decoder import LiteRTDecoder

        return LiteRTDecoder(path)

    token = np.array([[65]], np.int32)

    def median_step(step, position: int) -> float:
        if hasattr(step, "reset"):
            step.reset()
        times = []
        for index in range(steps + WARM_UP):
            start = time.perf_counter()
            step(token, position + index)
            if index >= WARM_UP:  # tracing, allocation
                times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    timings = {position: [] for position in positions}
    peaks, steppers = {}, {}
    for _ in range(rounds):
        for position, path in zip(positions, paths, strict=True):
            if position not in steppers:  # made in ascending order: the peak so far is this position's
                steppers[position] = stepper(position, path)
                timings[position].append(median_step(steppers[position], position))
                peaks[position] = peak_rss_mib()
            else:
                timings[position].append(median_step(steppers[position], position))
    return [
        {
            "runtime": runtime,
            "decoder": decoder,
            "position": position,
            "ms": statistics.median(timings[position]),
            "peak_rss_mib": peaks[position],
            "cache_mib": LAYERS * 2 * cache_length(decoder, position, steps) * HIDDEN * 4 / 2**20,
        }
        for position in positions
    ]


def int8_against_float32(folder: str, position: int, rounds: int = 30, steps: int = 50) -> dict:
    """The ring buffer's LiteRT decode step, int8 and float32 files side by side in one process: medians of
    `rounds` rounds that alternate the two files, each the median of `steps` steps from `position`."""
    from converters.tflite_decoder import LiteRTDecoder

    decoders = {mode: LiteRTDecoder(convert("ring", mode, position, steps, folder)) for mode in ("float32", "int8")}
    token, times = np.array([[65]], np.int32), {mode: [] for mode in decoders}
    for _ in range(rounds):
        for mode, decoder in decoders.items():
            steps_ms = []
            for index in range(steps):
                start = time.perf_counter()
                decoder(token, position + index)
                steps_ms.append((time.perf_counter() - start) * 1e3)
            times[mode].append(statistics.median(steps_ms))
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    return {**medians, "int8 / float32": medians["int8"] / medians["float32"]}


def table(rows: list[dict], positions: list[int]) -> str:
    lines = [
        "| runtime | decoder | " + " | ".join(f"{p:,}" for p in positions) + " | last / first |",
        "|---|---|" + "---|" * (len(positions) + 1),
    ]
    for runtime in RUNTIMES:
        for decoder in DECODERS:
            found = {r["position"]: r for r in rows if r["runtime"] == runtime and r["decoder"] == decoder}
            if not found:
                continue
            cells = [
                f"{found[p]['ms']:.2f} ms, {found[p]['peak_rss_mib']:.0f} MiB ({found[p]['cache_mib']:.2f})"
                if p in found
                else "-"
                for p in positions
            ]
            ratio = ""
            if positions[0] in found and positions[-1] in found:
                ratio = f"{found[positions[-1]]['ms'] / found[positions[0]]['ms']:.2f}x"
            lines.append(f"| {runtime} | {decoder} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument("--decoders", nargs="+", choices=DECODERS, default=list(DECODERS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", help="also write the rows as JSON here")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--int8-vs-float32", action="store_true", help="only the ring's int8 and float32 side by side")
    parser.add_argument("--one", nargs=3, metavar=("RUNTIME", "DECODER", "PATHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    positions = sorted(args.positions)
    if args.one:
        runtime, decoder, paths = args.one
        rows = measure(runtime, decoder, positions, args.steps, paths.split(","), args.rounds)
        print(json.dumps(rows))
        return
    if args.int8_vs_float32:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(int8_against_float32(folder, positions[0])))
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for runtime in args.runtimes:
            for decoder in args.decoders:
                paths = ["none"] * len(positions)
                if runtime != "keras":
                    mode = runtime.removeprefix("litert-")
                    if decoder == "ring":  # one file serves every position
                        paths = [convert(decoder, mode, positions[0], args.steps, folder)] * len(positions)
                    else:
                        paths = [convert(decoder, mode, p, args.steps, folder) for p in positions]
                command = [sys.executable, __file__, "--steps", str(args.steps), "--rounds", str(args.rounds)]
                command += ["--positions", *map(str, positions), "--one", runtime, decoder, ",".join(paths)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{runtime} {decoder}: failed: {done.stderr.strip().splitlines()[-1:]}")
                    continue
                rows += json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps(rows[-len(positions) :]), file=sys.stderr)
    print("Per-token latency (median), peak RSS of the process (cache MiB), by position:\n")
    print(table(rows, positions))
    if args.out:
        with open(args.out, "w") as file:
            json.dump(rows, file, indent=1)


if __name__ == "__main__":
    main()
