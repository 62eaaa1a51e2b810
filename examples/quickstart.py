"""Quickstart: train a sparse-attention classifier on a long-sequence task, export it to TFLite, verify the file.

The task is generated in code: each sequence of `--seq-len` tokens starts with a label
token (one of `--classes`) followed by random filler tokens. The class is read at the last
position, so a model must carry it across the whole sequence: BigBird's global blocks let
the last position see position 0, a plain sliding window cannot (try `--pattern window`).

    .venv/bin/python examples/quickstart.py               # about a minute on 2 CPU cores
    .venv/bin/python examples/quickstart.py --pattern window

Writes `artifacts/quickstart/model_float32.tflite` (builtin ops only, batch 1) and
`artifacts/quickstart/report.md`, after checking the file against the Keras model in LiteRT.
"""

from __future__ import annotations

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

import keras_sparse as ks  # noqa: E402
from keras_sparse.files import write_atomically  # noqa: E402

NUM_SPECIAL = 1  # token 0 is never used, so the vocabulary is labels then filler


def make_task(num_examples: int, seq_len: int, num_classes: int, vocab_size: int, seed: int):
    """Token sequences whose class is the label token at position 0 (filler tokens are never labels)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_examples)
    tokens = rng.integers(NUM_SPECIAL + num_classes, vocab_size, size=(num_examples, seq_len))  # filler only
    tokens[:, 0] = NUM_SPECIAL + labels
    return tokens.astype("int32"), labels.astype("int32")


def build_model(seq_len: int, vocab_size: int, num_classes: int, pattern: ks.patterns.Pattern, dim: int = 32):
    tokens = keras.Input((seq_len,), dtype="int32", name="tokens")
    # TokenEmbedding: Keras's Embedding as one GATHER op, so the model can also run on TFLite Micro
    x = ks.layers.TokenEmbedding(vocab_size, dim)(tokens)
    x = x + ks.layers.TokenEmbedding(seq_len, dim)(keras.ops.arange(seq_len)[None])
    attention = ks.layers.SparseMultiHeadAttention(num_heads=2, key_dim=dim // 2, pattern=pattern)
    x = keras.layers.LayerNormalization()(x + attention(x, x))
    last = x[:, -1]  # the class is read where only long-range attention can bring it
    return keras.Model(tokens, keras.layers.Dense(num_classes)(last))


def to_tflite(model: keras.Model, seq_len: int) -> bytes:
    """A batch-1, builtins-only float32 flatbuffer (Flex ops are refused by the converter)."""
    signature = tf.function(lambda tokens: model(tokens, training=False))
    concrete = signature.get_concrete_function(tf.TensorSpec((1, seq_len), tf.int32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_litert(flatbuffer: bytes, tokens: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for row in tokens:
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(outputs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-len", type=int, default=1024, help="tokens per sequence (default 1024)")
    parser.add_argument("--examples", type=int, default=2048, help="training sequences (default 2048)")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs (default 4)")
    parser.add_argument("--classes", type=int, default=4, help="number of classes (default 4)")
    parser.add_argument("--pattern", choices=["bigbird", "window"], default="bigbird", help="attention pattern")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("artifacts/quickstart"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    vocab_size = NUM_SPECIAL + args.classes + 12
    pattern = {
        "bigbird": ks.patterns.BigBird(block_size=64, num_global_blocks=1, num_random_blocks=2, seed=args.seed),
        "window": ks.patterns.SlidingWindow(window_size=128, block_size=64),
    }[args.pattern]
    keras.utils.set_random_seed(args.seed)
    x_train, y_train = make_task(args.examples, args.seq_len, args.classes, vocab_size, args.seed)
    x_test, y_test = make_task(max(64, args.examples // 8), args.seq_len, args.classes, vocab_size, args.seed + 1)

    model = build_model(args.seq_len, vocab_size, args.classes, pattern)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(f"pattern: {pattern}; density at L={args.seq_len}: {pattern.mask(args.seq_len).mean():.3f}")
    model.fit(x_train, y_train, validation_split=0.1, epochs=args.epochs, batch_size=32, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy: {accuracy:.3f} (chance {1 / args.classes:.3f})")

    flatbuffer = to_tflite(model, args.seq_len)
    probe = x_test[:32]
    expected = model.predict(probe, verbose=0)
    actual = run_litert(flatbuffer, probe)
    error = float(np.abs(actual - expected).max() / np.abs(expected).max())
    agreement = float((actual.argmax(-1) == expected.argmax(-1)).mean())
    if error > 1e-4 or agreement < 1.0:
        raise SystemExit(f"verification failed: max relative error {error:.2e}, argmax agreement {agreement:.1%}")
    model_path = args.out / "model_float32.tflite"
    for previous in (model_path, args.out / "report.md"):
        if previous.exists():
            print(f"replacing {previous} from an earlier run")
    write_atomically(model_path, flatbuffer, overwrite=True)  # this job's own output folder
    report = (
        f"# Quickstart report\n\n- pattern: `{pattern}`\n- sequence length: {args.seq_len}\n"
        f"- test accuracy (Keras): {accuracy:.3f}\n- `{model_path.name}`: {len(flatbuffer) / 1024:.1f} KiB, "
        f"builtin ops only; LiteRT vs Keras on {len(probe)} test inputs: max relative error {error:.1e}, "
        f"argmax agreement {agreement:.0%}\n"
    )
    write_atomically(args.out / "report.md", report.encode(), overwrite=True)
    print(report)
    return accuracy


if __name__ == "__main__":
    main()
