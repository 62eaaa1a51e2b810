"""The ring-buffer layout: which position each slot holds, checked against a cache written position by position."""

import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse.kernels.ring_buffer import RingBufferLayout, allowed, slot_positions


def written_cache(layout: RingBufferLayout, last: int) -> list[int]:
    """The positions a cache holds after writing 0..last, one at a time (a plain Python ring), stale slots as -1."""
    slots = [-1] * layout.length
    for position in range(last + 1):
        if position in layout.sinks:
            slots[layout.sinks.index(position)] = position
        else:
            slots[len(layout.sinks) + position % layout.ring_size] = position
    window_start = last - layout.ring_size + 1
    return [p if index < len(layout.sinks) or p >= window_start else -1 for index, p in enumerate(slots)]


@pytest.mark.parametrize("sinks", [(), (0,), (0, 1, 2, 3), (0, 3)])
def test_slot_positions_match_a_cache_written_one_position_at_a_time(sinks):
    layout = RingBufferLayout(sinks=sinks, ring_size=5)
    for last in range(-1, 40):
        expected = written_cache(layout, last)
        assert slot_positions(layout, last).numpy().tolist() == expected, last


@pytest.mark.parametrize(
    "pattern",
    [
        ks.patterns.SlidingWindow(8),
        ks.patterns.SlidingWindow(9, global_tokens=(0, 1)),
        ks.patterns.SlidingWindow(12, global_tokens=(0, 5), dilation=2),
    ],
)
def test_allowed_is_the_causal_pattern(pattern):
    layout = ks.kernels.ring_buffer_layout(pattern)
    length = 30
    positions = np.arange(length, dtype=np.int32)
    expected = pattern.mask(length) & np.tri(length, dtype=bool)
    np.testing.assert_array_equal(allowed(layout, positions, positions).numpy(), expected)


@pytest.mark.parametrize(
    "pattern, needle",
    [
        (ks.patterns.Dense(), "Dense lets a query attend keys at any distance"),
        (ks.patterns.BigBird(block_size=8), "BigBird"),
        (ks.patterns.Strided(4), "Strided"),
        (ks.patterns.SlidingWindow(8, global_tokens=(9,)), "global tokens [9] lie past window_size // 2 = 4"),
    ],
)
def test_patterns_that_cannot_be_bounded_say_why(pattern, needle):
    with pytest.raises(ValueError, match="argument `pattern`") as error:
        ks.kernels.ring_buffer_layout(pattern)
    assert needle in str(error.value)
