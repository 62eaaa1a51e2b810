"""The gather plan computes every allowed pair exactly once and nothing else, in the parts that suit it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_sparse as ks
from keras_sparse.kernels.gather_plan import natural_positions, split_rows
from tests.patterns.test_definitions import PATTERNS

ZOO = [
    ks.patterns.Strided(7, block_size=8),
    ks.patterns.Strided(8, heads="split", block_size=8),
    ks.patterns.Fixed(8, 2),
    ks.patterns.Fixed(8, 3, heads="split"),
    ks.patterns.RandomKeys(5, seed=1, local_window=6, block_size=8),
    ks.patterns.DistanceDecay(0.3, threshold=1e-2, per_head=True, block_size=8),
    ks.patterns.Learned(np.random.default_rng(0).random((2, 17, 17)) < 0.3, block_size=8),
]


def _stored(table, rows, count):
    """A token table `(H', stored rows, b or 1, W)` expanded to `(H', count, b or 1, W)`."""
    if rows is not None:
        return table[:, rows]
    return np.broadcast_to(table, (table.shape[0], count, *table.shape[2:]))


def computed_counts(plan, num_heads):
    """int `(H, T, T)`: how many times the plan computes each (query, key) pair (global rows replace the rest of
    their row), rebuilt from its tables alone."""
    seq_len, b = plan.seq_len, plan.block_size
    counts = np.zeros((num_heads, seq_len + 1, seq_len + 1), int)  # index seq_len collects padding
    for group in plan.head_groups:
        heads = np.arange(num_heads) if group.heads is None else group.heads
        here = np.zeros((len(heads), seq_len + 1, seq_len + 1), int)
        for order in group.orders:
            natural = np.minimum(natural_positions(seq_len, order.stride, order.num_blocks * b), seq_len)
            for block_group in order.groups:
                rows = block_group.query_blocks
                queries = natural[rows[:, None] * b + np.arange(b)]  # (R, b)
                for part in block_group.parts:
                    key_blocks = part.key_blocks
                    if key_blocks is None:
                        key_blocks = np.broadcast_to(np.arange(order.num_blocks), (1, len(rows), order.num_blocks))
                    keys = natural[(key_blocks[..., None] * b + np.arange(b)).reshape(*key_blocks.shape[:2], -1)]
                    mask = np.ones((1, len(rows), 1, keys.shape[-1]), bool)
                    if part.tables.mask is not None:
                        mask = _stored(part.tables.mask, part.tables.rows, len(rows))
                    shape = (len(heads), len(rows), b, keys.shape[-1])
                    allowed = np.broadcast_to(mask, shape)
                    h, r, i, j = np.nonzero(allowed)
                    np.add.at(
                        here, (h, queries[r, i], np.broadcast_to(keys, (len(heads), *keys.shape[1:]))[h, r, j]), 1
                    )
        if group.shared_keys is not None:
            positions = group.shared_keys.positions
            tables = group.shared_keys.tables
            mask = np.ones((1, plan.num_blocks, b, len(positions)), bool)
            if tables.mask is not None:
                mask = _stored(tables.mask, tables.rows, plan.num_blocks)
            h, r, i, j = np.nonzero(np.broadcast_to(mask, (len(heads), plan.num_blocks, b, len(positions))))
            np.add.at(here, (h, np.minimum(r * b + i, seq_len), positions[j]), 1)
        if group.row_keys is not None:
            keys = group.row_keys.keys
            mask = np.ones(keys.shape, bool) if group.row_keys.tables.mask is None else group.row_keys.tables.mask
            h, r, i, j = np.nonzero(np.broadcast_to(mask, (len(heads), *keys.shape[1:])))
            np.add.at(here, (h, np.minimum(r * b + i, seq_len), keys[0][r, i, j]), 1)
        if group.global_rows is not None:
            positions = group.global_rows.positions
            mask = (
                np.ones((1, len(positions), seq_len), bool)
                if group.global_rows.mask is None
                else (group.global_rows.mask)
            )
            here[:, positions] = 0
            here[:, positions, :seq_len] = np.broadcast_to(mask, (len(heads), len(positions), seq_len))
        counts[heads] += here
    return counts[:, :seq_len, :seq_len]


def assert_plan_is_exact(pattern, seq_len, causal=False, num_heads=2, **kwargs):
    plan = ks.kernels.plan_gathered_blocks(pattern.for_heads(num_heads), seq_len, causal=causal, **kwargs)
    expected = np.broadcast_to(pattern.for_heads(num_heads).mask(seq_len), (num_heads, seq_len, seq_len))
    if causal:
        expected = expected & np.tri(seq_len, dtype=bool)
    counts = computed_counts(plan, num_heads)
    assert counts.max() <= 1, "a pair is computed twice (it would count twice in the softmax)"
    np.testing.assert_array_equal(counts == 1, expected)
    for head_group in plan.head_groups:
        for order in head_group.orders:
            joined = np.concatenate([g.query_blocks for g in order.groups])
            restored = joined if order.block_order is None else joined[order.block_order]
            np.testing.assert_array_equal(restored, np.arange(order.num_blocks))
    return plan


@pytest.mark.parametrize("pattern", PATTERNS + ZOO, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("seq_len", [5, 64, 77, 130])
@pytest.mark.parametrize("causal", [False, True])
def test_plan_computes_each_allowed_pair_exactly_once(pattern, seq_len, causal):
    if any(t >= seq_len for t in getattr(pattern, "global_tokens", ())):
        return
    if isinstance(pattern, ks.patterns.Learned) and seq_len != 130:
        return
    assert_plan_is_exact(pattern, seq_len, causal)


@pytest.mark.parametrize("pattern", PATTERNS + ZOO, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("max_query_blocks", [1, 3])
def test_max_query_blocks_splits_groups_and_still_computes_exactly_the_pattern(pattern, max_query_blocks):
    plan = assert_plan_is_exact(pattern, 130, max_query_blocks=max_query_blocks)
    for head_group in plan.head_groups:
        for order in head_group.orders:
            assert max(len(group.query_blocks) for group in order.groups) <= max_query_blocks


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


def natural_order(plan):
    (head_group,) = plan.head_groups
    return head_group, head_group.orders[0]


def test_big_bird_needs_no_mask_and_its_global_rows_gather_nothing():
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.BigBird(64), seq_len=4096)
    _, order = natural_order(plan)
    groups = sorted((len(g.query_blocks), [p.num_slots for p in g.parts]) for g in order.groups)
    # the rows whose window meets the global blocks or the edge (7 blocks each), the global rows, the rest
    assert groups == [(2, [7]), (2, [64]), (60, [8])]
    assert all(p.tables.mask is None for g in order.groups for p in g.parts)
    (global_group,) = [g for g in order.groups if g.parts[0].num_slots == 64]
    assert global_group.parts[0].key_blocks is None  # every key block in order: keys used as they are
    assert plan.computed_scores() == plan.allowed_scores()


def test_a_window_splits_unmasked_blocks_from_masked_ones_and_stores_one_mask_for_its_interior():
    """SlidingWindow(512) on blocks of 64: 7 whole blocks and 2 triangles per interior row; its global token
    becomes a global row and a shared key, instead of a whole block in every row."""
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.SlidingWindow(512, global_tokens=(0,)), seq_len=4096)
    head_group, order = natural_order(plan)
    interior = max(order.groups, key=lambda g: len(g.query_blocks))
    assert [p.num_slots for p in interior.parts] == [7, 2]
    unmasked, masked = interior.parts
    assert unmasked.tables.mask is None
    assert masked.tables.mask.shape[1] <= 2  # stored once (and once more where the shared key is cut out)
    assert head_group.global_rows.positions.tolist() == [0]
    assert head_group.shared_keys.positions.tolist() == [0]
    assert plan.computed_scores() < 1.15 * plan.allowed_scores()


def test_fixed_summaries_are_gathered_once_for_every_row():
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.Fixed(128, 16), seq_len=4096)
    head_group, order = natural_order(plan)
    assert len(head_group.shared_keys.positions) == 4096 // 128 * 16
    assert [[p.num_slots for p in g.parts] for g in order.groups] == [[1]]
    assert plan.computed_scores() < 1.05 * plan.allowed_scores()  # was nearly dense: every key block


def test_strided_keys_are_computed_in_residue_classes():
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.Strided(64), seq_len=4096)
    (head_group,) = plan.head_groups
    assert [order.stride for order in head_group.orders] == [1, 64]
    assert plan.computed_scores() < 1.4 * plan.allowed_scores()  # was nearly dense: every key block


def test_random_keys_are_gathered_per_row():
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.RandomKeys(32, local_window=128), seq_len=4096)
    head_group, _ = natural_order(plan)
    assert head_group.row_keys is not None and head_group.row_keys.keys.shape[-1] <= 32
    assert plan.computed_scores() < 1.5 * plan.allowed_scores()


def test_per_head_distance_decay_plans_each_head_at_its_own_width_without_quadratic_tables():
    """ALiBi slopes: at L=8192 the last head is dense; its bias is computed from positions in the graph."""
    seq_len = 8192
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.DistanceDecay(0.05, per_head=True).for_heads(4), seq_len)
    assert len(plan.head_groups) == 4
    stored = 0
    for head_group in plan.head_groups:
        for order in head_group.orders:
            for group in order.groups:
                for part in group.parts:
                    stored += sum(t.nbytes for t in (part.tables.mask, part.tables.bias) if t is not None)
    assert stored < 4096 * seq_len  # an (H, L, L) float32 bias alone would be 64 * 4096 * 8192 bytes
    assert plan.computed_scores() < 1.1 * plan.allowed_scores()


def test_plans_of_long_windows_store_small_tables():
    """The 64K memory benchmark plans a window at L=65536: its masks are stored once per distinct row."""
    plan = ks.kernels.plan_gathered_blocks(ks.patterns.SlidingWindow(512, global_tokens=(0,)), seq_len=65536)
    _, order = natural_order(plan)
    stored = sum(t.nbytes for g in order.groups for p in g.parts for t in (p.tables.mask,) if t is not None)
    assert stored < 4 * 1024 * 1024
