"""Exported files: size, LiteRT latency and TFLite Micro arena, sparse encoder against its dense twin; per-op profiles.

    .venv/bin/python benchmarks/tflite.py                       # the speed table in docs/benchmarks.md
    .venv/bin/python benchmarks/tflite.py --lengths 256 512 --modes float32 int8-full --pattern bigbird32  # MCUs
    .venv/bin/python benchmarks/tflite.py --profile --lengths 1024 4096 --modes float32 int8 int8-full

The model: token embedding, one encoder block (attention, ReLU feed-forward, LayerNormalization), mean pool,
classifier; d_model 128, 4 heads. The dense twin is the same model with keras.layers.MultiHeadAttention, and
the sparse one is `ks.sparsify(dense, pattern)`: the same weights. Every file is converted and verified by
`converters.to_tflite` (its measured error is in the table). Each length runs in its own process, which
converts every file first and then times them all interleaved (one run of each file in turn, `--repeats`
rounds, medians), so the ratios between modes and between dense and sparse come from the same minutes of a
shared machine. The modes are `to_tflite`'s; `int8` keeps attention and layer normalization's variance in
float32 (its default), `int8-full` is `full_integer=True`, the file TFLite Micro runs. The TFLite Micro arena
is that of `converters.to_micro(..., max_query_blocks=MICRO_QUERY_BLOCKS)`: sparse attention in steps of at
most 4 query blocks (the other columns are of the unsplit file).

`--profile` prints, per length and mode, the sparse file's time per op kind (`converters.op_profile`: each op
timed alone on LiteRT, XNNPACK or builtin kernel as the whole file would get it).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

from common import interleaved_medians, reproducible

D_MODEL, HEADS, VOCAB, CLASSES = 128, 4, 32, 10
MODES = ("float32", "float16", "dynamic", "int8", "int8-full")
THREADS = (1, 2)
MICRO_MAX_LENGTH = 512
MICRO_MODES = ("float32", "int8-full")  # TFLite Micro runs neither float16 nor dynamic-range files (tried)
MICRO_QUERY_BLOCKS = 4


def pattern(name: str):
    """`bigbird64`: BigBird on blocks of 64 (3 window, 2 global, 3 random), as in benchmarks/attention.py; it
    covers every block below L=1024. `bigbird32`: blocks of 32 (3/1/1), sparse from L=256 on, for microcontrollers."""
    import keras_sparse as ks

    if name == "bigbird64":
        return ks.patterns.BigBird(64, num_sliding_window_blocks=3, num_global_blocks=2, num_random_blocks=3)
    return ks.patterns.BigBird(32, num_sliding_window_blocks=3, num_global_blocks=1, num_random_blocks=1)


def build(seq_len: int, variant: str, pattern_name: str):
    import keras

    import keras_sparse as ks

    reproducible(0)
    tokens = keras.Input((seq_len,), dtype="int32")
    x = ks.layers.TokenEmbedding(VOCAB, D_MODEL)(tokens)
    x = x + ks.layers.TokenEmbedding(seq_len, D_MODEL)(keras.ops.arange(seq_len)[None])
    x = keras.layers.LayerNormalization()(x + keras.layers.MultiHeadAttention(HEADS, D_MODEL // HEADS)(x, x))
    feed_forward = keras.layers.Dense(D_MODEL)(keras.layers.Dense(2 * D_MODEL, activation="relu")(x))
    x = keras.layers.LayerNormalization()(x + feed_forward)
    dense = keras.Model(tokens, keras.layers.Dense(CLASSES)(keras.layers.GlobalAveragePooling1D()(x)))
    if variant == "dense":
        return dense
    return ks.sparsify(dense, pattern(pattern_name))


def multiply_adds(seq_len: int, variant: str, pattern_name: str) -> int:
    """The encoder block's multiply-adds: projections and feed-forward (which sparsity leaves alone) plus the
    two attention matmuls over every score the kernel computes (the blocked kernel's, padding slots included)."""
    from keras_sparse.kernels import plan_gathered_blocks

    linear = 4 * seq_len * D_MODEL * D_MODEL + 2 * seq_len * D_MODEL * 2 * D_MODEL
    scores = seq_len * seq_len
    if variant == "sparse":
        scores = plan_gathered_blocks(pattern(pattern_name), seq_len).computed_scores()
    return linear + HEADS * scores * 2 * (D_MODEL // HEADS)


def convert(model, mode: str, data, path: str):
    """`to_tflite` in one of MODES, measuring rather than judging (an untrained model)."""
    from converters import to_tflite

    quantization = "int8" if mode == "int8-full" else mode
    return to_tflite(
        model,
        path,
        quantization=quantization,
        representative_data=data,
        verification_data=data[:8],
        full_integer=mode == "int8-full",
        max_relative_error=1.0,
        min_argmax_agreement=0.0,
    )


def interleaved_ms(files: dict, sample, repeats: int) -> dict:
    """Median ms per LiteRT run of each file at each of THREADS, one run of each in turn per round."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters = {}
    for key, flatbuffer in files.items():
        for threads in THREADS:
            interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample)
            interpreter.invoke()  # warm-up
            interpreters[key, threads] = interpreter
    return interleaved_medians({key: interpreter.invoke for key, interpreter in interpreters.items()}, repeats)


def measure(seq_len: int, modes: list[str], pattern_name: str, repeats: int) -> list[dict]:
    """One row per (variant, mode): every file converted first, then timed interleaved."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np

    from converters.to_micro import smallest_arena
    from keras_sparse.rewrites import with_max_query_blocks

    data = np.random.default_rng(0).integers(0, VOCAB, size=(64, seq_len)).astype("int32")
    files, rows = {}, []
    with tempfile.TemporaryDirectory() as folder:
        for variant in ("dense", "sparse"):
            model = build(seq_len, variant, pattern_name)
            for mode in modes:
                result = convert(model, mode, data, os.path.join(folder, f"{variant}_{mode}.tflite"))
                files[variant, mode] = result.path.read_bytes()
                arena = None
                if mode in MICRO_MODES and seq_len <= MICRO_MAX_LENGTH:
                    micro = with_max_query_blocks(model, MICRO_QUERY_BLOCKS)
                    micro_file = convert(micro, mode, data, os.path.join(folder, f"micro_{variant}_{mode}.tflite"))
                    arena = smallest_arena(micro_file.path.read_bytes(), [data[:1]]) / 1024
                error = result.max_relative_error
                rows.append({"variant": variant, "mode": mode, "arena_kib": arena, "error": error})
    times = interleaved_ms(files, data[:1], repeats)
    for row in rows:
        key = row["variant"], row["mode"]
        row.update(size_kib=len(files[key]) / 1024, **{f"ms_{threads}": times[key, threads] for threads in THREADS})
    return rows


def profile(seq_len: int, modes: list[str], pattern_name: str) -> dict:
    """Per mode, the sparse file's LiteRT ms (2 threads) per (op, dtype, kernel), and the file's own ms."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np

    from converters.op_profile import profile_ops

    data = np.random.default_rng(0).integers(0, VOCAB, size=(64, seq_len)).astype("int32")
    model = build(seq_len, "sparse", pattern_name)
    table = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in modes:
            flatbuffer = convert(model, mode, data, os.path.join(folder, f"{mode}.tflite")).path.read_bytes()
            whole = interleaved_ms({mode: flatbuffer}, data[:1], 10)[mode, 2]
            kinds = collections.defaultdict(lambda: [0, 0.0])
            for op in profile_ops(flatbuffer, [data[:1]], num_threads=2):
                kind = f"{op.op} {op.dtype} ({'XNNPACK' if op.xnnpack else 'builtin'})"
                kinds[kind][0] += 1
                kinds[kind][1] += op.ms
            table[mode] = {"file_ms": whole, "kinds": kinds}
    return table


def print_profiles(args) -> None:
    print(f"Sparse file ({pattern(args.pattern)}), LiteRT 2 threads; ms per op kind, each op timed alone\n")
    print("| L | mode | op (type, kernel) | ops | ms | share |")
    print("|---|---|---|---|---|---|")
    for seq_len in args.lengths:
        table = run(["--profile-case", str(seq_len), args.pattern, *args.modes])
        if "error" in table:
            print(f"| {seq_len} | | failed: {table['error'][:80]} ||||", flush=True)
            continue
        for mode, found in table.items():
            total = sum(ms for _, ms in found["kinds"].values())
            kinds = sorted(found["kinds"].items(), key=lambda item: -item[1][1])
            shown = [(k, v) for k, v in kinds if v[1] >= 0.02 * total]
            rest = [v for _, v in kinds[len(shown) :]]
            for kind, (count, ms) in shown:
                print(f"| {seq_len} | {mode} | {kind} | {count} | {ms:.2f} | {ms / total:.0%} |")
            if rest:
                ms = sum(v[1] for v in rest)
                print(f"| {seq_len} | {mode} | others | {sum(v[0] for v in rest)} | {ms:.2f} | {ms / total:.0%} |")
            print(f"| {seq_len} | {mode} | **sum of ops; whole file** | | **{total:.2f}; {found['file_ms']:.2f}** | |")


def run(arguments: list[str]) -> dict | list:
    """This script with `arguments` in a fresh process: the JSON it prints last, or {"error": last line}."""
    done = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--pattern", choices=["bigbird64", "bigbird32"], default="bigbird64", help=pattern.__doc__)
    parser.add_argument("--repeats", type=int, default=10, help="interleaved rounds per file (default 10)")
    parser.add_argument("--profile", action="store_true", help="per-op profiles of the sparse files instead")
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--profile-case", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(int(args.case[0]), args.modes, args.case[1], int(args.case[2]))))
        return
    if args.profile_case:
        print(json.dumps(profile(int(args.profile_case[0]), args.profile_case[2:], args.profile_case[1])))
        return
    if args.profile:
        print_profiles(args)
        return
    print(
        f"d_model {D_MODEL}, {HEADS} heads, {pattern(args.pattern)} vs dense twin; LiteRT medians of {args.repeats} "
        f"interleaved runs; TFLite Micro arena for {' and '.join(MICRO_MODES)} at L <= {MICRO_MAX_LENGTH}\n"
    )
    print(
        "| L | mode | variant | file KiB | LiteRT ms, 1 thread | LiteRT ms, 2 threads | TFLM arena KiB | "
        "max rel. error | sparse speed-up (2 threads) | vs float32 (2 threads) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seq_len in args.lengths:
        rows = run(["--case", str(seq_len), args.pattern, str(args.repeats), "--modes", *args.modes])
        if "error" in rows:
            print(f"| {seq_len} | | | failed: {rows['error'][:80]} |||||||", flush=True)
            continue
        by_key = {(row["variant"], row["mode"]): row for row in rows}
        for mode in args.modes:
            for variant in ("dense", "sparse"):
                row = by_key[variant, mode]
                speedup = f"{by_key['dense', mode]['ms_2'] / row['ms_2']:.2f}x" if variant == "sparse" else ""
                float32 = by_key.get((variant, "float32"))
                versus = f"{float32['ms_2'] / row['ms_2']:.2f}x" if float32 and mode != "float32" else ""
                arena = "" if row["arena_kib"] is None else f"{row['arena_kib']:.0f}"
                print(
                    f"| {seq_len} | {mode} | {variant} | {row['size_kib']:.0f} | {row['ms_1']:.2f} | "
                    f"{row['ms_2']:.2f} | {arena} | {row['error']:.1e} | {speedup} | {versus} |",
                    flush=True,
                )
    print()
    for seq_len in args.lengths:
        dense, sparse = (multiply_adds(seq_len, variant, args.pattern) for variant in ("dense", "sparse"))
        ratio = dense / sparse
        print(f"L={seq_len}: multiply-adds dense {dense / 1e6:.0f} M, sparse {sparse / 1e6:.0f} M ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
