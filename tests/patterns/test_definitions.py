"""Every pattern's mask against an independent, loop-by-loop re-statement of its definition."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_sparse as ks


def loop_mask(seq_len, allowed):
    return np.array([[allowed(i, j) for j in range(seq_len)] for i in range(seq_len)], dtype=bool)


@settings(max_examples=60, deadline=None)
@given(
    seq_len=st.integers(1, 70),
    window=st.integers(1, 30),
    dilation=st.integers(1, 4),
    global_tokens=st.lists(st.integers(0, 69), max_size=3),
)
def test_sliding_window_matches_longformer_definition(seq_len, window, dilation, global_tokens):
    global_tokens = [t for t in global_tokens if t < seq_len]
    pattern = ks.patterns.SlidingWindow(window, global_tokens=tuple(global_tokens), dilation=dilation)

    def allowed(i, j):
        in_band = abs(i - j) <= window // 2 and (i - j) % dilation == 0
        return in_band or i in global_tokens or j in global_tokens

    np.testing.assert_array_equal(pattern.mask(seq_len), loop_mask(seq_len, allowed))


@settings(max_examples=30, deadline=None)
@given(seq_len=st.integers(1, 70), block_size=st.integers(1, 20))
def test_block_local_matches_definition(seq_len, block_size):
    pattern = ks.patterns.BlockLocal(block_size)
    np.testing.assert_array_equal(
        pattern.mask(seq_len), loop_mask(seq_len, lambda i, j: i // block_size == j // block_size)
    )


def test_dense_allows_everything():
    assert ks.patterns.Dense().mask(7).all()


@settings(max_examples=60, deadline=None)
@given(
    seq_len=st.integers(1, 200),
    block_size=st.integers(1, 24),
    window=st.sampled_from([1, 3, 5]),
    num_global=st.integers(0, 3),
    num_random=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_big_bird_blocks_follow_the_itc_definition(seq_len, block_size, window, num_global, num_random, seed):
    pattern = ks.patterns.BigBird(block_size, window, num_global, num_random, seed)
    layout = pattern.layout(seq_len)
    num_blocks = -(-seq_len // block_size)
    assert layout.shape == (num_blocks, num_blocks)
    for row, col in itertools.product(range(num_blocks), repeat=2):
        if abs(row - col) <= window // 2 or row < num_global or col < num_global:
            assert layout[row, col], (row, col)
    for row in range(num_global, num_blocks):
        candidates = [c for c in range(num_blocks) if abs(row - c) > window // 2 and c >= num_global]
        chosen = [c for c in candidates if layout[row, c]]
        assert len(chosen) == min(num_random, len(candidates))
    # the token mask is the block layout expanded to tokens
    expected = loop_mask(seq_len, lambda i, j: layout[i // block_size, j // block_size])
    np.testing.assert_array_equal(pattern.mask(seq_len), expected)


def test_big_bird_random_blocks_are_seeded_and_vary_with_the_seed():
    first = ks.patterns.BigBird(16, seed=1).layout(1024)
    np.testing.assert_array_equal(first, ks.patterns.BigBird(16, seed=1).layout(1024))
    assert (first != ks.patterns.BigBird(16, seed=2).layout(1024)).any()


def test_big_bird_layout_is_the_same_in_another_process():
    import subprocess
    import sys

    code = (
        "import numpy as np; from keras_sparse.patterns.big_bird import BigBird; "
        "print(np.flatnonzero(BigBird(8, seed=5).layout(400)).tolist())"
    )
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(printed) == np.flatnonzero(ks.patterns.BigBird(8, seed=5).layout(400)).tolist()


@settings(max_examples=40, deadline=None)
@given(
    seq_len=st.integers(1, 60),
    window=st.integers(1, 20),
    block_size=st.integers(1, 12),
    global_token=st.integers(0, 59),
)
def test_union_and_intersection_are_or_and_and(seq_len, window, block_size, global_token):
    a = ks.patterns.SlidingWindow(window, global_tokens=(global_token,) if global_token < seq_len else ())
    b = ks.patterns.BlockLocal(block_size)
    np.testing.assert_array_equal((a | b).mask(seq_len), a.mask(seq_len) | b.mask(seq_len))
    np.testing.assert_array_equal((a & b).mask(seq_len), a.mask(seq_len) & b.mask(seq_len))


PATTERNS = [
    ks.patterns.Dense(block_size=8),
    ks.patterns.BlockLocal(8),
    ks.patterns.SlidingWindow(12, global_tokens=(0, 33)),
    ks.patterns.SlidingWindow(20, dilation=3, block_size=8),
    ks.patterns.BigBird(8, num_random_blocks=2, seed=4),
    ks.patterns.BigBird(8) | ks.patterns.SlidingWindow(30),
    ks.patterns.BigBird(8) & ks.patterns.SlidingWindow(30),
]


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("seq_len", [1, 7, 64, 77])
def test_layout_marks_exactly_the_blocks_the_mask_touches(pattern, seq_len):
    if any(t >= seq_len for t in getattr(pattern, "global_tokens", ())):
        return
    mask = pattern.mask(seq_len)
    block = pattern.resolve_block_size()
    blocks = -(-seq_len // block)
    padded = np.zeros((blocks * block, blocks * block), dtype=bool)
    padded[:seq_len, :seq_len] = mask
    expected = padded.reshape(blocks, block, blocks, block).any(axis=(1, 3))
    np.testing.assert_array_equal(pattern.layout(seq_len), expected)
