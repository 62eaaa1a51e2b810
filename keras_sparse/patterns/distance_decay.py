"""`DistanceDecay`: attention weights that decay with distance, cut to a band where they vanish."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from keras_sparse.patterns.pattern import Pattern, band_layout, register
from keras_sparse.patterns.per_head import PerHead
from keras_sparse.validation import boolean, number, optional_positive_int, positive_int


@register
@dataclasses.dataclass(frozen=True)
class DistanceDecay(Pattern):
    """Attention weights multiplied by `exp(-rate * |i - j|)`, and keys whose factor is below `threshold` dropped.

    The weight factor is an additive logit bias `-rate * |i - j|`. Since the factor falls
    below `threshold` beyond `max_distance = floor(ln(1 / threshold) / rate)`, query i attends
    key j iff `|i - j| <= max_distance`: a band that the blocked kernel computes, so the decay
    saves compute instead of only reweighting. With `per_head=True`, head h of H uses
    `rate * 2 ** (-8 * h / H)` (ALiBi's geometric slopes): later heads see further.

    Args:
        rate: float > 0. Decay per token of distance.
        threshold: float in (0, 1). Factors below it are dropped. Defaults to 1e-3.
        per_head: bool. ALiBi-style geometric rates per head. Defaults to False.
        block_size: optional int. Block size for the gathered-block kernel (default 64).

    Example:

    >>> import keras_sparse as ks
    >>> p = ks.patterns.DistanceDecay(rate=1.0, threshold=0.1)
    >>> p.max_distance, p.mask(5).astype(int)[0].tolist()
    (2, [1, 1, 1, 0, 0])

    Reference: Press et al. 2022, "Train Short, Test Long: Attention with Linear Biases" (ALiBi).
    """

    length_independent = True

    rate: float
    threshold: float = 1e-3
    per_head: bool = False
    block_size: int | None = None

    def __post_init__(self):
        self._store(
            rate=number("rate", self.rate, above=0),
            threshold=number("threshold", self.threshold, above=0, below=1),
            per_head=boolean("per_head", self.per_head),
            block_size=optional_positive_int("block_size", self.block_size),
        )

    @property
    def max_distance(self) -> int:
        """The band's half-width, `floor(ln(1 / threshold) / rate)` (at most 2**62: wider than any sequence)."""
        return math.floor(min(math.log(1 / self.threshold) / self.rate, 2**62))

    def allowed(self, query_index, key_index, seq_len):
        return np.abs(np.asarray(query_index) - np.asarray(key_index)) <= self.max_distance

    def layout(self, seq_len, block_size=None):
        return band_layout(positive_int("seq_len", seq_len), self.resolve_block_size(block_size), self.max_distance)

    def bias(self, query_index, key_index, seq_len):
        return self.offset_bias(np.asarray(query_index, np.float64) - np.asarray(key_index, np.float64), seq_len)

    def offset_bias(self, offsets, seq_len):
        with np.errstate(over="ignore"):  # a steep decay overflows far off the band: float32's lowest there
            bias = -self.rate * np.abs(np.asarray(offsets, np.float64))
        return np.maximum(bias, np.finfo(np.float32).min).astype(np.float32)

    def for_heads(self, num_heads):
        if not self.per_head:
            return self
        return PerHead(
            tuple(
                DistanceDecay(self.rate * 2 ** (-8 * h / num_heads), self.threshold, block_size=self.block_size)
                for h in range(num_heads)
            )
        )
