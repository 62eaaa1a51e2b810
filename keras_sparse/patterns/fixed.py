"""`Fixed`: the fixed pattern of the Sparse Transformer."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns.pattern import Pattern, register
from keras_sparse.patterns.strided import HEAD_MODES, split_heads
from keras_sparse.validation import invalid_argument, one_of, positive_int


@register
@dataclasses.dataclass(frozen=True)
class Fixed(Pattern):
    """Query i attends key j iff `i // block_size == j // block_size` or `j % block_size >= block_size - summary_size`.

    The last `summary_size` positions of every block summarise it for all queries. With
    `use_causal_mask=True` the layer ANDs `j <= i` (the paper's autoregressive form);
    `heads="split"` gives the first half of the heads the block part and the others the summary part.

    Args:
        block_size: int. The block length (l in the paper).
        summary_size: int. Summary positions per block (c in the paper), at most `block_size`.
        heads: `"shared"` (default) or `"split"`.
        component: `"both"` (default), `"local"` or `"summary"`: one part only (what split heads use).

    Example:

    >>> import keras_sparse as ks
    >>> ks.patterns.Fixed(block_size=4, summary_size=1).mask(8).astype(int)[0]
    array([1, 1, 1, 1, 0, 0, 0, 1])

    Reference: Child et al. 2019, "Generating Long Sequences with Sparse Transformers".
    """

    length_independent = True

    block_size: int = dataclasses.field()  # required: the base class's None is not a default
    summary_size: int
    heads: str = "shared"
    component: str = "both"

    def __post_init__(self):
        self._store(
            block_size=positive_int("block_size", self.block_size),
            summary_size=positive_int("summary_size", self.summary_size),
            heads=one_of("heads", self.heads, HEAD_MODES),
            component=one_of("component", self.component, ("both", "local", "summary")),
        )
        if self.summary_size > self.block_size:
            raise invalid_argument(
                "summary_size", f"at most block_size={self.block_size}", f"summary_size={self.summary_size}"
            )

    def allowed(self, query_index, key_index, seq_len):
        query_index, key_index = np.asarray(query_index), np.asarray(key_index)
        local = query_index // self.block_size == key_index // self.block_size
        summary = key_index % self.block_size >= self.block_size - self.summary_size
        summary = np.broadcast_to(summary, np.broadcast_shapes(query_index.shape, key_index.shape))
        return {"both": local | summary, "local": local, "summary": summary}[self.component]

    def for_heads(self, num_heads):
        if self.heads == "shared":
            return self
        return split_heads(
            num_heads,
            Fixed(self.block_size, self.summary_size, component="local"),
            Fixed(self.block_size, self.summary_size, component="summary"),
        )
