"""The ring-buffer cache: a causal sliding window with global (sink) tokens, decoded in bounded memory.

A causal `SlidingWindow(window_size=W, global_tokens=G)` lets the query at position p see the keys at
`p - W // 2, ..., p` and the global tokens (Longformer's global attention; the "attention sinks" of
StreamingLLM, Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks"). So a decoder
needs, per layer, only `len(G)` sink slots plus a ring of `W // 2 + 1` slots: position p (not a global
token) is written to ring slot `p % (W // 2 + 1)`, over the key that just left the window. The cache's size
does not depend on p, and neither does the cost of a step.

New tokens at positions `start, ..., start + T - 1` attend the cache and each other: keys and values are the
cache's slots followed by the T new ones, each with the position it holds (-1 for an empty or stale slot),
and the pattern is evaluated on those positions. Every shape is static; `start` is a tensor. A window ANDed
with a `DistanceDecay` (ALiBi's per-head linear bias, Press et al. 2022) adds the decay's bias at each slot's
true offset from the query, and drops the keys past its `max_distance`, as the sequence kernels do.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from keras_sparse.kernels.dense_masked import dense_masked_attention
from keras_sparse.patterns import DistanceDecay, Intersection, Pattern, PerHead, SlidingWindow


@dataclasses.dataclass(frozen=True)
class RingBufferLayout:
    """Where a bounded cache keeps each key: `sinks` first (one slot each), then a ring of `ring_size` slots.

    Attributes:
        sinks: the global token positions, sorted.
        ring_size: `window_size // 2 + 1`, the keys at `p - window_size // 2, ..., p`.
        dilation: the window's dilation (keys at offsets that are multiples of it).
        decay: the `DistanceDecay` (or per-head `PerHead` of them) ANDed with the window, or None.
    """

    sinks: tuple[int, ...]
    ring_size: int
    dilation: int = 1
    decay: Pattern | None = None

    @property
    def length(self) -> int:
        """Slots per layer: `len(sinks) + ring_size`, whatever the position."""
        return len(self.sinks) + self.ring_size


def _is_decay(pattern: Pattern) -> bool:
    if isinstance(pattern, PerHead):
        return all(type(head) is DistanceDecay for head in pattern.patterns)
    return type(pattern) is DistanceDecay


def _window_and_decay(pattern: Pattern) -> tuple[Pattern, Pattern | None]:
    """`(window, decay)` of `window & decay` (either order), else `(pattern, None)`."""
    if type(pattern) is Intersection:
        for window, decay in ((pattern.first, pattern.second), (pattern.second, pattern.first)):
            if type(window) is SlidingWindow and _is_decay(decay):
                return window, decay
    return pattern, None


def unbounded_reason(pattern: Pattern) -> str | None:
    """Why a causal decoder with `pattern` needs a cache that grows with the position, or None if it does not."""
    pattern, _ = _window_and_decay(pattern)
    if type(pattern) is not SlidingWindow:
        return (
            f"{type(pattern).__name__} lets a query attend keys at any distance (only a causal SlidingWindow, with or "
            "without global tokens, keeps a bounded set of keys)"
        )
    half = pattern.window_size // 2
    far = [t for t in pattern.global_tokens if t > half]
    if far:
        return (
            f"its global tokens {far} lie past window_size // 2 = {half}: a global token attends every earlier key, "
            "which the window no longer holds when it arrives"
        )
    return None


def ring_buffer_layout(pattern: Pattern) -> RingBufferLayout:
    """The bounded cache layout of a causal decoder with `pattern`.

    Raises:
        ValueError: the pattern cannot be decoded in bounded memory (`unbounded_reason` says why).
    """
    reason = unbounded_reason(pattern)
    if reason is not None:
        raise ValueError(
            f"Received an invalid value for argument `pattern`, expected a causal SlidingWindow whose global tokens "
            f"lie within window_size // 2 for a bounded (ring-buffer) cache: {reason}. Decode it with a full cache "
            f"(cache='full'). Received: pattern={pattern!r}"
        )
    window, decay = _window_and_decay(pattern)
    return RingBufferLayout(window.global_tokens, window.window_size // 2 + 1, window.dilation, decay)


def decay_bias(layout: RingBufferLayout, query_positions: tf.Tensor, key_positions: tf.Tensor):
    """`(bias, within)` of the decay per head, each `(H', T, S)`, or `(None, None)` without a decay.

    `bias` is `-rate * (query - key)` (`DistanceDecay.offset_bias`), `within` whether the key lies within the
    decay's `max_distance`, where the sequence kernels cut its band. The offsets are clipped to `[0,
    max_distance]` in int32 before the float product: the bias's range does not grow with the position, and no
    large constant meets a float tensor that an int8 file quantizes (it would share that constant's scale).
    """
    if layout.decay is None:
        return None, None
    heads = layout.decay.patterns if isinstance(layout.decay, PerHead) else (layout.decay,)
    rates = np.array([head.rate for head in heads], np.float32)[:, None, None]
    reach = np.array([min(head.max_distance, 2**31 - 1) for head in heads], np.int32)[:, None, None]
    offsets = (query_positions[:, None] - key_positions[None, :])[None]
    clipped = tf.cast(tf.minimum(tf.maximum(offsets, 0), reach), tf.float32)  # (H', T, S)
    return -rates * clipped, offsets <= reach


def _is_sink(positions: tf.Tensor, layout: RingBufferLayout) -> tf.Tensor:
    found = tf.zeros_like(positions, dtype=tf.bool)
    for sink in layout.sinks:  # a few EQUAL and LOGICAL_OR ops (TFLite Micro has no REDUCE_ANY kernel)
        found = tf.logical_or(found, tf.equal(positions, sink))
    return found


def slot_positions(layout: RingBufferLayout, last_position: tf.Tensor) -> tf.Tensor:
    """int32 `(layout.length,)`: the position each slot holds once positions up to `last_position` are written.

    -1 marks a slot that holds nothing attendable (not written yet, or a ring slot whose latest position was a
    sink, so it still holds a key that left the window).

    Example:

    >>> layout = RingBufferLayout(sinks=(0,), ring_size=3)
    >>> slot_positions(layout, 7).numpy()
    array([0, 6, 7, 5], dtype=int32)
    """
    last = tf.cast(last_position, tf.int32)
    sinks = tf.constant(np.array(layout.sinks, np.int32).reshape(-1))
    sinks = tf.where(sinks <= last, sinks, -1)
    ring = tf.range(layout.ring_size, dtype=tf.int32)
    latest = last - tf.math.floormod(last - ring, layout.ring_size)
    ring = tf.where(tf.logical_and(latest >= 0, tf.logical_not(_is_sink(latest, layout))), latest, -1)
    return tf.concat([sinks, ring], axis=0)


def allowed(layout: RingBufferLayout, query_positions: tf.Tensor, key_positions: tf.Tensor) -> tf.Tensor:
    """bool `(T, S)`: the causal window-with-sinks pattern at the given positions; keys at -1 are never allowed."""
    query, key = query_positions[:, None], key_positions[None, :]
    offset = query - key
    window = offset <= layout.ring_size - 1
    if layout.dilation > 1:
        window = tf.logical_and(window, tf.equal(tf.math.floormod(offset, layout.dilation), 0))
    global_pair = tf.logical_or(_is_sink(key, layout), _is_sink(query, layout))
    visible = tf.logical_and(key >= 0, offset >= 0)
    return tf.logical_and(visible, tf.logical_or(window, global_pair))


def ring_buffer_attention(
    query: tf.Tensor,
    key_cache: tf.Tensor,
    value_cache: tf.Tensor,
    new_keys: tf.Tensor,
    new_values: tf.Tensor,
    layout: RingBufferLayout,
    start: tf.Tensor,
    dropout=None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Attention of `T` new tokens at `start, ..., start + T - 1` against a ring-buffer cache, and the new cache.

    Args:
        query: `(B, T, H, key_dim)`, already scaled by `1/sqrt(key_dim)`.
        key_cache, value_cache: `(B, layout.length, H, dim)`, holding the positions before `start`.
        new_keys, new_values: `(B, T, H, dim)`, the new tokens' projected keys and values.
        layout: from `ring_buffer_layout(pattern)`.
        start: int32 scalar (a tensor or an int), the first new token's position.
        dropout: optional callable applied to the attention probabilities.

    Returns:
        `(output (B, T, H, value_dim), key_cache, value_cache)`, the caches now holding every position up to
        `start + T - 1` the pattern can still reach. Costs `T * (layout.length + T)` scores, whatever `start`.

    Example:

    >>> import numpy as np
    >>> layout = RingBufferLayout(sinks=(0,), ring_size=4)
    >>> cache, new = np.zeros((1, 5, 2, 3), "float32"), np.ones((1, 1, 2, 3), "float32")
    >>> out, keys, values = ring_buffer_attention(new, cache, cache, new, new, layout, start=0)
    >>> tuple(out.shape), keys.numpy()[0, :, 0, 0].tolist()
    ((1, 1, 2, 3), [1.0, 0.0, 0.0, 0.0, 0.0])
    """
    new_count = query.shape[1]
    start = tf.cast(start, tf.int32)
    new_positions = start + tf.range(new_count, dtype=tf.int32)
    key_positions = tf.concat([slot_positions(layout, start - 1), new_positions], axis=0)
    keys = tf.concat([key_cache, new_keys], axis=1)
    values = tf.concat([value_cache, new_values], axis=1)
    mask = allowed(layout, new_positions, key_positions)
    bias, within = decay_bias(layout, new_positions, key_positions)
    if within is not None:  # (H', T, S): a per-head mask
        mask = tf.logical_and(mask[None], within)
    everywhere = np.ones((new_count, layout.length + new_count), bool)
    batch_mask = tf.broadcast_to(mask[None], (tf.shape(query)[0], *mask.shape))
    output, _ = dense_masked_attention(
        query, keys, values, everywhere, attention_mask=batch_mask, dropout=dropout, bias=bias
    )
    # each slot takes the new token it now holds, or keeps what it held
    held = slot_positions(layout, start + new_count - 1)
    source = tf.where(held >= start, layout.length + held - start, tf.range(layout.length, dtype=tf.int32))
    return output, tf.gather(keys, source, axis=1), tf.gather(values, source, axis=1)
