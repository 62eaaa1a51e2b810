"""Speed and memory of sparse attention against Keras's dense MultiHeadAttention.

Each case runs in its own process (so peak RSS is that case's), times a traced
forward pass and a forward+backward pass (gradients for inputs and weights), and
reports medians of repeats, FLOPs, and speed-up over dense in the same run.

    .venv/bin/python benchmarks/attention.py                     # the table in docs/benchmarks.md
    .venv/bin/python benchmarks/attention.py --lengths 1024 4096 --dims 128
    .venv/bin/python benchmarks/attention.py --zoo --dims 128 768  # one row per pattern kind at L=4096, 8192
    .venv/bin/python benchmarks/attention.py --bert               # d_model 768, 12 heads: window+global, BigBird
    .venv/bin/python benchmarks/attention.py --memory             # a 2-layer encoder at L=16384 and 65536
    .venv/bin/python benchmarks/attention.py --profile            # where the time goes (fwd, fwd+bwd), d_model 768

FLOPs count the four projections and the two attention matmuls (2 FLOPs per multiply-add); the
FLOP ratio is dense FLOPs over the FLOPs of the pattern's allowed scores, so a kernel's
speed-up divided by it is its efficiency against the physical limit.
"""

from __future__ import annotations

import argparse
import functools
import glob
import json
import os
import re
import resource
import statistics
import time

from common import median_ms
from common import run_case as run_isolated_case

HEAD_DIM = 64
"""Above d_model 256, heads of 64 as BERT's (d_model 768: 12 heads); below, 4 heads."""
BLOCK_SIZE = 64
KERAS_WINDOW = 96  # Keras's sliding_window=96: |i - j| < 96, the band of 3 blocks of 64 on average
CASES = ("keras_dense", "keras_sliding_window", "blocked", "sparse", "segment")
TOKEN_KERNELS = ("sparse", "segment")
TOKEN_KERNEL_MAX_SIZE = 4096 * 128
"""Token-level kernels gather one key row per allowed pair: forward+backward peaked at 13 GB for L x d_model =
4096 x 128 and 23 GB (of 24) for 4096 x 256, so larger cases are skipped."""


def num_heads(d_model: int) -> int:
    return 4 if d_model <= 256 else d_model // HEAD_DIM


def pattern():
    import keras_sparse as ks

    return ks.patterns.BigBird(BLOCK_SIZE, num_sliding_window_blocks=3, num_global_blocks=2, num_random_blocks=3)


def zoo() -> dict:
    """One pattern of each kind, at the block size of the main table, for the `--zoo` table."""
    import keras_sparse as ks

    p = ks.patterns
    return {
        "SlidingWindow(512, global 0)": p.SlidingWindow(512, global_tokens=(0,)),
        "SlidingWindow(256, global 0)": p.SlidingWindow(256, global_tokens=(0,)),
        "SlidingWindow(256, dilation 2)": p.SlidingWindow(256, dilation=2),
        "BlockLocal(64)": p.BlockLocal(64),
        "BigBird(64, 3/2/3)": pattern(),
        "Strided(64)": p.Strided(64),
        "Strided(64), split heads": p.Strided(64, heads="split"),
        "Fixed(128, 16)": p.Fixed(128, 16),
        "RandomKeys(32, window 128)": p.RandomKeys(32, local_window=128),
        "DistanceDecay(0.05)": p.DistanceDecay(0.05),
        "DistanceDecay(0.05), ALiBi heads": p.DistanceDecay(0.05, per_head=True),
        "LSH(16 buckets, 2 hashes, chunk 64)": p.LSH(16, num_hashes=2, chunk_size=64),
    }


BERT_CASES = ("keras_dense", "projections", "SlidingWindow(512, global 0)", "BigBird(64, 3/2/3)")


def flops(seq_len: int, d_model: int, scores_per_head: int) -> int:
    projections = 4 * 2 * seq_len * d_model * d_model
    return projections + scores_per_head * 2 * 2 * d_model  # heads * key_dim = d_model


