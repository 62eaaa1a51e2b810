"""LiteRT latency of a longformer-base-shaped checkpoint at 4096 tokens, float32 and int8, against its dense twin.

    .venv/bin/python benchmarks/checkpoints.py          # the table in docs/checkpoints.md (hours; over 14 GB RSS)
    .venv/bin/python benchmarks/checkpoints.py --seq-len 1024 --modes float32   # a quicker look

The checkpoint: allenai/longformer-base-4096's config (12 layers, hidden 768, 12 heads, feed-forward 3072,
attention_window 512, vocabulary 50265) with random weights, written as a transformers folder (config.json,
model.safetensors) and read by `ks.models.from_huggingface(folder, seq_len=L)`, global attention on token 0.
The dense twin: the same embeddings and post-norm layers around `keras.layers.MultiHeadAttention` (every
token attends every token). Each file is converted and verified by `converters.to_tflite` in a process of
its own (the measured error is in the table; the weights are random, so no bound is imposed) and written to
`--out`. Then one process times both files of a mode in LiteRT, batch 1, 2 threads: a warm-up run each, then
`--runs` rounds that run each file once in turn, so that a busy machine slows both alike; medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time

from common import interleaved_medians

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
"""The checkpoint as `from_huggingface` loads it, and its dense twin."""


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


def inputs_for(names, seq_len: int, count: int):
    """`count` examples of random token ids, no padding, global attention on token 0, for the inputs `names`."""
    import numpy as np

    ids = np.random.default_rng(1).integers(3, LONGFORMER_BASE["vocab_size"], size=(count, seq_len)).astype("int32")
    values = {"input_ids": ids, "attention_mask": np.ones_like(ids), "global_attention_mask": np.zeros_like(ids)}
    values["global_attention_mask"][:, 0] = 1
    return {name: values[name] for name in names}


def convert(variant: str, mode: str, seq_len: int, out: str) -> dict:
    """Writes `{out}/{variant}_{mode}.tflite` through `converters.to_tflite` (which verifies it against Keras)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras_sparse as ks
    from converters import to_tflite

    with tempfile.TemporaryDirectory() as folder:
        write_random_checkpoint(folder)
        if variant == "longformer":
            model = ks.models.from_huggingface(folder, seq_len=seq_len, global_tokens=(0,))
        else:
            model = dense_twin(folder, seq_len)
    data = inputs_for([tensor.name for tensor in model.inputs], seq_len, count=4)
    start = time.perf_counter()
    result = to_tflite(
        model,
        os.path.join(out, f"{variant}_{mode}.tflite"),
        quantization=mode,
        representative_data=data if mode == "int8" else None,
        verification_data={name: values[:1] for name, values in data.items()},
        max_relative_error=1.0,  # random weights: measure the error, do not judge it
        min_argmax_agreement=0.0,
        overwrite=True,
    )
    return {
        "file_mib": result.size_bytes / 2**20,
        "error": result.max_relative_error,
        "convert_s": time.perf_counter() - start,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def time_side_by_side(mode: str, seq_len: int, runs: int, out: str, variants) -> dict:
    """LiteRT latency of each variant's file, batch 1, 2 threads: one warm-up each, then `runs` rounds that run
    every variant once in turn (so a busy machine slows all of them alike); medians in ms."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from ai_edge_litert.interpreter import Interpreter

    interpreters = {}
    for variant in variants:
        interpreter = Interpreter(model_path=os.path.join(out, f"{variant}_{mode}.tflite"), num_threads=2)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            name = next(n for n in ("global_attention_mask", "attention_mask", "input_ids") if n in detail["name"])
            interpreter.set_tensor(detail["index"], inputs_for([name], seq_len, count=1)[name])
        interpreter.invoke()  # warm-up
        interpreters[variant] = interpreter
    return interleaved_medians({variant: interpreter.invoke for variant, interpreter in interpreters.items()}, runs)


def run(*arguments: str) -> dict | str:
    """This script with `arguments` in a process of its own: its last JSON line, or its last error line."""
    done = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True)
    if done.returncode < 0:  # no Python error to show: the out-of-memory killer sends SIGKILL
        return f"killed by {signal.Signals(-done.returncode).name}"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default="artifacts/checkpoints_benchmark", help="where the .tflite files go")
    parser.add_argument("--convert", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--time", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.convert:
        print(json.dumps(convert(*args.convert, args.seq_len, args.out)))
        return
    if args.time:
        print(json.dumps(time_side_by_side(args.time, args.seq_len, args.runs, args.out, VARIANTS)))
        return
    os.makedirs(args.out, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}; L={args.seq_len}, LiteRT 2 threads, median of {args.runs}\n")
    print(
        "| model | mode | LiteRT ms | dense / this | file MiB | max rel. error vs Keras | conversion s | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode in args.modes:
        common = ("--seq-len", str(args.seq_len), "--out", args.out)
        converted = {variant: run("--convert", variant, mode, *common) for variant in VARIANTS}
        failed = {variant: row for variant, row in converted.items() if isinstance(row, str)}
        timed = run("--time", mode, "--runs", str(args.runs), *common) if not failed else "a conversion failed"
        for variant, row in converted.items():
            if variant in failed or isinstance(timed, str):
                print(f"| {variant} | {mode} | failed: {failed.get(variant, timed)} ||||||", flush=True)
                continue
            print(
                f"| {variant} | {mode} | {timed[variant]:.0f} | {timed['dense'] / timed[variant]:.2f} | "
                f"{row['file_mib']:.0f} | {row['error']:.2g} | {row['convert_s']:.0f} | {row['peak_rss_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
