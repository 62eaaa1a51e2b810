"""Accuracy against cost: dense, sliding-window, BigBird and pruned BigBird classifiers, same budget and seeds.

    .venv/bin/python benchmarks/accuracy.py --tasks listops --seq-len 1024 --train 3000 --test 2000 --epochs 4
    .venv/bin/python benchmarks/accuracy.py --tasks far_retrieval --seq-len 512 --train 2000 --test 1000 --epochs 5

For each task and model: test accuracy in Keras, training seconds per epoch (median of the epochs after
the first, which traces), peak RSS of the process, and test accuracy of the int8 `.tflite` in LiteRT with
the paired difference from Keras's accuracy on the same examples (and its standard error: near-tied
logits flip either way in int8, so small test sets cannot resolve a fraction of a point).
Every model is `ks.models.SparseTransformerClassifier` with the same sizes, data, seed and epochs; the
dense one computes every score (`implementation="dense"`, the same einsum-and-mask as Keras's layer).
Each run is its own process, so peak memory is that model's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time

import numpy as np
from common import pruning_schedule, reproducible, run_isolated

MODELS = ("dense", "window", "bigbird", "bigbird_pruned")


def pattern(name: str):
    import keras_sparse as ks

    if name == "dense":
        return ks.patterns.Dense()
    if name == "window":
        return ks.patterns.SlidingWindow(window_size=3 * 32, block_size=32)  # BigBird's own window
    return ks.patterns.BigBird(32, num_sliding_window_blocks=3, num_global_blocks=1, num_random_blocks=1, seed=0)


def run_one(task: str, model_name: str, args) -> dict:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras

    import keras_sparse as ks
    from converters import predict, to_tflite

    generate = getattr(ks.datasets, task)
    train = generate(args.train, args.seq_len, seed=0)
    test = generate(args.test, args.seq_len, seed=1)
    reproducible(0)
    model = ks.models.SparseTransformerClassifier(
        len(train.vocabulary),
        args.seq_len,
        num_layers=2,
        hidden_dim=64,
        num_heads=4,
        intermediate_dim=128,
        pattern=pattern(model_name),
        num_classes=train.num_classes,
        dropout=0.1,
        implementation="dense" if model_name == "dense" else "auto",
    )
    model.compile(
        keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    epoch_seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.started)

    callbacks = [EpochTimer()]
    steps = -(-args.train // 32) * args.epochs
    if model_name == "bigbird_pruned":
        schedule = pruning_schedule(steps, 0.5)
        callbacks += [ks.pruning.StructuredPruning(schedule, s) for s in ("heads", "attention_blocks")]
    model.fit(train.inputs, train.labels, epochs=args.epochs, batch_size=32, verbose=0, callbacks=callbacks)
    correct = model.predict(test.inputs, batch_size=64, verbose=0).argmax(-1) == test.labels
    if model_name == "bigbird_pruned":
        model = ks.pruning.finalize(model)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.tflite")
        to_tflite(
            model,
            path,
            quantization="int8",
            representative_data=train.inputs[:200],
            verification_data=test.inputs[:100],
            float_outputs=True,
            min_argmax_agreement=0.0,
            max_relative_error=1.0,
        )  # accuracy is what is measured here
        int8_correct = predict(path, test.inputs).argmax(-1) == test.labels
    difference = int8_correct.astype(float) - correct
    return {
        "task": task,
        "model": model_name,
        "accuracy": float(correct.mean()),
        "int8_accuracy": float(int8_correct.mean()),
        "int8_difference": float(difference.mean()),
        "int8_difference_se": float(difference.std(ddof=1) / np.sqrt(len(difference))),
        "seconds_per_epoch": statistics.median(epoch_seconds[1:] or epoch_seconds),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["listops", "far_retrieval"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--train", type=int, default=8000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--one", nargs=2, metavar=("TASK", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(*args.one, args)))
        return
    print(
        f"L={args.seq_len}, {args.train} training / {args.test} test examples, {args.epochs} epochs, batch 32, "
        "2 layers, hidden 64, 4 heads\n"
    )
    print("| task | model | accuracy | int8 accuracy (LiteRT) | int8 - Keras (s.e.) | s / epoch | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for task in args.tasks:
        for model in args.models:
            row = run_isolated(__file__, [task, model], args)
            if isinstance(row, str):
                print(f"| {task} | {model} | failed: {row} | | | | |", flush=True)
                continue
            print(
                f"| {task} | {model} | {row['accuracy']:.3f} | {row['int8_accuracy']:.3f} | "
                f"{100 * row['int8_difference']:+.1f} ({100 * row['int8_difference_se']:.1f}) points | "
                f"{row['seconds_per_epoch']:.0f} | {row['peak_rss_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