def measure(case: str, seq_len: int, d_model: int, repeats: int) -> dict:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_sparse as ks

    kwargs = dict(num_heads=num_heads(d_model), key_dim=d_model // num_heads(d_model))
    if case in zoo():
        layer = ks.layers.SparseMultiHeadAttention(pattern=zoo()[case], **kwargs)
    elif case in ("keras_dense", "projections"):
        layer = keras.layers.MultiHeadAttention(**kwargs)
    elif case == "keras_sliding_window":
        layer = keras.layers.MultiHeadAttention(sliding_window=KERAS_WINDOW, **kwargs)
    else:
        layer = ks.layers.SparseMultiHeadAttention(pattern=pattern(), implementation=case, **kwargs)
    x = tf.constant(np.random.default_rng(0).normal(size=(1, seq_len, d_model)).astype("float32"))
    layer(x, x)

    def call(q):
        if case == "projections":  # the four projections alone, as the attention layer runs them
            return [layer.query_dense(q), layer.key_dense(q), layer.output_dense(layer.value_dense(q))]
        return layer(q, q)

    forward = tf.function(call)

    @tf.function
    def forward_backward(q):
        with tf.GradientTape() as tape:
            tape.watch(q)
            loss = tf.add_n([tf.reduce_sum(t) for t in tf.nest.flatten(call(q))])
        return tape.gradient(loss, [q, *layer.trainable_weights])

    return {
        "forward_ms": median_ms(forward, x, repeats),
        "forward_backward_ms": median_ms(forward_backward, x, repeats),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def zoo_scores_per_head(name: str, seq_len: int, heads: int) -> tuple[int, str]:
    """Scores a zoo pattern allows per head, and the kernel `implementation="auto"` runs it on."""
    import keras_sparse as ks

    chosen = zoo()[name].for_heads(heads)
    if chosen.dynamic:  # LSH: each round scores each query against its chunk and the previous one
        return chosen.num_hashes * seq_len * 2 * chosen.chunk_size, "lsh"
    layer = ks.layers.SparseMultiHeadAttention(num_heads=heads, key_dim=8, pattern=chosen)
    return chosen.describe(seq_len)["nnz"], layer.kernel_name(seq_len)


def scores_per_head(case: str, seq_len: int) -> int:
    """Attention scores a case computes per head (dense cases compute all of them)."""
    from keras_sparse.kernels import plan_gathered_blocks

    if case.startswith("keras"):
        return seq_len * seq_len
    if case == "blocked":
        return plan_gathered_blocks(pattern(), seq_len).computed_scores()
    return int(pattern().mask(seq_len).sum())


def computed_scores(name: str, seq_len: int) -> float:
    """Scores per head the blocked kernel computes for a zoo pattern (padding slots and rows included)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_sparse.kernels import plan_gathered_blocks

    return plan_gathered_blocks(zoo()[name], seq_len).computed_scores()


def run_case(case: str, seq_len: int, d_model: int, repeats: int) -> dict:
    return run_isolated_case(__file__, case, seq_len, d_model, repeats)


DEFAULT_LENGTHS = [512, 1024, 2048, 4096, 8192]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=DEFAULT_LENGTHS)
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--zoo", action="store_true", help="one row per pattern kind at L=4096 and 8192 instead")
    parser.add_argument("--bert", action="store_true", help="d_model 768, 12 heads: window+global and BigBird")
    parser.add_argument("--memory", action="store_true", help="peak RSS of a 2-layer encoder at L=16384, 65536")
    parser.add_argument("--profile", action="store_true", help="where the time goes, d_model 768, L=4096")
    parser.add_argument("--only", default="", help="with --zoo: only patterns whose name contains this text")
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        case, seq_len, d_model, repeats = args.case
        one = measure_encoder if case.startswith("encoder") else measure
        if case.startswith("profile"):
            mode, case = case.split(":", 1)
            one = functools.partial(profile, backward=mode == "profile_backward")
        print(json.dumps(one(case, int(seq_len), int(d_model), int(repeats))))
        return
    if args.zoo:
        lengths = args.lengths if args.lengths != DEFAULT_LENGTHS else [4096, 8192]
        for d_model in args.dims:
            print_zoo_table(args.repeats, d_model, lengths, only=args.only)
        return
    if args.bert:
        print_bert_table(args.repeats, args.lengths if args.lengths != DEFAULT_LENGTHS else [4096, 8192])
        return
    if args.profile:
        for seq_len in args.lengths if args.lengths != DEFAULT_LENGTHS else [4096]:
            for backward in (False, True):
                print_profile_table(seq_len, args.repeats, backward)
                print()
        return
    if args.memory:
        print_memory_table()
        return

    print(
        "batch 1, 4 heads, BigBird block {BLOCK_SIZE} (3 window, 2 global, 3 random blocks); "
        f"Keras sliding_window={KERAS_WINDOW}; median of {args.repeats} runs; TF graph mode on {os.cpu_count()} cores"
    )
    print()
    print(
        "| d_model | L | case | fwd ms | fwd+bwd ms | peak RSS MiB | GFLOP | FLOP ratio | speed-up fwd | "
        "speed-up fwd+bwd | fwd efficiency |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for d_model in args.dims:
        for seq_len in args.lengths:
            dense_flops = flops(seq_len, d_model, seq_len * seq_len)
            allowed_flops = flops(seq_len, d_model, int(pattern().mask(seq_len).sum()))
            ratio = dense_flops / allowed_flops
            baseline = None
            for case in args.cases:
                if case in TOKEN_KERNELS and seq_len * d_model > TOKEN_KERNEL_MAX_SIZE:
                    print(f"| {d_model} | {seq_len} | {case} | skipped: needs > 24 GiB |||||||||")
                    continue
                row = run_case(case, seq_len, d_model, args.repeats)
                gflop = flops(seq_len, d_model, scores_per_head(case, seq_len)) / 1e9
                if "error" in row:
                    print(f"| {d_model} | {seq_len} | {case} | failed: {row['error'][:60]} |||||||||")
                    continue
                if case == "keras_dense":
                    baseline = row
                speed = speed_bwd = efficiency = ""
                if baseline and case not in ("keras_dense",):
                    fwd_up = baseline["forward_ms"] / row["forward_ms"]
                    speed = f"{fwd_up:.2f}x"
                    speed_bwd = f"{baseline['forward_backward_ms'] / row['forward_backward_ms']:.2f}x"
                    efficiency = f"{fwd_up / ratio:.0%}" if not case.startswith("keras") else ""
                print(
                    f"| {d_model} | {seq_len} | {case} | {row['forward_ms']:.1f} | {row['forward_backward_ms']:.1f} | "
                    f"{row['peak_rss_mib']:.0f} | {gflop:.2f} | {ratio if not case.startswith('keras') else 1:.2f} | "
                    f"{speed} | {speed_bwd} | {efficiency} |",
                    flush=True,
                )


def print_zoo_table(repeats: int, d_model: int = 128, lengths=(4096, 8192), only: str = ""):
    heads = num_heads(d_model)
    print(f"batch 1, {heads} heads, d_model {d_model}, implementation='auto'; median of {repeats} runs")
    print()
    print(
        "| pattern | L | kernel | density | FLOP ratio | fwd ms | dense fwd ms | speed-up fwd | fwd+bwd ms | "
        "dense fwd+bwd ms | speed-up fwd+bwd | fwd / bwd efficiency |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seq_len in lengths:
        dense = run_case("keras_dense", seq_len, d_model, repeats)
        for name in [name for name in zoo() if only in name]:
            nnz, kernel = zoo_scores_per_head(name, seq_len, heads)
            ratio = flops(seq_len, d_model, seq_len * seq_len) / flops(seq_len, d_model, nnz)
            prefix = f"| {name} | {seq_len} | {kernel} | {nnz / seq_len**2:.3f} | {ratio:.2f} |"
            if kernel in TOKEN_KERNELS and seq_len * d_model > TOKEN_KERNEL_MAX_SIZE:
                print(f"{prefix} skipped: needs > 24 GiB |||||")
                continue
            row = run_case(name, seq_len, d_model, repeats)
            if "error" in row:
                print(f"{prefix} failed: {row['error'][:70]} |||||||")
                continue
            fwd, both = row["forward_ms"], row["forward_backward_ms"]
            up, up_both = dense["forward_ms"] / fwd, dense["forward_backward_ms"] / both
            print(
                f"{prefix} {fwd:.1f} | {dense['forward_ms']:.1f} | {up:.2f}x | {both:.1f} | "
                f"{dense['forward_backward_ms']:.1f} | {up_both:.2f}x | {up / ratio:.0%} / {up_both / ratio:.0%} |",
                flush=True,
            )


def print_bert_table(repeats: int, lengths):
    """BERT-base attention (d_model 768, 12 heads of 64): speed-ups, and the attention alone net of the four
    projections against the score-pair ratio (dense scores over the pattern's allowed ones). The projections
    row's speed-ups, in parentheses, are the limits: dense over the projections alone, attention taking no time."""
    d_model = 768
    print(f"batch 1, d_model {d_model}, {num_heads(d_model)} heads, implementation='auto'; median of {repeats} runs")
    print()
    print(
        "| L | case | fwd ms | fwd+bwd ms | speed-up fwd | speed-up fwd+bwd | score-pair ratio | "
        "attention net of projections fwd | of the pair ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for seq_len in lengths:
        rows = {case: run_case(case, seq_len, d_model, repeats) for case in BERT_CASES}
        dense, projections = rows["keras_dense"], rows["projections"]
        for case, row in rows.items():
            if "error" in row:
                print(f"| {seq_len} | {case} | failed: {row['error'][:70]} |||||||")
                continue
            cells = ["", "", "", "", ""]
            if case == "projections" and "error" not in dense:  # the speed-ups if attention took no time at all
                cells[:2] = [
                    f"({dense['forward_ms'] / row['forward_ms']:.2f}x)",
                    f"({dense['forward_backward_ms'] / row['forward_backward_ms']:.2f}x)",
                ]
            if case in zoo() and "error" not in dense and "error" not in projections:
                pair_ratio = seq_len**2 / zoo_scores_per_head(case, seq_len, num_heads(d_model))[0]
                net = (dense["forward_ms"] - projections["forward_ms"]) / (
                    row["forward_ms"] - projections["forward_ms"]
                )
                cells = [
                    f"{dense['forward_ms'] / row['forward_ms']:.2f}x",
                    f"{dense['forward_backward_ms'] / row['forward_backward_ms']:.2f}x",
                    f"{pair_ratio:.2f}",
                    f"{net:.2f}x",
                    f"{net / pair_ratio:.0%}",
                ]
            print(
                f"| {seq_len} | {case} | {row['forward_ms']:.1f} | {row['forward_backward_ms']:.1f} | "
                + " | ".join(cells)
                + " |",
                flush=True,
            )


PROFILE_CASES = ("keras_dense", "SlidingWindow(512, global 0)", "BigBird(64, 3/2/3)")
PROJECTION_SCOPE = re.compile(r"/(query|key|value|attention_output)(_\d+)?/")
STAGES = {
    "score and output matmuls": ("BatchMatMulV2", "BatchMatMulV3", "MatMul", "Einsum"),
    "softmax": ("Softmax",),
    "row reductions (max, min, sums, logs)": ("Max", "Min", "Sum", "Log", "Exp"),
    "gathers (key/value blocks, tables) and their gradients": ("GatherV2", "UnsortedSegmentSum"),
    "elementwise (mask fill, bias, merge)": ("Mul", "AddV2", "Sub", "AddN", "RealDiv", "BiasAdd", "Maximum"),
    "layout (transposes, concats, slices)": (
        "Transpose",
        "ConcatV2",
        "Pack",
        "StridedSlice",
        "StridedSliceGrad",
        "Slice",
        "Pad",
        "Tile",
    ),
}
"""Op types per stage of an attention layer's forward pass; ops under the four projections' scopes are
"projections" whatever their type, and types listed nowhere are "other"."""


def stage_of(op_name: str, op_type: str) -> str:
    """The stage (a key of `STAGES`, "projections" or "other") of a TensorFlow op in a profile.

    `op_type` may carry oneDNN's `_Mkl` prefix (`_MklBatchMatMulV2` is a `BatchMatMulV2`).
    """
    if PROJECTION_SCOPE.search(op_name):
        return "projections"
    op_type = op_type.removeprefix("_Mkl").removeprefix("_")
    return next((stage for stage, types in STAGES.items() if op_type in types), "other")


def op_times_ms(xspace_path: str, calls: int) -> dict:
    """Time per call in ms of each stage, from a TensorFlow profiler XSpace (`*.xplane.pb`): the durations of
    the ops TensorFlow's executor ran (events named `scope/op:Type`), summed over threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xspace_path, "rb") as file:
        space.ParseFromString(file.read())
    stages = dict.fromkeys(["projections", *STAGES, "other"], 0.0)
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            for event in line.events:
                name, _, op_type = plane.event_metadata[event.metadata_id].name.rpartition(":")
                if "/" not in name or not re.fullmatch(r"_?[A-Z]\w*", op_type) or op_type == "ReadVariableOp":
                    continue
                stages[stage_of(name, op_type)] += event.duration_ps / 1e9 / calls
    return stages


def profile(case: str, seq_len: int, d_model: int, repeats: int, backward: bool = False) -> dict:
    """Time of `case`'s forward pass (or forward+backward: gradients for inputs and weights) per stage
    (TensorFlow profiler, one op at a time: inter-op parallelism 1, so an op's duration is its own), and the
    wall-time median of `repeats` passes."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tempfile

    import keras
    import numpy as np
    import tensorflow as tf

    import keras_sparse as ks

    tf.config.threading.set_inter_op_parallelism_threads(1)
    kwargs = dict(num_heads=num_heads(d_model), key_dim=d_model // num_heads(d_model))
    if case == "keras_dense":
        layer = keras.layers.MultiHeadAttention(**kwargs)
    else:
        layer = ks.layers.SparseMultiHeadAttention(pattern=zoo()[case], **kwargs)
    x = tf.constant(np.random.default_rng(0).normal(size=(1, seq_len, d_model)).astype("float32"))
    forward = tf.function(lambda q: layer(q, q))

    @tf.function
    def forward_backward(q):
        with tf.GradientTape() as tape:
            tape.watch(q)
            loss = tf.reduce_sum(layer(q, q))
        return tape.gradient(loss, [q, *layer.trainable_weights])

    run = forward_backward if backward else forward
    wall_ms = median_ms(run, x, repeats)
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        for _ in range(repeats):
            run(x)
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{log_dir}/**/*.xplane.pb", recursive=True)
        return {"wall_ms": wall_ms, "stages": op_times_ms(path, repeats)}


def print_profile_table(seq_len: int, repeats: int, backward: bool, d_model: int = 768):
    """Where the time of a forward (or forward+backward) pass goes, per stage, for dense attention and the BERT
    table's two patterns; and the speed-up each pattern would reach if only its projections, matmuls and
    softmax remained, or if attention took no time at all."""
    print(
        f"batch 1, d_model {d_model}, {num_heads(d_model)} heads, L={seq_len}, "
        f"{'forward+backward' if backward else 'forward'}; TensorFlow profiler op time "
        f"in ms per call (inter-op parallelism 1), mean of {repeats} calls"
    )
    print()
    mode = "profile_backward" if backward else "profile"
    rows = {case: run_case(f"{mode}:{case}", seq_len, d_model, repeats) for case in PROFILE_CASES}
    failed = {case: row["error"] for case, row in rows.items() if "error" in row}
    if failed:
        print(f"failed: {failed}")
        return
    print("| stage | " + " | ".join(PROFILE_CASES) + " |")
    print("|---|" + "---|" * len(PROFILE_CASES))
    totals = {case: sum(row["stages"].values()) for case, row in rows.items()}
    for stage in rows["keras_dense"]["stages"]:
        cells = [
            f"{row['stages'][stage]:.0f} ({row['stages'][stage] / totals[case]:.0%})" for case, row in rows.items()
        ]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    print("| total op time | " + " | ".join(f"{totals[case]:.0f}" for case in rows) + " |")
    print("| wall ms (median) | " + " | ".join(f"{row['wall_ms']:.0f}" for row in rows.values()) + " |")
    dense = totals["keras_dense"]
    core = ("projections", "score and output matmuls", "softmax")
    print("| speed-up over dense, op time | " + " | ".join(f"{dense / totals[case]:.2f}x" for case in rows) + " |")
    print(
        "| ... with only projections, matmuls, softmax left | | "
        + " | ".join(f"{dense / sum(rows[case]['stages'][s] for s in core):.2f}x" for case in PROFILE_CASES[1:])
        + " |"
    )
    computed = {case: seq_len**2 if case == "keras_dense" else computed_scores(case, seq_len) for case in rows}
    passes = 3 if backward else 1  # the backward pass of each matmul is two matmuls of its size
    print(
        "| score and output matmuls, GFLOP/s of op time | "
        + " | ".join(
            f"{passes * 4 * computed[case] * d_model / rows[case]['stages']['score and output matmuls'] / 1e6:.1f}"
            for case in rows
        )
        + " |"
    )
    print(
        "| ... with attention free (projections alone) | "
        + " | ".join(f"{dense / rows[case]['stages']['projections']:.2f}x" for case in rows)
        + " |"
    )


MEMORY_CASES = (
    ("encoder_train", 16384, "SlidingWindow(256, global 0)"),
    ("encoder_train", 16384, "BigBird(64, 3/2/3)"),
    ("encoder_forward", 65536, "SlidingWindow(256, global 0)"),
    ("encoder_forward", 65536, "BigBird(64, 3/2/3)"),
)
MEMORY_D_MODEL = 256


def measure_encoder(case: str, seq_len: int, d_model: int, repeats: int) -> dict:
    """A 2-layer `SparseTransformerClassifier` (d_model 256, 4 heads, MLP 1024), batch 1: one training step
    (`train_on_batch`) or one forward pass; `case` is "encoder_train:PATTERN" or "encoder_forward:PATTERN"."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np

    import keras_sparse as ks

    mode, name = case.split(":", 1)
    model = ks.models.SparseTransformerClassifier(
        vocab_size=1000,
        seq_len=seq_len,
        num_layers=2,
        hidden_dim=d_model,
        num_heads=num_heads(d_model),
        intermediate_dim=4 * d_model,
        pattern=zoo()[name],
        num_classes=2,
    )
    tokens = np.random.default_rng(0).integers(1, 1000, size=(1, seq_len)).astype("int32")
    labels = np.zeros((1,), "int32")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    times = []
    for _ in range(repeats + 1):  # the first call traces
        start = time.perf_counter()
        if mode == "encoder_train":
            model.train_on_batch(tokens, labels)
        else:
            model.predict_on_batch(tokens)
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "step_ms": statistics.median(times[1:]),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def print_memory_table(repeats: int = 2):
    print(
        f"batch 1, 2-layer SparseTransformerClassifier, d_model {MEMORY_D_MODEL}, {num_heads(MEMORY_D_MODEL)} heads, "
        f"MLP {4 * MEMORY_D_MODEL}; median of {repeats} steps after the first"
    )
    print()
    print("| step | L | pattern | ms per step | peak RSS GiB | dense attention's scores alone, GiB |")
    print("|---|---|---|---|---|---|")
    for mode, seq_len, name in MEMORY_CASES:
        row = run_case(f"{mode}:{name}", seq_len, MEMORY_D_MODEL, repeats)
        # Keras's dense layer holds (heads, L, L) float32 scores and probabilities per layer; training keeps both
        dense_gib = num_heads(MEMORY_D_MODEL) * seq_len**2 * 4 * (2 if mode == "encoder_train" else 1) / 2**30
        step = "training step" if mode == "encoder_train" else "forward"
        if "error" in row:
            print(f"| {step} | {seq_len} | {name} | failed: {row['error'][:70]} || {dense_gib:.0f} |")
            continue
        print(
            f"| {step} | {seq_len} | {name} | {row['step_ms']:.0f} | {row['peak_rss_mib'] / 1024:.1f} | "
            f"{dense_gib:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
