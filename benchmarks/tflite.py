"""Exported files: size, LiteRT latency, peak RSS and TFLite Micro arena, sparse encoder against its dense twin.

    .venv/bin/python benchmarks/tflite.py                       # the table in docs/benchmarks.md (about 10 minutes)
    .venv/bin/python benchmarks/tflite.py --lengths 256 512 --modes float32 int8 --pattern bigbird32  # microcontrollers

The model: token embedding, one encoder block (attention, ReLU feed-forward, LayerNormalization), mean pool,
classifier; d_model 128, 4 heads. The dense twin is the same model with keras.layers.MultiHeadAttention, and
the sparse one is `ks.sparsify(dense, pattern)`: the same weights. Every file is converted and
verified by `converters.to_tflite` (its measured error is in the table). Each case runs in its own process.
The TFLite Micro arena is that of `converters.to_micro(..., max_query_blocks=MICRO_QUERY_BLOCKS)`: sparse
attention in steps of at most 4 query blocks (the other columns are of the unsplit file).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from common import reproducible

D_MODEL, HEADS, VOCAB, CLASSES = 128, 4, 32, 10
MODES = ("float32", "float16", "dynamic", "int8")
MICRO_MAX_LENGTH = 512
MICRO_MODES = ("float32", "int8")  # TFLite Micro runs neither the float16 nor the dynamic-range files (tried)
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


def measure(seq_len: int, variant: str, mode: str, pattern_name: str) -> dict:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from converters import to_tflite
    from converters.to_micro import smallest_arena
    from keras_sparse.rewrites import with_max_query_blocks

    model = build(seq_len, variant, pattern_name)
    data = np.random.default_rng(0).integers(0, VOCAB, size=(64, seq_len)).astype("int32")
    with tempfile.TemporaryDirectory() as folder:
        result = to_tflite(
            model,
            os.path.join(folder, "m.tflite"),
            quantization=mode,
            representative_data=data,
            max_relative_error=1.0,
            min_argmax_agreement=0.0,  # an untrained model: measure, do not judge
        )
        flatbuffer = result.path.read_bytes()
    interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], data[:1])
    interpreter.invoke()
    times = []
    for _ in range(10 if seq_len <= 1024 else 5):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1e3)
    arena = None
    if mode in MICRO_MODES and seq_len <= MICRO_MAX_LENGTH:
        with tempfile.TemporaryDirectory() as folder:
            micro = to_tflite(
                with_max_query_blocks(model, MICRO_QUERY_BLOCKS),
                os.path.join(folder, "micro.tflite"),
                quantization=mode,
                representative_data=data,
                max_relative_error=1.0,
                min_argmax_agreement=0.0,
            )
            arena = smallest_arena(micro.path.read_bytes(), [data[:1]])
    return {
        "size_kib": len(flatbuffer) / 1024,
        "litert_ms": statistics.median(times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "arena_kib": None if arena is None else arena / 1024,
        "error": result.max_relative_error,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--pattern", choices=["bigbird64", "bigbird32"], default="bigbird64", help=pattern.__doc__)
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(int(args.case[0]), args.case[1], args.case[2], args.case[3])))
        return
    print(
        f"d_model {D_MODEL}, {HEADS} heads, {pattern(args.pattern)} vs dense twin; LiteRT 2 threads, median; "
        f"TFLite Micro arena for {' and '.join(MICRO_MODES)} at L <= {MICRO_MAX_LENGTH}\n"
    )
    print(
        "| L | mode | variant | file KiB | LiteRT ms | peak RSS MiB | TFLM arena KiB | max rel. error | "
        "sparse speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for seq_len in args.lengths:
        for mode in args.modes:
            rows = {}
            for variant in ("dense", "sparse"):
                command = [sys.executable, __file__, "--case", str(seq_len), variant, mode, args.pattern]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    last = (done.stderr.strip().splitlines() or ["killed"])[-1][:80]
                    print(f"| {seq_len} | {mode} | {variant} | failed: {last} ||||||", flush=True)
                    continue
                rows[variant] = row = json.loads(done.stdout.strip().splitlines()[-1])
                speedup = ""
                if variant == "sparse" and "dense" in rows:
                    speedup = f"{rows['dense']['litert_ms'] / row['litert_ms']:.2f}x"
                arena = "" if row["arena_kib"] is None else f"{row['arena_kib']:.0f}"
                print(
                    f"| {seq_len} | {mode} | {variant} | {row['size_kib']:.0f} | {row['litert_ms']:.2f} | "
                    f"{row['peak_rss_mib']:.0f} | {arena} | {row['error']:.1e} | {speedup} |",
                    flush=True,
                )
    print()
    for seq_len in args.lengths:
        dense, sparse = (multiply_adds(seq_len, variant, args.pattern) for variant in ("dense", "sparse"))
        ratio = dense / sparse
        print(f"L={seq_len}: multiply-adds dense {dense / 1e6:.0f} M, sparse {sparse / 1e6:.0f} M ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
