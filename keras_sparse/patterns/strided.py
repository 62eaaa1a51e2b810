"""`Strided`: the strided pattern of the Sparse Transformer."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns.pattern import Pattern, register
from keras_sparse.patterns.per_head import PerHead
from keras_sparse.validation import one_of, optional_positive_int, positive_int

HEAD_MODES = ("shared", "split")


def split_heads(num_heads: int, first: Pattern, second: Pattern) -> PerHead:
    """The paper's two-head split: the first half of the heads (rounded up) take `first`, the rest `second`."""
    if num_heads < 2:
        raise ValueError(
            f"Received an invalid value for argument `pattern`: heads='split' needs at least 2 heads. "
            f"Received: num_heads={num_heads}"
        )
    first_count = num_heads - num_heads // 2
    return PerHead((first,) * first_count + (second,) * (num_heads - first_count))


@register
@dataclasses.dataclass(frozen=True)
class Strided(Pattern):
    """Query i attends key j iff `|i - j| < stride` or `(i - j) % stride == 0`.

    With `use_causal_mask=True` the layer ANDs `j <= i`, which gives the paper's autoregressive form.
    `heads="split"` gives the paper's factorisation over heads: the first half of the heads take
    the local part (`|i - j| < stride`), the others the strided part (`(i - j) % stride == 0`).

    Args:
        stride: int. The stride (about sqrt(seq_len) in the paper).
        heads: `"shared"` (default) or `"split"`.
        component: `"both"` (default), `"local"` or `"strided"`: one part only (what split heads use).
        block_size: optional int. Block size for the gathered-block kernel (default 64).

    Example:

    >>> import keras_sparse as ks
    >>> ks.patterns.Strided(stride=2).mask(5).astype(int)[4]
    array([1, 0, 1, 1, 1])

    Reference: Child et al. 2019, "Generating Long Sequences with Sparse Transformers".
    """

    length_independent = True

    stride: int
    heads: str = "shared"
    component: str = "both"
    block_size: int | None = None

    def __post_init__(self):
        self._store(
            stride=positive_int("stride", self.stride),
            heads=one_of("heads", self.heads, HEAD_MODES),
            component=one_of("component", self.component, ("both", "local", "strided")),
            block_size=optional_positive_int("block_size", self.block_size),
        )

    def allowed(self, query_index, key_index, seq_len):
        offset = np.asarray(query_index) - np.asarray(key_index)
        local = np.abs(offset) < self.stride
        strided = offset % self.stride == 0
        return {"both": local | strided, "local": local, "strided": strided}[self.component]

    def residue_strides(self):
        return (self.stride,) if self.component != "local" and self.stride > 1 else ()

    def for_heads(self, num_heads):
        if self.heads == "shared":
            return self
        return split_heads(
            num_heads,
            Strided(self.stride, component="local", block_size=self.block_size),
            Strided(self.stride, component="strided", block_size=self.block_size),
        )
