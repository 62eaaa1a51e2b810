"""A long-sequence keras-hub backbone, dense against `ks.sparsify`: forward and training-step time, peak memory.

A BERT-base-shaped `keras_hub.models.BertBackbone` (hidden 768, 12 heads, intermediate 3072; random weights,
dropout 0) at L=4096, batch 1, as keras-hub builds it (dense) and sparsified with Longformer's pattern,
`SlidingWindow(512, global_tokens=(0,))`. Each case runs in its own process, so its peak RSS is its own; times
are medians of traced (tf.function) calls. The training step is a forward and backward pass with gradients for
every weight. Two layers by default: every layer costs the same, and dense training of BERT-base's 12 layers at
L=4096 keeps about 2 GiB of activations per layer, more than a shared 24 GiB machine holds.

    nice -n 10 .venv/bin/python benchmarks/keras_hub_long.py                 # the table in docs/keras-hub.md
    .venv/bin/python benchmarks/keras_hub_long.py --num-layers 2 --length 2048
"""

from __future__ import annotations

import argparse
import json
import os
import resource

from common import median_ms, run_case

WINDOW, GLOBAL_TOKENS = 512, (0,)
CASES = ("dense", "sparse")


def measure(case: str, length: int, num_layers: int, repeats: int) -> dict:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    import keras_hub
    import numpy as np
    import tensorflow as tf

    import keras_sparse as ks

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30522,
        num_layers=num_layers,
        num_heads=12,
        hidden_dim=768,
        intermediate_dim=3072,
        dropout=0.0,
        max_sequence_length=length,
    )
    if case == "sparse":
        backbone = ks.sparsify(backbone, ks.patterns.SlidingWindow(WINDOW, global_tokens=GLOBAL_TOKENS))
    rng = np.random.default_rng(0)
    inputs = {
        "token_ids": tf.constant(rng.integers(1, 30522, (1, length)), tf.int32),
        "segment_ids": tf.zeros((1, length), tf.int32),
        "padding_mask": tf.ones((1, length), tf.int32),
    }
    weights = tf.constant(rng.normal(size=(1, length, 768)).astype("float32"))

    forward = tf.function(lambda data: backbone(data)["sequence_output"])

    @tf.function
    def training_step(data):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(backbone(data, training=True)["sequence_output"] * weights)
        return tape.gradient(loss, backbone.trainable_weights)

    return {
        "forward_ms": median_ms(forward, inputs, repeats),
        "training_step_ms": median_ms(training_step, inputs, repeats),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        case, length, num_layers, repeats = args.case
        print(json.dumps(measure(case, int(length), int(num_layers), int(repeats))))
        return
    print(
        f"BertBackbone, {args.num_layers} layers x (hidden 768, 12 heads, intermediate 3072), L={args.length}, "
        f"batch 1; sparse: SlidingWindow({WINDOW}, global_tokens={GLOBAL_TOKENS}); median of {args.repeats} runs "
        f"on {os.cpu_count()} cores"
    )
    print()
    print("| backbone | forward ms | training step ms | peak RSS MiB |")
    print("|---|---|---|---|")
    rows = {case: run_case(__file__, case, args.length, args.num_layers, args.repeats) for case in CASES}
    for case, row in rows.items():
        if "error" in row:
            print(f"| {case} | failed: {row['error'][:80]} |||")
            continue
        print(f"| {case} | {row['forward_ms']:.0f} | {row['training_step_ms']:.0f} | {row['peak_rss_mib']:.0f} |")
    if all("error" not in row for row in rows.values()):
        dense, sparse = rows["dense"], rows["sparse"]
        print(
            f"| dense / sparse | {dense['forward_ms'] / sparse['forward_ms']:.2f}x | "
            f"{dense['training_step_ms'] / sparse['training_step_ms']:.2f}x | "
            f"{dense['peak_rss_mib'] / sparse['peak_rss_mib']:.2f}x |"
        )


if __name__ == "__main__":
    main()
