"""keras-sparse beside attention outside this project: PyTorch's dense `scaled_dot_product_attention` and TF Model
Garden's `BigBirdAttention`, forward, batch 1, timed in ONE process, interleaved (each round runs every case once,
medians), so a busy machine slows all cases alike.

Neither is a dependency of keras-sparse. Install them by hand into throwaway folders, then pass the folders:

    .venv/bin/pip install --target /tmp/torchpkg torch==2.13.0                        # the CPU build on this disk
    .venv/bin/pip install --no-deps --target /tmp/tfmg tf-models-official gin-config
    .venv/bin/python benchmarks/external.py --torch-path /tmp/torchpkg --model-garden-path /tmp/tfmg

`--torch-path`: d_model 768, 12 heads of 64 (BERT-base's attention) at `--lengths`: Keras's dense
`MultiHeadAttention`, PyTorch's dense attention (four `torch.nn.Linear` projections around
`torch.nn.functional.scaled_dot_product_attention`, in `torch.inference_mode`, 2 threads), and
`SparseMultiHeadAttention` with SlidingWindow(512) + global token 0 and with BigBird(64; 3 window, 2 global,
3 random blocks).

`--model-garden-path`: d_model 128, 4 heads at `--lengths`: Model Garden's `BigBirdAttention` (blocks of 64,
3 random blocks; its layout has a 3-block window and the first and last blocks global, 8 key blocks per query
block like ours) with the masks of its `BigBirdMasks`, against `SparseMultiHeadAttention` with
BigBird(64; 3/2/3), both as `tf.function`s.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from common import interleaved_medians  # noqa: E402

BERT_D_MODEL, BERT_HEADS = 768, 12
SMALL_D_MODEL, SMALL_HEADS = 128, 4
BLOCK = 64


def ours(d_model: int, heads: int) -> dict:
    """Name -> an unbuilt `SparseMultiHeadAttention` for each of our cases."""
    import keras_sparse as ks

    bigbird = ks.patterns.BigBird(BLOCK, num_sliding_window_blocks=3, num_global_blocks=2, num_random_blocks=3)
    window = ks.patterns.SlidingWindow(512, global_tokens=(0,))
    cases = {"keras-sparse SlidingWindow(512, global 0)": window} if d_model == BERT_D_MODEL else {}
    cases["keras-sparse BigBird(64, 3/2/3)"] = bigbird
    return {
        name: ks.layers.SparseMultiHeadAttention(num_heads=heads, key_dim=d_model // heads, pattern=pattern)
        for name, pattern in cases.items()
    }


def keras_forwards(layers: dict, x) -> dict:
    """Name -> a function of no arguments running that Keras layer's self-attention forward on `x`."""
    import tensorflow as tf

    calls = {}
    for name, layer in layers.items():
        forward = tf.function(lambda q, layer=layer: layer(q, q))
        forward(x)
        calls[name] = lambda forward=forward: forward(x).numpy()
    return calls


def torch_forward(seq_len: int, x: np.ndarray):
    """PyTorch's dense attention with projections, as a function of no arguments."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    torch.manual_seed(0)
    q, k, v, o = (torch.nn.Linear(BERT_D_MODEL, BERT_D_MODEL) for _ in range(4))
    inputs = torch.from_numpy(x)

    def heads(t):
        return t.view(1, seq_len, BERT_HEADS, BERT_D_MODEL // BERT_HEADS).transpose(1, 2)

    def forward():
        with torch.inference_mode():
            context = F.scaled_dot_product_attention(heads(q(inputs)), heads(k(inputs)), heads(v(inputs)))
            return o(context.transpose(1, 2).reshape(1, seq_len, BERT_D_MODEL)).numpy()

    forward()
    return forward


def model_garden_forward(seq_len: int, x: np.ndarray):
    """TF Model Garden's BigBirdAttention (a tf_keras layer) as a function of no arguments."""
    import tensorflow as tf
    from official.nlp.modeling.layers import bigbird_attention

    layer = bigbird_attention.BigBirdAttention(
        num_heads=SMALL_HEADS,
        key_dim=SMALL_D_MODEL // SMALL_HEADS,
        num_rand_blocks=3,
        from_block_size=BLOCK,
        to_block_size=BLOCK,
        max_rand_mask_length=seq_len,
        seed=0,
    )
    masks = bigbird_attention.BigBirdMasks(block_size=BLOCK)
    inputs = tf.constant(x)
    forward = tf.function(lambda q: layer(q, q, attention_mask=masks(q, tf.ones(tf.shape(q)[:2], tf.int32))))
    forward(inputs)
    return lambda: forward(inputs).numpy()


def table(title: str, rows: dict, reference: str) -> None:
    print(f"\n{title}\n")
    print(f"| L | case | forward ms | {reference} / this |")
    print("|---|---|---|---|")
    for seq_len, times in rows.items():
        for name, ms in times.items():
            print(f"| {seq_len} | {name} | {ms:.1f} | {times[reference] / ms:.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-path", help="a folder holding torch (pip install --target)")
    parser.add_argument("--model-garden-path", help="a folder holding tf-models-official and gin-config")
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    if not (args.torch_path or args.model_garden_path):
        parser.error("pass --torch-path, --model-garden-path or both: folders made as the description shows")
    for name, folder in (("--torch-path", args.torch_path), ("--model-garden-path", args.model_garden_path)):
        if folder is not None and not os.path.isdir(folder):
            parser.error(f"{name} {folder!r} is not a folder; make it as the description shows")
        if folder is not None:
            sys.path.append(folder)  # appended: the venv's own packages (TensorFlow, NumPy) win
    import keras

    rng = np.random.default_rng(0)
    if args.torch_path:
        rows = {}
        for seq_len in args.lengths:
            keras.utils.set_random_seed(0)
            x = rng.normal(size=(1, seq_len, BERT_D_MODEL)).astype("float32")
            layers = {"Keras MultiHeadAttention (dense)": keras.layers.MultiHeadAttention(BERT_HEADS, 64)}
            calls = keras_forwards(layers | ours(BERT_D_MODEL, BERT_HEADS), x)
            calls["PyTorch SDPA (dense)"] = torch_forward(seq_len, x)
            rows[seq_len] = interleaved_medians(calls, args.repeats)
        table(f"d_model {BERT_D_MODEL}, {BERT_HEADS} heads; median of {args.repeats}", rows, "PyTorch SDPA (dense)")
    if args.model_garden_path:
        rows = {}
        for seq_len in args.lengths:
            keras.utils.set_random_seed(0)
            x = rng.normal(size=(1, seq_len, SMALL_D_MODEL)).astype("float32")
            calls = keras_forwards(ours(SMALL_D_MODEL, SMALL_HEADS), x)
            calls["Model Garden BigBirdAttention"] = model_garden_forward(seq_len, x)
            rows[seq_len] = interleaved_medians(calls, args.repeats)
        table(
            f"d_model {SMALL_D_MODEL}, {SMALL_HEADS} heads; median of {args.repeats}",
            rows,
            "Model Garden BigBirdAttention",
        )


if __name__ == "__main__":
    main()
