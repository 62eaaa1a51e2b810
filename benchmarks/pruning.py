"""What each pruning structure buys after export: sparsity, accuracy, int8 size, LiteRT latency, TFLite Micro arena.

    .venv/bin/python benchmarks/pruning.py          # the table in docs/benchmarks.md (about 30 minutes on 2 cores)

One sparse classifier (2 BigBird encoder layers, hidden 64, 4 heads, feed-forward 256) is trained on the
far-retrieval task at L=512 with the same data, seed and steps, once without pruning and once per
structure (50% on PolynomialDecay from 30% to 75% of training). Each is finalized, exported to float32
and int8 (`converters`, verified), and measured: file sizes (float32 files of n:m and blocks rows with
TFLite's sparse weight encoding; int8 files without, since LiteRT's XNNPACK delegate refuses sparse int8
weights), LiteRT latency at batch 1 and 2 threads (median of 50 runs, interleaved with the unpruned
architecture's files in the same process: the speed-up in brackets), the TFLite Micro arena, and test
accuracy in Keras and of the int8 file. Each row runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from common import litert_accuracy, pruning_schedule, reproducible, run_isolated

ROWS = {
    "unpruned": (),
    "heads": ("heads",),
    "neurons": ("neurons",),
    "attention_blocks": ("attention_blocks",),
    "heads+neurons+attention_blocks": ("heads", "neurons", "attention_blocks"),
    "n:m 2:4": ("n:m",),
    "blocks 1x16": ("blocks",),
}


def latencies_ms(paths, sample, repeats: int = 50) -> list[float]:
    """Median LiteRT latency of each file, measured interleaved (batch 1, 2 threads), so ratios share conditions."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters = []
    for path in paths:
        interpreter = Interpreter(model_path=str(path), num_threads=2)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], sample[None].astype(detail["dtype"]))
        interpreter.invoke()
        interpreters.append(interpreter)
    times = [[] for _ in paths]
    for _ in range(repeats):
        for interpreter, measured in zip(interpreters, times, strict=True):
            start = time.perf_counter()
            interpreter.invoke()
            measured.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(measured) for measured in times]


def run_row(name: str, args) -> dict:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras

    import keras_sparse as ks
    from converters import to_micro, to_tflite

    train = ks.datasets.far_retrieval(args.train, args.seq_len, seed=0)
    test = ks.datasets.far_retrieval(args.test, args.seq_len, seed=1)

    def classifier():
        reproducible(0)
        return ks.models.SparseTransformerClassifier(
            len(train.vocabulary),
            args.seq_len,
            num_layers=2,
            hidden_dim=64,
            num_heads=4,
            intermediate_dim=256,
            pattern=ks.patterns.BigBird(32, num_sliding_window_blocks=3, num_global_blocks=1, num_random_blocks=2),
            num_classes=10,
            dropout=0.0,
        )

    model = classifier()
    model.compile(
        keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    steps = -(-args.train // 32) * args.epochs
    callbacks = [
        ks.pruning.StructuredPruning(pruning_schedule(steps, 0.5), structure, block_shape=(1, 16))
        for structure in ROWS[name]
    ]
    model.fit(train.inputs, train.labels, epochs=args.epochs, batch_size=32, verbose=0, callbacks=callbacks)
    accuracy = float(model.evaluate(test.inputs, test.labels, verbose=0)[1])
    sparsity = (
        {f"{row.layer}:{row.structure}": row.sparsity for row in ks.pruning.pruning_rows(model)} if callbacks else {}
    )
    small = ks.pruning.finalize(model) if callbacks else model
    sparse_weights = any(s in ("n:m", "blocks") for s in ROWS[name])
    with tempfile.TemporaryDirectory() as folder:
        calibration, verification = train.inputs[:200], test.inputs[:100]
        float32 = to_tflite(
            small, os.path.join(folder, "f.tflite"), verification_data=verification, sparse_weights=sparse_weights
        )
        int8 = to_tflite(  # not sparse-encoded: LiteRT's XNNPACK refuses sparse int8 FULLY_CONNECTED weights
            small,
            os.path.join(folder, "q.tflite"),
            quantization="int8",
            float_outputs=True,
            representative_data=calibration,
            verification_data=verification,
        )
        # the unpruned architecture, timed beside this row's files (latency does not depend on the weights)
        twin, calibration_twin = classifier(), {"representative_data": calibration, "verification_data": verification}
        unchecked = {"max_relative_error": 1.0, "min_argmax_agreement": 0.0}  # untrained: only timed
        base32 = to_tflite(twin, os.path.join(folder, "b.tflite"), verification_data=verification, **unchecked)
        base8 = to_tflite(
            twin,
            os.path.join(folder, "b8.tflite"),
            quantization="int8",
            float_outputs=True,
            **calibration_twin,
            **unchecked,
        )
        float32_ms, int8_ms, base32_ms, base8_ms = latencies_ms(
            [float32.path, int8.path, base32.path, base8.path], test.inputs[0]
        )
        micro = to_micro(
            small,
            os.path.join(folder, "micro"),
            representative_data=calibration,
            verification_data=test.inputs[:8],
            name="m",
        )
        return {
            "row": name,
            "sparsity": statistics.mean(sparsity.values()) if sparsity else 0.0,
            "params": small.count_params(),
            "accuracy": accuracy,
            "int8_accuracy": litert_accuracy(int8.path, test.inputs, test.labels),
            "float32_kib": float32.size_bytes / 1024,
            "int8_kib": int8.size_bytes / 1024,
            "float32_ms": float32_ms,
            "int8_ms": int8_ms,
            "float32_speedup": base32_ms / float32_ms,
            "int8_speedup": base8_ms / int8_ms,
            "arena_kib": micro.measured_arena_bytes / 1024,
        }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_row(args.one, args)))
        return
    print(f"far_retrieval, L={args.seq_len}, {args.train} training examples, {args.epochs} epochs, 50% per structure\n")
    print(
        "| pruned | mean sparsity | params | accuracy | int8 accuracy | float32 KiB | int8 KiB | float32 ms | "
        "int8 ms | TFLM arena KiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = None
    for name in args.rows:
        r = run_isolated(__file__, [name], args)
        if isinstance(r, str):
            print(f"| {name} | failed: {r} |", flush=True)
            continue
        base = base or r
        print(
            f"| {name} | {r['sparsity']:.0%} | {r['params']} | {r['accuracy']:.3f} | {r['int8_accuracy']:.3f} | "
            f"{r['float32_kib']:.0f} | {r['int8_kib']:.0f} ({r['int8_kib'] / base['int8_kib']:.0%}) | "
            f"{r['float32_ms']:.2f} ({r['float32_speedup']:.2f}x) | "
            f"{r['int8_ms']:.2f} ({r['int8_speedup']:.2f}x) | {r['arena_kib']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
