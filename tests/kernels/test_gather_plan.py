"""The gather plan covers exactly the pattern's allowed pairs, and its row split is optimal."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_sparse as ks
from keras_sparse.kernels.gather_plan import split_rows
from tests.patterns.test_definitions import PATTERNS


def reconstructed_mask(plan):
    """The (T, T) token mask the plan computes, rebuilt from its tables."""
    block, padded = plan.block_size, plan.num_blocks * plan.block_size
    heads = plan.layout_heads
    mask = np.zeros((heads, padded, padded), dtype=bool)
    for group in plan.groups:
        stored = (
            np.ones((heads, len(group.query_blocks), 1, group.num_slots * block), bool)
            if group.mask is None
            else group.mask
        )
        group_mask = np.broadcast_to(stored, stored.shape[:2] + (block, stored.shape[-1]))
        for h, (i, row) in itertools.product(range(heads), enumerate(group.query_blocks)):
            for slot, key_block in enumerate(group.key_blocks[h, i]):
                cells = group_mask[h, i, :, slot * block : (slot + 1) * block]
                mask[h, row * block : (row + 1) * block, key_block * block : (key_block + 1) * block] |= cells
    return mask[:, : plan.seq_len, : plan.seq_len]


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("seq_len", [5, 64, 77, 130])
@pytest.mark.parametrize("causal", [False, True])
def test_plan_computes_exactly_the_pattern(pattern, seq_len, causal):
    if any(t >= seq_len for t in getattr(pattern, "global_tokens", ())):
        return
    plan = ks.kernels.plan_gathered_blocks(pattern, seq_len, causal=causal)
    expected = pattern.mask(seq_len) & (np.tri(seq_len, dtype=bool) if causal else True)
    np.testing.assert_array_equal(reconstructed_mask(plan)[0], expected)
    order = np.concatenate([g.query_blocks for g in plan.groups])
    restored = order if plan.block_order is None else order[plan.block_order]
    np.testing.assert_array_equal(restored, np.arange(plan.num_blocks))


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(0, 40), min_size=1, max_size=30))
def test_row_split_minimises_padded_work(counts):
    counts = np.array(counts)
    groups = split_rows(counts)
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(counts)))
    cost = sum(len(g) * counts[g].max() for g in groups)
    ranked = np.sort(counts)
    best = min(
        [len(ranked) * ranked[-1]] + [k * ranked[k - 1] + (len(ranked) - k) * ranked[-1] for k in range(1, len(ranked))]
    )
    assert cost == best


def test_big_bird_global_rows_get_their_own_group_and_full_rows_need_no_mask():
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.BigBird(64), seq_len=4096)
    groups = sorted((len(g.query_blocks), g.num_slots, g.mask is None) for g in plan.groups)
    # the two rows whose window meets the global blocks or the edge (7 blocks each), the global rows, the rest:
    # every group's gathered scores are all allowed, so BigBird runs without any mask
    assert groups == [(2, 7, True), (2, 64, True), (60, 8, True)]
    assert plan.computed_scores() < 0.2 * 4096 * 4096


def test_block_exact_patterns_store_one_mask_row_per_block():
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.BigBird(32), seq_len=1000)
    assert all(g.mask is None or g.mask.shape[2] == 1 for g in plan.groups)
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.SlidingWindow(40, block_size=32), seq_len=1000)
    assert all(g.mask.shape[2] == 32 for g in plan.groups)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("max_query_blocks", [1, 3])
def test_max_query_blocks_splits_groups_and_still_computes_exactly_the_pattern(pattern, max_query_blocks):
    seq_len = 130
    plan = ks.kernels.plan_gathered_blocks(pattern, seq_len, max_query_blocks=max_query_blocks)
    assert max(len(group.query_blocks) for group in plan.groups) <= max_query_blocks
    np.testing.assert_array_equal(reconstructed_mask(plan)[0], pattern.mask(seq_len))
    order = np.concatenate([g.query_blocks for g in plan.groups])
    restored = order if plan.block_order is None else order[plan.block_order]
    np.testing.assert_array_equal(restored, np.arange(plan.num_blocks))
