"""`PerHead`: a different pattern for each attention head."""

from __future__ import annotations

import dataclasses

import keras

from keras_sparse.patterns.pattern import Pattern, register


@register
@dataclasses.dataclass(frozen=True)
class PerHead(Pattern):
    """Head h attends with `patterns[h]` (DeepSpeed's `different_layout_per_head`).

    Per-head layouts flow through the same kernels; the layer's `num_heads` must equal `len(patterns)`.

    Args:
        patterns: a sequence of shared patterns, one per head.

    Example:

    >>> import keras_sparse as ks
    >>> p = ks.patterns.PerHead([ks.patterns.SlidingWindow(2, dilation=d) for d in (1, 2)])
    >>> p.mask(4).shape
    (2, 4, 4)
    """

    patterns: tuple[Pattern, ...]
    block_size: int | None = dataclasses.field(default=None, init=False)
    num_heads: int | None = dataclasses.field(default=None, init=False)

    def __post_init__(self):
        patterns = tuple(self.patterns) if isinstance(self.patterns, (list, tuple)) else ()
        if not patterns or not all(isinstance(p, Pattern) and p.num_heads is None and not p.dynamic for p in patterns):
            raise ValueError(
                "Received an invalid value for argument `patterns`, expected a non-empty sequence of shared, "
                f"static keras_sparse.patterns.Pattern (one per head). Received: patterns={self.patterns!r}"
            )
        sizes = {p.block_size for p in patterns} - {None}
        if len(sizes) > 1:
            raise ValueError(
                f"Received an invalid value for argument `patterns`: heads use block sizes {sorted(sizes)}; "
                "every head must share one `block_size`."
            )
        object.__setattr__(self, "patterns", patterns)
        object.__setattr__(self, "block_size", sizes.pop() if sizes else None)
        object.__setattr__(self, "num_heads", len(patterns))

    @property
    def length_independent(self) -> bool:
        return all(pattern.length_independent for pattern in self.patterns)

    def head(self, index):
        return self.patterns[index]

    def check_fits(self, seq_len):
        for pattern in self.patterns:
            pattern.check_fits(seq_len)

    def get_config(self):
        return {"patterns": [keras.saving.serialize_keras_object(p) for p in self.patterns]}

    @classmethod
    def from_config(cls, config):
        return cls([keras.saving.deserialize_keras_object(p) for p in config["patterns"]])
