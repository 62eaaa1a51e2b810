"""Bad pattern arguments raise a ValueError that names the argument."""

import numpy as np
import pytest

import keras_sparse as ks

CASES = [
    (lambda: ks.patterns.SlidingWindow(0), "window_size"),
    (lambda: ks.patterns.SlidingWindow(8, dilation=0), "dilation"),
    (lambda: ks.patterns.SlidingWindow(8, global_tokens=(-1,)), "global_tokens"),
    (lambda: ks.patterns.SlidingWindow(8, global_tokens=5), "global_tokens"),
    (lambda: ks.patterns.SlidingWindow(8, block_size=0), "block_size"),
    (lambda: ks.patterns.BlockLocal(0), "block_size"),
    (lambda: ks.patterns.BlockLocal(2.5), "block_size"),
    (lambda: ks.patterns.BigBird(16, num_sliding_window_blocks=2), "num_sliding_window_blocks"),
    (lambda: ks.patterns.BigBird(16, num_global_blocks=-1), "num_global_blocks"),
    (lambda: ks.patterns.BigBird(16, num_random_blocks=-1), "num_random_blocks"),
    (lambda: ks.patterns.BigBird(16) | ks.patterns.BlockLocal(8), "block_size"),
    (lambda: ks.patterns.Dense() | "dense", "second"),
    (lambda: ks.patterns.SlidingWindow(8, global_tokens=(10,)).mask(10), "seq_len"),
    (lambda: ks.patterns.Dense().mask(0), "seq_len"),
    (lambda: ks.patterns.BigBird(16).layout(100, block_size=32), "block_size"),
    (lambda: ks.patterns.BigBird(16, layout_style="itc"), "layout_style"),
    (lambda: ks.patterns.BigBird(16, random_blocks="zero"), "random_blocks"),
    (lambda: ks.patterns.BigBird(16, random_blocks="block_zero"), "layout_style"),
    (lambda: ks.patterns.BigBird(16, layout_style="original", num_heads=0), "num_heads"),
    (lambda: ks.patterns.BlockLocal(4, num_blocks_before=-1), "num_blocks_before"),
    (lambda: ks.patterns.BlockLocal(4, num_blocks_after=1.5), "num_blocks_after"),
    (lambda: ks.patterns.BlockLocal(4, wrap="yes"), "wrap"),
    (lambda: ks.patterns.LSH((4, 3)), "num_buckets"),
    (lambda: ks.patterns.LSH(()), "num_buckets"),
    (lambda: ks.patterns.LSH(4, num_chunks_before=-1), "num_chunks_before"),
    (lambda: ks.patterns.LSH(4, semantics="transformers"), "semantics"),
]


@pytest.mark.parametrize("make, argument", CASES)
def test_error_names_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`|{argument}="):
        make()


ZOO_CASES = [
    (lambda: ks.patterns.Strided(0), "stride"),
    (lambda: ks.patterns.Strided(4, heads="half"), "heads"),
    (lambda: ks.patterns.Fixed(4, 5), "summary_size"),
    (lambda: ks.patterns.Fixed(4, 0), "summary_size"),
    (lambda: ks.patterns.Strided(4, heads="split").for_heads(1), "pattern"),
    (lambda: ks.patterns.RandomKeys(0), "num_keys"),
    (lambda: ks.patterns.RandomKeys(50).mask(40), "num_keys"),
    (lambda: ks.patterns.RandomKeys(4, local_window=-1), "local_window"),
    (lambda: ks.patterns.DistanceDecay(0.0), "rate"),
    (lambda: ks.patterns.DistanceDecay(0.1, threshold=1.0), "threshold"),
    (lambda: ks.patterns.DistanceDecay(0.1, threshold=0), "threshold"),
    (lambda: ks.patterns.Learned(np.ones((3, 4), bool), block_size=4), "layout"),
    (lambda: ks.patterns.Learned(np.ones((3, 3), bool), block_size=4).layout(40), "seq_len"),
    (lambda: ks.patterns.PerHead([]), "patterns"),
    (lambda: ks.patterns.PerHead([ks.patterns.BlockLocal(4), ks.patterns.BlockLocal(8)]), "patterns"),
    (lambda: ks.patterns.PerHead([ks.patterns.Dense()]).for_heads(2), "pattern"),
]


@pytest.mark.parametrize("make, argument", ZOO_CASES)
def test_zoo_error_names_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`|{argument}="):
        make()
