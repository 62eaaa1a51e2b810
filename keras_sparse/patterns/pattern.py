"""The `Pattern` base class: which keys each query may attend, as plain data.

A pattern is a pure, seeded, immutable description. Its one required method is
`allowed(query_index, key_index, seq_len)`, a vectorised predicate; from it come
the exact token mask (`mask`) that every kernel must honour and the block layout
(`layout`) that the gathered-block kernel computes.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from keras_sparse.validation import positive_int

DEFAULT_BLOCK_SIZE = 64
"""Block size used by patterns that do not fix one themselves (token-level patterns)."""

_SERIALIZATION_PACKAGE = "keras_sparse"


def register(cls):
    """Registers a pattern class for `.keras` serialization under `keras_sparse>Name`."""
    return keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)(cls)


def num_blocks_for(seq_len: int, block_size: int) -> int:
    """Blocks needed to cover `seq_len` tokens (the last one may be partial)."""
    return math.ceil(seq_len / block_size)


def band_layout(seq_len: int, block_size: int, half_width: int, dilation: int = 1) -> np.ndarray:
    """The block layout of `|i - j| <= half_width and (i - j) % dilation == 0`, in O(num_blocks^2).

    Block pair (r, c) holds the offsets `i - j` from `(r - c) * block_size - (last_c - first_c)` to
    `(last_r - first_r) + (r - c) * block_size` (first/last: a block's first and last real positions); it is
    allowed iff that range meets `[-half_width, half_width]` at a multiple of `dilation`.
    """
    num_blocks = num_blocks_for(seq_len, block_size)
    starts = np.arange(num_blocks) * block_size
    sizes = np.minimum(seq_len - starts, block_size)
    lowest = starts[:, None] - (starts[None, :] + sizes[None, :] - 1)
    highest = starts[:, None] + sizes[:, None] - 1 - starts[None, :]
    low, high = np.maximum(lowest, -half_width), np.minimum(highest, half_width)
    return (low <= high) & (np.floor_divide(high, dilation) * dilation >= low)


class Pattern:
    """Base class of attention patterns.

    Subclasses are frozen dataclasses and implement `allowed` (and, for a logit bias, `bias`).
    Patterns combine with `|` (a key is allowed if either pattern allows it) and `&` (if both do).
    Per-head patterns set `num_heads` and give each head's pattern with `head(h)`; their `mask` and
    `layout` gain a leading head axis.

    Example:

    >>> import keras_sparse as ks
    >>> p = ks.patterns.SlidingWindow(window_size=2) | ks.patterns.BlockLocal(block_size=4)
    >>> p.mask(6).astype(int)[0]
    array([1, 1, 1, 1, 0, 0])
    """

    block_size: int | None = None
    """The block size this pattern is defined on, or None if it is token-level (kernels then choose)."""

    num_heads: int | None = None
    """Heads of a per-head pattern, or None when every head shares the pattern."""

    dynamic: bool = False
    """True for patterns that depend on the input (LSH): no static mask; a dedicated kernel computes them."""

    length_independent: bool = False
    """True when `allowed` and `bias` do not depend on `seq_len`: the pattern then has a rectangular form
    (`rectangular_mask`), which cross-attention uses when queries and keys differ in length."""

    def allowed(self, query_index: np.ndarray, key_index: np.ndarray, seq_len: int) -> np.ndarray:
        """True where query `query_index` may attend key `key_index` (broadcasting integer arrays).

        Kernels may also evaluate it for query positions in the padded tail of the
        last block (`seq_len <= i < num_blocks * block_size`); the result there is ignored.
        """
        raise NotImplementedError

    def bias(self, query_index: np.ndarray, key_index: np.ndarray, seq_len: int) -> np.ndarray | None:
        """An additive logit bias at (query, key), or None if the pattern adds none (the default)."""
        return None

    def offset_bias(self, offsets: np.ndarray, seq_len: int) -> np.ndarray | None:
        """The logit bias as a function of the offset `i - j` alone (float32, shaped like `offsets`), or None.

        None (the default) when the pattern adds no bias or its bias depends on more than the offset. With a
        table, the blocked kernel computes wide biases in the graph from positions instead of storing them.
        """
        return None

    def head(self, index: int) -> Pattern:
        """The pattern head `index` uses (a shared pattern is its own head pattern)."""
        return self

    def for_heads(self, num_heads: int) -> Pattern:
        """This pattern for a layer with `num_heads` heads: patterns that split across heads expand here."""
        if self.num_heads is not None and self.num_heads != num_heads:
            raise ValueError(
                f"Received an invalid value for argument `pattern`: it defines {self.num_heads} heads but the "
                f"layer has num_heads={num_heads}. Give the pattern one entry per head."
            )
        return self

    def mask(self, seq_len: int) -> np.ndarray:
        """The exact token mask: bool `(seq_len, seq_len)` (per-head: `(num_heads, seq_len, seq_len)`).

        True where query i may attend key j.
        """
        seq_len = positive_int("seq_len", seq_len)
        self.check_fits(seq_len)
        if self.num_heads is not None:
            return np.stack([self.head(h).mask(seq_len) for h in range(self.num_heads)])
        positions = np.arange(seq_len)
        return np.broadcast_to(self.allowed(positions[:, None], positions[None, :], seq_len), (seq_len, seq_len))

    def rectangular_mask(self, query_len: int, key_len: int) -> np.ndarray:
        """The token mask of `query_len` queries against `key_len` keys, both counted from position 0:
        bool `(query_len, key_len)` (per-head: `(num_heads, query_len, key_len)`).

        Only length-independent patterns (`length_independent`) have one; others raise a ValueError.

        Example:

        >>> import keras_sparse as ks
        >>> ks.patterns.SlidingWindow(window_size=2).rectangular_mask(2, 4).astype(int)
        array([[1, 1, 0, 0],
               [1, 1, 1, 0]])
        """
        query_len, key_len = positive_int("query_len", query_len), positive_int("key_len", key_len)
        if self.num_heads is not None:
            return np.stack([self.head(h).rectangular_mask(query_len, key_len) for h in range(self.num_heads)])
        self._check_rectangular(max(query_len, key_len))
        queries, keys = np.arange(query_len)[:, None], np.arange(key_len)[None, :]
        return np.broadcast_to(self.allowed(queries, keys, max(query_len, key_len)), (query_len, key_len))

    def rectangular_bias(self, query_len: int, key_len: int) -> np.ndarray | None:
        """The logit bias of `rectangular_mask`'s pairs as float32 (per-head: with a head axis), or None."""
        if self.num_heads is not None:
            biases = [self.head(h).rectangular_bias(query_len, key_len) for h in range(self.num_heads)]
            if all(b is None for b in biases):
                return None
            return np.stack([np.zeros((query_len, key_len), np.float32) if b is None else b for b in biases])
        self._check_rectangular(max(query_len, key_len))
        queries, keys = np.arange(query_len)[:, None], np.arange(key_len)[None, :]
        bias = self.bias(queries, keys, max(query_len, key_len))
        return None if bias is None else np.broadcast_to(bias, (query_len, key_len)).astype(np.float32)

    def _check_rectangular(self, length: int) -> None:
        if not self.length_independent:
            raise ValueError(
                f"{self!r} has no rectangular form: which keys it allows depends on the sequence length, so it "
                "cannot relate queries and keys of different lengths (cross-attention). Use a length-independent "
                "pattern there: Dense, SlidingWindow, BlockLocal, Fixed, Strided, DistanceDecay or their "
                "combinations."
            )
        self.check_fits(length)

    def dense_bias(self, seq_len: int) -> np.ndarray | None:
        """The logit bias as a float32 `(seq_len, seq_len)` (per-head: with a head axis), or None."""
        if self.num_heads is not None:
            biases = [self.head(h).dense_bias(seq_len) for h in range(self.num_heads)]
            if all(b is None for b in biases):
                return None
            return np.stack([np.zeros((seq_len, seq_len), np.float32) if b is None else b for b in biases])
        positions = np.arange(seq_len)
        bias = self.bias(positions[:, None], positions[None, :], seq_len)
        return None if bias is None else np.broadcast_to(bias, (seq_len, seq_len)).astype(np.float32)

    def resolve_block_size(self, block_size: int | None = None) -> int:
        """The block size a kernel should use: the argument, else the pattern's own, else the default."""
        if block_size is not None:
            block_size = positive_int("block_size", block_size)
            own = self.block_size
            if own is not None and own != block_size:
                raise ValueError(
                    f"Received an invalid value for argument `block_size`: {type(self).__name__} is defined on "
                    f"blocks of {own} tokens. Pass block_size={own} or leave it unset. "
                    f"Received: block_size={block_size}"
                )
            return block_size
        return self.block_size or DEFAULT_BLOCK_SIZE

    def layout(self, seq_len: int, block_size: int | None = None) -> np.ndarray:
        """The block mask `(num_blocks, num_blocks)` (per-head: with a head axis).

        True where any query of block r may attend any key of block c;
        `num_blocks = ceil(seq_len / block_size)` and the last block may be partial.
        """
        seq_len = positive_int("seq_len", seq_len)
        self.check_fits(seq_len)
        block_size = self.resolve_block_size(block_size)
        if self.num_heads is not None:
            return np.stack([self.head(h).layout(seq_len, block_size) for h in range(self.num_heads)])
        keys = np.arange(seq_len)[None, :]
        block_starts = np.arange(0, seq_len, block_size)
        layout = np.zeros((len(block_starts), len(block_starts)), dtype=bool)
        for query_block, start in enumerate(block_starts):
            queries = np.arange(start, min(seq_len, start + block_size))
            rows = np.broadcast_to(self.allowed(queries[:, None], keys, seq_len), (len(queries), seq_len))
            layout[query_block] = np.logical_or.reduceat(rows.any(axis=0), block_starts)
        return layout

    def _store(self, **values) -> None:
        """Sets checked values of fields on the frozen dataclass (NumPy scalars become Python numbers)."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def check_fits(self, seq_len: int) -> None:
        """Raises a ValueError if the pattern cannot be applied to sequences of `seq_len` tokens."""

    def residue_strides(self) -> tuple[int, ...]:
        """Strides s > 1 whose residue classes (positions with equal `i % s`) hold many of this pattern's keys.

        A hint to the blocked kernel's planner, which then also tries computing keys with positions regrouped
        by residue (the Sparse Transformer's reshape): `Strided(s)`'s strided keys, `SlidingWindow`'s
        dilated band. Defaults to none; it never changes which keys are allowed.
        """
        return ()

    def describe(self, seq_len: int) -> dict:
        """Counts for `seq_len`: allowed pairs per head, density, and the attention FLOP ratio to dense.

        Example:

        >>> import keras_sparse as ks
        >>> ks.patterns.BlockLocal(block_size=4).describe(16)
        {'seq_len': 16, 'nnz': 64, 'density': 0.25, 'flop_ratio': 4.0}
        """
        seq_len = positive_int("seq_len", seq_len)
        mask = self.mask(seq_len)
        nnz = int(mask.sum()) // (self.num_heads or 1)
        return {"seq_len": seq_len, "nnz": nnz, "density": nnz / seq_len**2, "flop_ratio": seq_len**2 / nnz}

    def density(self, seq_len: int) -> float:
        """The fraction of (query, key) pairs allowed, averaged over heads."""
        return self.describe(seq_len)["density"]

    def plot(self, seq_len: int, path=None, title: str | None = None, overwrite: bool = False):
        """Draws the mask (one panel per head) with the block grid; writes a PNG if `path` is given.

        An existing file at `path` is replaced only with `overwrite=True` (else FileExistsError, before
        drawing). Needs matplotlib (`pip install keras-sparse[plot]`). Returns the matplotlib Figure.
        """
        from keras_sparse.patterns.plotting import plot_pattern

        return plot_pattern(self, seq_len, path, title, overwrite)

    def get_config(self) -> dict:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.init}

    @classmethod
    def from_config(cls, config: dict) -> Pattern:
        return cls(**config)

    def __or__(self, other: Pattern) -> Pattern:
        from keras_sparse.patterns.combined import Union

        return Union(self, other)

    def __and__(self, other: Pattern) -> Pattern:
        from keras_sparse.patterns.combined import Intersection

        return Intersection(self, other)
