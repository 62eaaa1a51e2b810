"""`DistanceDecay`: attention weights that decay with distance, cut to a band where they vanish."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from keras_sparse.patterns.pattern import Pattern, band_layout, check_positive_int, check_seq_len, register
from keras_sparse.patterns.per_head import PerHead


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

    rate: float
    threshold: float = 1e-3
    per_head: bool = False
    block_size: int | None = None

    def __post_init__(self):
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, float)) or not self.rate > 0:
            raise ValueError(
                "Received an invalid value for argument `rate`, expected a positive number. "
                f"Received: rate={self.rate!r}"
            )
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, (int, float))
            or not 0 < self.threshold < 1
        ):
            raise ValueError(
                "Received an invalid value for argument `threshold`, expected a number in (0, 1). "
                f"Received: threshold={self.threshold!r}"
            )
        if self.block_size is not None:
            check_positive_int("block_size", self.block_size)
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "threshold", float(self.threshold))

    @property
    def max_distance(self) -> int:
        return math.floor(math.log(1 / self.threshold) / self.rate)

    def allowed(self, query_index, key_index, seq_len):
        return np.abs(np.asarray(query_index) - np.asarray(key_index)) <= self.max_distance

    def layout(self, seq_len, block_size=None):
        return band_layout(check_seq_len(seq_len), self.resolve_block_size(block_size), self.max_distance)

    def bias(self, query_index, key_index, seq_len):
        return self.offset_bias(np.asarray(query_index) - np.asarray(key_index), seq_len)

    def offset_bias(self, offsets, seq_len):
        return (-self.rate * np.abs(np.asarray(offsets))).astype(np.float32)

    def for_heads(self, num_heads):
        if not self.per_head:
            return self
        return PerHead(
            tuple(
                DistanceDecay(self.rate * 2 ** (-8 * h / num_heads), self.threshold, block_size=self.block_size)
                for h in range(num_heads)
            )
        )
