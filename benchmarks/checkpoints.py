"""LiteRT latency of a longformer-base-shaped checkpoint at 4096 tokens, float32 and int8, against its dense twin.

    .venv/bin/python benchmarks/checkpoints.py          # the table in docs/checkpoints.md (over an hour, ~8 GB RAM)
    .venv/bin/python benchmarks/checkpoints.py --seq-len 1024 --modes float32   # a quicker look

The checkpoint: allenai/longformer-base-4096's config (12 layers, hidden 768, 12 heads, feed-forward 3072,
attention_window 512, vocabulary 50265) with random weights, written as a transformers folder (config.json,
model.safetensors) and read by `ks.models.from_huggingface(folder, seq_len=L)`, global attention on token 0.
The dense twin: the same embeddings and post-norm layers around `keras.layers.MultiHeadAttention` (every
token attends every token). Each file is converted and verified by `converters.to_tflite` (the measured
error is in the table; the weights are random, so no bound is imposed), then timed in LiteRT: batch 1,
2 threads, one warm-up run, the median of `--runs`. Each case runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

LONGFORMER_BASE = {
    "model_type": "longformer",
    "architectures": ["LongformerForMaskedLM"],
    "attention_window": [512] * 12,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 4098,
    "vocab_size": 50265,
    "type_vocab_size": 1,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "layer_norm_eps": 1e-5,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
}
"""allenai/longformer-base-4096's config.json, the entries the model reads."""
MODES = ("float32", "int8")
VARIANTS = ("longformer", "dense")


def write_random_checkpoint(folder: str, seed: int = 0) -> None:
    """A transformers-format folder with LONGFORMER_BASE and random weights (normal, std 0.02; norms at 1 and 0)."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    config = LONGFORMER_BASE
    hidden, ff = config["hidden_size"], config["intermediate_size"]

    def normal(*shape):
        return rng.normal(scale=0.02, size=shape).astype(np.float32)

    def norm(name):
        return {f"{name}.weight": np.ones(hidden, np.float32), f"{name}.bias": np.zeros(hidden, np.float32)}

    weights = {
        "embeddings.word_embeddings.weight": normal(config["vocab_size"], hidden),
        "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"], hidden),
        "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], hidden),
        **norm("embeddings.LayerNorm"),
    }
    for index in range(config["num_hidden_layers"]):
        prefix = f"encoder.layer.{index}"
        for name in ("query", "key", "value", "query_global", "key_global", "value_global"):
            weights[f"{prefix}.attention.self.{name}.weight"] = normal(hidden, hidden)
            weights[f"{prefix}.attention.self.{name}.bias"] = normal(hidden)
        weights |= {
            f"{prefix}.attention.output.dense.weight": normal(hidden, hidden),
            f"{prefix}.attention.output.dense.bias": normal(hidden),
            f"{prefix}.intermediate.dense.weight": normal(ff, hidden),
            f"{prefix}.intermediate.dense.bias": normal(ff),
            f"{prefix}.output.dense.weight": normal(hidden, ff),
            f"{prefix}.output.dense.bias": normal(hidden),
            **norm(f"{prefix}.attention.output.LayerNorm"),
            **norm(f"{prefix}.output.LayerNorm"),
        }
    save_file(weights, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as file:
        json.dump(config, file, indent=2)


def dense_twin(folder: str, seq_len: int):
    """The checkpoint's architecture with `keras.layers.MultiHeadAttention` (random weights: latency only)."""
    import keras
    from keras import ops

    import keras_sparse as ks
    from keras_sparse.models.huggingface import bert_layers
    from keras_sparse.models.huggingface.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(folder)
    config = checkpoint.config
    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    inputs = {name: keras.Input((seq_len,), dtype="int32", name=name) for name in ("input_ids", "attention_mask")}
    x = ks.layers.TokenEmbedding(config["vocab_size"], hidden)(inputs["input_ids"])
    x = keras.layers.LayerNormalization(epsilon=config["layer_norm_eps"])(x + ks.layers.PositionEmbedding(seq_len)(x))
    padding = ops.expand_dims(ops.not_equal(inputs["attention_mask"], 0), 1)  # (B, 1, T), as keras-hub passes it
    for index in range(config["num_hidden_layers"]):
        attention = keras.layers.MultiHeadAttention(heads, hidden // heads)(x, x, attention_mask=padding)
        x = bert_layers.post_norm_layer(x, attention, index, checkpoint)
    return keras.Model(inputs, x)


def with_list_inputs(model):
    """`model` called with a list of its inputs (`converters.to_tflite` takes lists until dict inputs land)."""
    import keras

    names = [tensor.name for tensor in model.inputs]
    listed = [keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=tensor.name) for tensor in model.inputs]
    return keras.Model(listed, model(dict(zip(names, listed, strict=True))))


def measure(variant: str, mode: str, seq_len: int, runs: int) -> dict:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    import keras_sparse as ks
    from converters import to_tflite
    from converters.litert import run_once

    with tempfile.TemporaryDirectory() as folder:
        write_random_checkpoint(folder)
        if variant == "longformer":
            model = ks.models.from_huggingface(folder, seq_len=seq_len, global_tokens=(0,))
        else:
            model = dense_twin(folder, seq_len)
        model = with_list_inputs(model)
        rng = np.random.default_rng(1)
        samples = []
        for _ in range(4):
            ids = rng.integers(3, LONGFORMER_BASE["vocab_size"], size=(1, seq_len)).astype("int32")
            values = {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "global_attention_mask": np.zeros_like(ids),
            }
            values["global_attention_mask"][0, 0] = 1
            samples.append([values[tensor.name] for tensor in model.inputs])
        path = os.path.join(folder, "model.tflite")
        start = time.perf_counter()
        result = to_tflite(
            model,
            path,
            quantization=mode,
            representative_data=samples if mode == "int8" else None,
            verification_data=samples[:1],
            max_relative_error=1.0,
            min_argmax_agreement=0.0,
        )
        convert_s = time.perf_counter() - start
        interpreter = Interpreter(model_path=path, num_threads=2)
        interpreter.allocate_tensors()
        run_once(interpreter, samples[0])  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            run_once(interpreter, samples[0])
            times.append((time.perf_counter() - start) * 1e3)
    return {
        "variant": variant,
        "mode": mode,
        "seq_len": seq_len,
        "litert_ms": statistics.median(times),
        "runs": runs,
        "file_mib": result.size_bytes / 2**20,
        "error": result.max_relative_error,
        "convert_s": convert_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as file:
            cpu = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores visible, Python {platform.python_version()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case[0], args.case[1], args.seq_len, args.runs)))
        return
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}; L={args.seq_len}, LiteRT 2 threads, median of {args.runs}\n")
    print("| model | mode | LiteRT ms | file MiB | max rel. error vs Keras | conversion s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for mode in args.modes:
        for variant in args.variants:
            command = [sys.executable, __file__, "--case", variant, mode, "--seq-len", str(args.seq_len)]
            done = subprocess.run([*command, "--runs", str(args.runs)], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"| {variant} | {mode} | failed: {(done.stderr.strip().splitlines() or ['?'])[-1]} |||||")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"| {variant} | {mode} | {row['litert_ms']:.0f} | {row['file_mib']:.0f} | {row['error']:.2g} | "
                f"{row['convert_s']:.0f} | {row['peak_rss_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
