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


def test_block_local_has_a_rectangular_form_unless_it_wraps():
    """Without wrap, the neighbours of a block do not depend on the sequence's length (cross-attention can use
    them); wrapped neighbours do (the last block of 3 tokens is not that of 6)."""
    band = ks.patterns.BlockLocal(2, num_blocks_before=1)
    offsets = np.arange(6) // 2 - np.arange(3)[:, None] // 2
    np.testing.assert_array_equal(band.rectangular_mask(3, 6), (offsets >= -1) & (offsets <= 0))
    wrapped = ks.patterns.BlockLocal(2, num_blocks_before=1, wrap=True)
    assert band.length_independent and not wrapped.length_independent
    with pytest.raises(ValueError, match="no rectangular form"):
        wrapped.rectangular_mask(3, 6)


@settings(max_examples=40, deadline=None)
@given(
    seq_len=st.integers(1, 70),
    block_size=st.integers(1, 12),
    before=st.integers(0, 3),
    after=st.integers(0, 3),
    wrap=st.booleans(),
)
def test_block_local_neighbours_follow_reformers_chunks(seq_len, block_size, before, after, wrap):
    """Reformer's local attention: chunk r sees chunks r - before .. r + after (mod the chunk count with wrap),
    each listed chunk counted as often as it is listed."""
    pattern = ks.patterns.BlockLocal(block_size, num_blocks_before=before, num_blocks_after=after, wrap=wrap)
    chunks = -(-seq_len // block_size)

    def listed(i, j):
        targets = [i // block_size + k for k in range(-before, after + 1)]
        targets = [t % chunks for t in targets] if wrap else [t for t in targets if 0 <= t < chunks]
        return targets.count(j // block_size)

    counts = np.array([[listed(i, j) for j in range(seq_len)] for i in range(seq_len)])
    np.testing.assert_array_equal(pattern.mask(seq_len), counts > 0)
    bias = pattern.dense_bias(seq_len)
    if counts.max() <= 1:
        assert bias is None
    else:
        np.testing.assert_allclose(bias[counts > 0], np.log(counts[counts > 0]), rtol=1e-6)


def transformers_block_rows(num_blocks, num_random, random_block_of):
    """Key blocks per query block as transformers' `bigbird_block_sparse_attention` lists them (q[0], q[1],
    q[2:-2], q[-2], q[-1]), random blocks included: a list with repeats."""
    last = num_blocks - 1
    rows = [list(range(num_blocks)), [0, 1, 2, last, *random_block_of(1)]]
    rows += [[0, r - 1, r, r + 1, last, *random_block_of(r)] for r in range(2, last - 1)]
    rows += [[0, last - 2, last - 1, last, *random_block_of(last - 1)], list(range(num_blocks))]
    return [np.bincount(row, minlength=num_blocks) for row in rows]


@pytest.mark.parametrize("num_blocks, num_random", [(12, 1), (16, 2), (20, 3)])
def test_big_bird_original_block_zero_layout_is_transformers_eval_mode(num_blocks, num_random):
    block = 4
    pattern = ks.patterns.BigBird(
        block, num_random_blocks=num_random, layout_style="original", random_blocks="block_zero"
    )
    counts = np.array(transformers_block_rows(num_blocks, num_random, lambda row: [0] * num_random))
    seq_len = num_blocks * block - 1  # a partial last block, as transformers pads it
    np.testing.assert_array_equal(pattern.layout(seq_len), counts > 0)
    token_counts = np.kron(counts, np.ones((block, block), int))[:seq_len, :seq_len]
    np.testing.assert_allclose(pattern.dense_bias(seq_len), np.log(np.maximum(token_counts, 1)), rtol=1e-6)
    assert pattern.for_heads(4) is pattern  # every head has the same layout


def test_big_bird_original_heads_draw_their_own_random_blocks():
    pattern = ks.patterns.BigBird(4, num_random_blocks=2, layout_style="original", seed=3).for_heads(3)
    layout = pattern.layout(80)  # 20 blocks
    assert layout.shape == (3, 20, 20)
    for head in range(3):

        def drawn(row, head=head):
            return [c for c in range(20) if layout[head, row, c] and abs(c - row) > 1 and c not in (0, 19)]

        counts = np.array(transformers_block_rows(20, 2, lambda row: drawn(row)))
        np.testing.assert_array_equal(layout[head], counts > 0)
        assert all(len(drawn(row)) == 2 for row in range(1, 19))
    assert (layout[0] != layout[1]).any() and (layout[1] != layout[2]).any()
    np.testing.assert_array_equal(layout, ks.patterns.BigBird(4, 3, 2, 2, 3, "original", num_heads=3).layout(80))
    assert pattern.dense_bias(80) is None  # drawn blocks are distinct from the window and globals


def test_big_bird_original_falls_back_to_full_attention_as_transformers():
    pattern = ks.patterns.BigBird(4, num_random_blocks=2, layout_style="original", random_blocks="block_zero")
    assert pattern.full_attention(36) and not pattern.full_attention(37)  # (5 + 2 * 2) * 4 = 36
    assert pattern.mask(36).all() and pattern.dense_bias(36) is None
    assert not pattern.mask(37).all()


PATTERNS = [
    ks.patterns.Dense(block_size=8),
    ks.patterns.BlockLocal(8),
    ks.patterns.BlockLocal(8, num_blocks_before=1, num_blocks_after=1, wrap=True),
    ks.patterns.BigBird(8, num_random_blocks=1, layout_style="original", random_blocks="block_zero"),
    ks.patterns.BigBird(8, num_random_blocks=1, layout_style="original", seed=2),
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
