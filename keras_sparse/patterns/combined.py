"""`Union` and `Intersection` of two patterns (written `a | b` and `a & b`).

Their logit biases, if any, add up; per-head patterns combine head by head.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from keras_sparse.patterns.pattern import Pattern, register


def _merged_block_size(first: Pattern, second: Pattern) -> int | None:
    sizes = {p.block_size for p in (first, second)} - {None}
    if len(sizes) > 1:
        raise ValueError(
            f"Received patterns on different block sizes: {first!r} and {second!r}. Combined patterns must share "
            "`block_size`: give both the same one (token-level patterns accept `block_size=`)."
        )
    return sizes.pop() if sizes else None


class _Combined(Pattern):
    first: Pattern
    second: Pattern

    def __post_init__(self):
        for name in ("first", "second"):
            if not isinstance(getattr(self, name), Pattern):
                raise ValueError(
                    f"Received an invalid value for argument `{name}`, expected a keras_sparse.patterns.Pattern. "
                    f"Received: {name}={getattr(self, name)!r}"
                )
        if self.first.dynamic or self.second.dynamic:
            raise ValueError(
                "Received an input-dependent pattern (LSH) in a combination: LSH attention cannot be combined "
                "with other patterns. Use it alone."
            )
        object.__setattr__(self, "block_size", _merged_block_size(self.first, self.second))
        heads = {p.num_heads for p in (self.first, self.second)} - {None}
        if len(heads) > 1:
            raise ValueError(
                f"Received per-head patterns with different head counts: {sorted(heads)}. Combined per-head "
                "patterns must have the same number of heads."
            )
        object.__setattr__(self, "num_heads", heads.pop() if heads else None)

    @property
    def length_independent(self) -> bool:
        return self.first.length_independent and self.second.length_independent

    def head(self, index):
        if self.num_heads is None:
            return self
        return type(self)(self.first.head(index), self.second.head(index))

    def for_heads(self, num_heads):
        return type(self)(self.first.for_heads(num_heads), self.second.for_heads(num_heads))

    def bias(self, query_index, key_index, seq_len):
        biases = [p.bias(query_index, key_index, seq_len) for p in (self.first, self.second)]
        biases = [b for b in biases if b is not None]
        return sum(biases) if biases else None

    def offset_bias(self, offsets, seq_len):
        probe = np.zeros(1, int)
        tables = []
        for pattern in (self.first, self.second):
            if pattern.bias(probe, probe, seq_len) is None:
                continue
            table = pattern.offset_bias(offsets, seq_len)
            if table is None:
                return None
            tables.append(table)
        return sum(tables) if tables else None

    def check_fits(self, seq_len):
        self.first.check_fits(seq_len)
        self.second.check_fits(seq_len)

    def residue_strides(self):
        return tuple(dict.fromkeys(self.first.residue_strides() + self.second.residue_strides()))

    def get_config(self):
        return {name: keras.saving.serialize_keras_object(getattr(self, name)) for name in ("first", "second")}

    @classmethod
    def from_config(cls, config):
        return cls(*(keras.saving.deserialize_keras_object(config[name]) for name in ("first", "second")))


@register
@dataclasses.dataclass(frozen=True)
class Union(_Combined):
    """Query i attends key j iff either pattern allows it.

    Example:

    >>> import keras_sparse as ks
    >>> p = ks.patterns.SlidingWindow(window_size=2) | ks.patterns.SlidingWindow(window_size=2, global_tokens=(3,))
    >>> p.mask(4).astype(int)[0]
    array([1, 1, 0, 1])
    """

    first: Pattern
    second: Pattern
    block_size: int | None = dataclasses.field(default=None, init=False)
    num_heads: int | None = dataclasses.field(default=None, init=False)

    def allowed(self, query_index, key_index, seq_len):
        return self.first.allowed(query_index, key_index, seq_len) | self.second.allowed(
            query_index, key_index, seq_len
        )

    def layout(self, seq_len, block_size=None):
        block_size = self.resolve_block_size(block_size)
        if self.num_heads is not None:
            return super().layout(seq_len, block_size)
        return np.logical_or(self.first.layout(seq_len, block_size), self.second.layout(seq_len, block_size))


@register
@dataclasses.dataclass(frozen=True)
class Intersection(_Combined):
    """Query i attends key j iff both patterns allow it.

    Example:

    >>> import keras_sparse as ks
    >>> p = ks.patterns.SlidingWindow(window_size=4) & ks.patterns.BlockLocal(block_size=2)
    >>> p.mask(4).astype(int)[1]
    array([1, 1, 0, 0])
    """

    first: Pattern
    second: Pattern
    block_size: int | None = dataclasses.field(default=None, init=False)
    num_heads: int | None = dataclasses.field(default=None, init=False)

    def allowed(self, query_index, key_index, seq_len):
        return self.first.allowed(query_index, key_index, seq_len) & self.second.allowed(
            query_index, key_index, seq_len
        )
