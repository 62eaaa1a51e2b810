"""Sparse Transformer, random keys, distance decay, learned and per-head patterns against their definitions."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_sparse as ks
from tests.patterns.test_definitions import loop_mask


@settings(max_examples=40, deadline=None)
@given(seq_len=st.integers(1, 60), stride=st.integers(1, 12))
def test_strided_matches_child_et_al(seq_len, stride):
    expected = loop_mask(seq_len, lambda i, j: abs(i - j) < stride or (i - j) % stride == 0)
    np.testing.assert_array_equal(ks.patterns.Strided(stride).mask(seq_len), expected)


@settings(max_examples=40, deadline=None)
@given(seq_len=st.integers(1, 60), block=st.integers(1, 12), data=st.data())
def test_fixed_matches_child_et_al(seq_len, block, data):
    summary = data.draw(st.integers(1, block))
    expected = loop_mask(seq_len, lambda i, j: i // block == j // block or j % block >= block - summary)
    np.testing.assert_array_equal(ks.patterns.Fixed(block, summary).mask(seq_len), expected)


@pytest.mark.parametrize(
    "pattern, first, second",
    [
        (ks.patterns.Strided(3, heads="split"), lambda i, j: abs(i - j) < 3, lambda i, j: (i - j) % 3 == 0),
        (ks.patterns.Fixed(4, 2, heads="split"), lambda i, j: i // 4 == j // 4, lambda i, j: j % 4 >= 2),
    ],
    ids=["strided", "fixed"],
)
def test_split_heads_give_each_half_one_component(pattern, first, second):
    heads = pattern.for_heads(5)
    assert heads.num_heads == 5
    masks = heads.mask(20)
    for h in range(5):
        np.testing.assert_array_equal(masks[h], loop_mask(20, first if h < 3 else second))


@settings(max_examples=25, deadline=None)
@given(seq_len=st.integers(2, 80), num_keys=st.integers(1, 10), local=st.integers(0, 9), seed=st.integers(0, 99))
def test_random_keys_draw_distinct_keys_outside_the_window(seq_len, num_keys, local, seed):
    num_keys = min(num_keys, seq_len)
    pattern = ks.patterns.RandomKeys(num_keys, seed=seed, local_window=local)
    mask, bias = pattern.mask(seq_len), pattern.dense_bias(seq_len)
    for i in range(seq_len):
        window = {j for j in range(seq_len) if local and abs(i - j) <= local // 2}
        drawn = set(np.flatnonzero(mask[i])) - window
        candidates = seq_len - len(window)
        assert window <= set(np.flatnonzero(mask[i]))
        assert len(drawn) == min(num_keys, candidates)
        for j in range(seq_len):
            expected = math.log(candidates / len(drawn)) if j in drawn else 0.0
            assert bias[i, j] == pytest.approx(expected, abs=1e-6)
    np.testing.assert_array_equal(mask, ks.patterns.RandomKeys(num_keys, seed=seed, local_window=local).mask(seq_len))


def test_random_keys_without_reweighting_have_no_bias():
    assert ks.patterns.RandomKeys(4, reweight=False).dense_bias(30) is None


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(0.01, 3.0), threshold=st.floats(1e-6, 0.99), seq_len=st.integers(1, 60))
def test_distance_decay_is_the_band_where_the_factor_stays_above_threshold(rate, threshold, seq_len):
    pattern = ks.patterns.DistanceDecay(rate, threshold)
    factor = lambda i, j: math.exp(-rate * abs(i - j))  # noqa: E731
    # tolerance for the float boundary: keys on the threshold itself may go either way
    expected = loop_mask(seq_len, lambda i, j: factor(i, j) >= threshold * (1 + 1e-9))
    mask = pattern.mask(seq_len)
    assert (mask >= expected).all()
    assert (mask <= loop_mask(seq_len, lambda i, j: factor(i, j) >= threshold * (1 - 1e-9))).all()
    expected_bias = np.fromfunction(lambda i, j: -rate * np.abs(i - j), (seq_len, seq_len))
    np.testing.assert_allclose(pattern.dense_bias(seq_len), expected_bias, rtol=1e-6, atol=1e-6)


def test_distance_decay_per_head_uses_alibi_geometric_rates():
    heads = ks.patterns.DistanceDecay(0.5, per_head=True).for_heads(4)
    assert [h.rate for h in heads.patterns] == pytest.approx([0.5 * 2 ** (-8 * h / 4) for h in range(4)])
    widths = heads.mask(200).sum(axis=(1, 2))
    assert (np.diff(widths) >= 0).all() and widths[0] < widths[-1]  # later heads see further


def test_learned_expands_its_layout_and_rejects_other_lengths():
    layout = np.random.default_rng(0).random((5, 5)) < 0.4
    pattern = ks.patterns.Learned(layout, block_size=4)
    expected = loop_mask(18, lambda i, j: layout[i // 4, j // 4])
    np.testing.assert_array_equal(pattern.mask(18), expected)
    with pytest.raises(ValueError, match="`seq_len`.*17 to 20 tokens"):
        pattern.mask(24)


def test_learned_per_head_layout_is_a_per_head_pattern():
    layouts = np.random.default_rng(1).random((3, 4, 4)) < 0.5
    pattern = ks.patterns.Learned(layouts, block_size=2)
    assert pattern.num_heads == 3
    for h in range(3):
        np.testing.assert_array_equal(pattern.mask(8)[h], loop_mask(8, lambda i, j, h=h: layouts[h, i // 2, j // 2]))


def test_per_head_dilated_windows_as_longformer():
    pattern = ks.patterns.PerHead([ks.patterns.SlidingWindow(8, dilation=d) for d in (1, 2, 3)])
    masks = pattern.mask(30)
    for h, d in enumerate((1, 2, 3)):
        np.testing.assert_array_equal(masks[h], loop_mask(30, lambda i, j, d=d: abs(i - j) <= 4 and (i - j) % d == 0))
    layout = pattern.layout(30)
    assert layout.shape == (3, 1, 1)


def test_union_of_per_head_and_shared_patterns_combines_head_by_head():
    per_head = ks.patterns.PerHead([ks.patterns.BlockLocal(4), ks.patterns.SlidingWindow(2, block_size=4)])
    union = per_head | ks.patterns.SlidingWindow(2, global_tokens=(0,), block_size=4)
    assert union.num_heads == 2
    np.testing.assert_array_equal(union.mask(12), per_head.mask(12) | union.second.mask(12)[None])


def test_describe_counts_pairs_and_the_flop_ratio():
    stats = ks.patterns.SlidingWindow(4).describe(10)
    expected_nnz = sum(1 for i in range(10) for j in range(10) if abs(i - j) <= 2)
    assert stats == {
        "seq_len": 10,
        "nnz": expected_nnz,
        "density": expected_nnz / 100,
        "flop_ratio": 100 / expected_nnz,
    }
    assert ks.patterns.SlidingWindow(4).density(10) == expected_nnz / 100


def test_plot_writes_a_png_with_one_panel_per_head(tmp_path):
    figure = ks.patterns.Strided(4, heads="split").for_heads(2).plot(32, tmp_path / "strided.png")
    assert (tmp_path / "strided.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(figure.axes) == 2


def test_learned_layout_of_zeros_and_ones_equals_the_bool_layout():
    layout = np.array([[1, 0], [1, 1]])
    for numbers in (layout, layout.astype(np.float32)):
        pattern = ks.patterns.Learned(numbers, block_size=4)
        np.testing.assert_array_equal(pattern.mask(8), ks.patterns.Learned(layout == 1, block_size=4).mask(8))
    assert "75% kept" in repr(pattern)
