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

DEFAULT_BLOCK_SIZE = 64
"""Block size used by patterns that do not fix one themselves (token-level patterns)."""

_SERIALIZATION_PACKAGE = "keras_sparse"


def register(cls):
    """Registers a pattern class for `.keras` serialization under `keras_sparse>Name`."""
    return keras.saving.register_keras_serializable(package=_SERIALIZATION_PACKAGE)(cls)


def check_positive_int(name: str, value, allow_zero: bool = False) -> int:
    """Returns `value` if it is a (non-negative with `allow_zero`) integer, else raises a ValueError naming it."""
    lowest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lowest:
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a {kind} integer. Received: {name}={value!r}"
        )
    return int(value)


def check_seq_len(seq_len) -> int:
    return check_positive_int("seq_len", seq_len)


def num_blocks_for(seq_len: int, block_size: int) -> int:
    """Blocks needed to cover `seq_len` tokens (the last one may be partial)."""
    return math.ceil(seq_len / block_size)


class Pattern:
    """Base class of attention patterns.

    Subclasses are frozen dataclasses and implement `allowed`. Patterns combine
    with `|` (a key is allowed if either pattern allows it) and `&` (if both do).

    Example:

    >>> import keras_sparse as ks
    >>> p = ks.patterns.SlidingWindow(window_size=2) | ks.patterns.BlockLocal(block_size=4)
    >>> p.mask(6).astype(int)[0]
    array([1, 1, 1, 1, 0, 0])
    """

    block_size: int | None = None
    """The block size this pattern is defined on, or None if it is token-level (kernels then choose)."""

    def allowed(self, query_index: np.ndarray, key_index: np.ndarray, seq_len: int) -> np.ndarray:
        """True where query `query_index` may attend key `key_index` (broadcasting integer arrays).

        Kernels may also evaluate it for query positions in the padded tail of the
        last block (`seq_len <= i < num_blocks * block_size`); the result there is ignored.
        """
        raise NotImplementedError

    def mask(self, seq_len: int) -> np.ndarray:
        """The exact token mask: bool array `(seq_len, seq_len)`, True where query i may attend key j."""
        seq_len = check_seq_len(seq_len)
        self.check_fits(seq_len)
        positions = np.arange(seq_len)
        return np.broadcast_to(self.allowed(positions[:, None], positions[None, :], seq_len), (seq_len, seq_len))

    def resolve_block_size(self, block_size: int | None = None) -> int:
        """The block size a kernel should use: the argument, else the pattern's own, else the default."""
        if block_size is not None:
            block_size = check_positive_int("block_size", block_size)
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
        """The block mask `(num_blocks, num_blocks)`: True where any query of block r may attend any key of block c.

        `num_blocks = ceil(seq_len / block_size)`; the last block may be partial.
        """
        seq_len = check_seq_len(seq_len)
        self.check_fits(seq_len)
        block_size = self.resolve_block_size(block_size)
        num_blocks = num_blocks_for(seq_len, block_size)
        keys = np.arange(seq_len)[None, :]
        padded = np.zeros((num_blocks, num_blocks * block_size), dtype=bool)
        for query_block in range(num_blocks):
            queries = np.arange(query_block * block_size, min(seq_len, (query_block + 1) * block_size))
            rows = np.broadcast_to(self.allowed(queries[:, None], keys, seq_len), (len(queries), seq_len))
            padded[query_block, :seq_len] = rows.any(axis=0)
        return padded.reshape(num_blocks, num_blocks, block_size).any(axis=-1)

    def check_fits(self, seq_len: int) -> None:
        """Raises a ValueError if the pattern cannot be applied to sequences of `seq_len` tokens."""

    def get_config(self) -> dict:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict) -> Pattern:
        return cls(**config)

    def __or__(self, other: Pattern) -> Pattern:
        from keras_sparse.patterns.combined import Union

        return Union(self, other)

    def __and__(self, other: Pattern) -> Pattern:
        from keras_sparse.patterns.combined import Intersection

        return Intersection(self, other)
