"""Draws every pattern kind into docs/gallery/ and prints the gallery table of docs/patterns.md.

.venv/bin/python docs/make_gallery.py
"""

import pathlib

import keras_sparse as ks

LENGTH = 256
HEADS = 4
OUT = pathlib.Path(__file__).parent / "gallery"

GALLERY = {
    "sliding_window": ks.patterns.SlidingWindow(48, global_tokens=(0, 128), block_size=32),
    "dilated_per_head": ks.patterns.PerHead(
        [ks.patterns.SlidingWindow(64, dilation=d, block_size=32) for d in (1, 2, 3, 4)]
    ),
    "block_local": ks.patterns.BlockLocal(32),
    "big_bird": ks.patterns.BigBird(32, num_sliding_window_blocks=3, num_global_blocks=1, num_random_blocks=2),
    "strided": ks.patterns.Strided(16, block_size=32),
    "strided_split": ks.patterns.Strided(16, heads="split", block_size=32),
    "fixed": ks.patterns.Fixed(32, 4),
    "random_keys": ks.patterns.RandomKeys(8, local_window=16, block_size=32),
    "distance_decay_alibi": ks.patterns.DistanceDecay(0.4, threshold=1e-3, per_head=True, block_size=32),
    "learned": ks.patterns.Learned(ks.patterns.BigBird(32, num_random_blocks=1, seed=4).layout(LENGTH), block_size=32),
}


def main():
    print("| pattern | mask at L=256 (causal not applied) |\n|---|---|")
    for name, pattern in GALLERY.items():
        pattern.for_heads(HEADS).plot(LENGTH, OUT / f"{name}.png", title=type(pattern).__name__, overwrite=True)
        print(f"| `{name}` | ![{name}](gallery/{name}.png) |")


if __name__ == "__main__":
    main()
