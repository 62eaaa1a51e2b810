"""Bad pattern arguments raise a ValueError that names the argument."""

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
]


@pytest.mark.parametrize("make, argument", CASES)
def test_error_names_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`|{argument}="):
        make()
