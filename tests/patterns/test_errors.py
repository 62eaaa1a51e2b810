"""Bad pattern arguments raise a ValueError that names the argument."""

import json

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


FLAG_CASES = [
    (lambda: ks.patterns.DistanceDecay(0.5, per_head="no"), "per_head"),
    (lambda: ks.patterns.DistanceDecay(0.5, per_head=0), "per_head"),
    (lambda: ks.patterns.RandomKeys(4, reweight="yes"), "reweight"),
    (lambda: ks.patterns.DistanceDecay(float("nan")), "rate"),
    (lambda: ks.patterns.DistanceDecay(float("inf")), "rate"),
    (lambda: ks.patterns.BigBird(np.float64(16)), "block_size"),
    (lambda: ks.patterns.Strided(4, heads=["split"]), "heads"),
    (lambda: ks.patterns.SlidingWindow(8, global_tokens=np.zeros((2, 2), int)), "global_tokens"),
]


@pytest.mark.parametrize("make, argument", FLAG_CASES)
def test_flags_take_booleans_and_numbers_are_finite(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


NUMPY_SCALARS = [
    (lambda i, f: ks.patterns.SlidingWindow(i(8), global_tokens=(i(0), i(5)), dilation=i(2), block_size=i(4))),
    (lambda i, f: ks.patterns.SlidingWindow(8, global_tokens=np.array([5, 0]))),
    (lambda i, f: ks.patterns.BlockLocal(i(4))),
    (lambda i, f: ks.patterns.Dense(block_size=i(4))),
    (lambda i, f: ks.patterns.BigBird(i(4), i(3), i(1), i(1), seed=i(2))),
    (lambda i, f: ks.patterns.Strided(i(3), block_size=i(4))),
    (lambda i, f: ks.patterns.Fixed(i(4), i(1))),
    (lambda i, f: ks.patterns.RandomKeys(i(3), seed=i(1), reweight=np.bool_(True), local_window=i(2))),
    (lambda i, f: ks.patterns.DistanceDecay(f(0.5), f(0.01), per_head=np.bool_(False), block_size=i(4))),
    (lambda i, f: ks.patterns.LSH(i(4), i(2), i(8), seed=i(1))),
    (lambda i, f: ks.patterns.Learned(np.eye(3, dtype=bool), block_size=i(4))),
]


@pytest.mark.parametrize("make", NUMPY_SCALARS)
def test_numpy_scalars_are_accepted_and_stored_as_python_numbers(make):
    """A pattern made from NumPy scalars equals the one made from Python numbers, and its config is plain JSON."""
    from_numpy = make(np.int64, np.float32)
    from_python = make(int, lambda v: float(np.float32(v)))
    assert from_numpy == from_python
    config = json.loads(json.dumps(from_numpy.get_config()))  # raises on NumPy types
    assert type(from_numpy).from_config(config) == from_python
    if not from_numpy.dynamic:
        np.testing.assert_array_equal(from_numpy.mask(np.int64(12)), from_python.mask(12))


def test_a_vanishing_decay_rate_covers_every_key_instead_of_overflowing():
    """ln(1 / threshold) / rate overflows a float for rate 5e-324 (it raised OverflowError)."""
    pattern = ks.patterns.DistanceDecay(5e-324)
    assert pattern.max_distance == 2**62 and pattern.mask(6).all()


def test_a_block_larger_than_the_sequence_makes_one_block_without_padding_to_it():
    """The layout padded keys to num_blocks * block_size: a 1 TiB array for block_size=2**40 (MemoryError)."""
    layout = ks.patterns.SlidingWindow(2, block_size=2**40).layout(3)
    assert layout.tolist() == [[True]]
    assert ks.patterns.SlidingWindow(2, block_size=4).layout(10).tolist() == [[1, 1, 0], [1, 1, 1], [0, 1, 1]]


def test_a_steep_decay_keeps_its_bias_finite():
    """-rate * |i - j| overflowed float32 to -inf off the band (for rate 1e300), which kernels then multiply."""
    bias = ks.patterns.DistanceDecay(1e300).dense_bias(4)
    assert np.isfinite(bias).all() and (np.diag(bias) == 0).all() and bias[0, 3] == np.finfo(np.float32).min
