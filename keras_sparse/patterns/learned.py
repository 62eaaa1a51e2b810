"""`Learned`: a block layout given as data (for example, one the pruning callbacks learned)."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns.pattern import Pattern, num_blocks_for, register
from keras_sparse.validation import invalid_argument, positive_int


@register
@dataclasses.dataclass(frozen=True)
class Learned(Pattern):
    """Query i attends key j iff `layout[i // block_size, j // block_size]` (per head with a 3-D layout).

    Args:
        layout: array `(num_blocks, num_blocks)`, or `(num_heads, num_blocks, num_blocks)` for a
            per-head pattern, of bools or of the numbers 0 and 1; at least one block kept per head.
            Sequences must need exactly `num_blocks` blocks.

    Raises:
        ValueError: naming `layout` if it is not square, holds other values (NaN, 2, strings), or keeps
            no block for some head (attention over no keys is undefined).
        block_size: int. Tokens per block.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> ks.patterns.Learned(np.eye(2, dtype=bool), block_size=2).mask(4).astype(int)[0]
    array([1, 1, 0, 0])
    """

    layout_blocks: tuple
    block_size: int
    num_heads: int | None = dataclasses.field(default=None, init=False)

    def __init__(self, layout, block_size: int):
        blocks = _layout_blocks(layout)
        object.__setattr__(self, "layout_blocks", _to_tuples(blocks))
        object.__setattr__(self, "block_size", positive_int("block_size", block_size))
        object.__setattr__(self, "num_heads", blocks.shape[0] if blocks.ndim == 3 else None)

    def __repr__(self):
        blocks = self.blocks
        heads = "" if self.num_heads is None else f", num_heads={self.num_heads}"
        size = blocks.shape[-1]
        return f"Learned(<{size}x{size} blocks, {blocks.mean():.0%} kept>, block_size={self.block_size}{heads})"

    @property
    def blocks(self) -> np.ndarray:
        return np.array(self.layout_blocks, dtype=bool)

    def head(self, index):
        return self if self.num_heads is None else Learned(self.blocks[index], self.block_size)

    def check_fits(self, seq_len):
        needed, have = num_blocks_for(seq_len, self.block_size), self.blocks.shape[-1]
        if needed != have:
            raise ValueError(
                f"Received an invalid value for argument `seq_len`: the learned layout has {have} blocks of "
                f"{self.block_size} tokens, a sequence of {seq_len} tokens needs {needed}. Use sequences of "
                f"{(have - 1) * self.block_size + 1} to {have * self.block_size} tokens."
            )

    def allowed(self, query_index, key_index, seq_len):
        return self.blocks[np.asarray(query_index) // self.block_size, np.asarray(key_index) // self.block_size]

    def layout(self, seq_len, block_size=None):
        self.resolve_block_size(block_size)
        self.check_fits(positive_int("seq_len", seq_len))
        return self.blocks

    def get_config(self):
        return {"layout": self.blocks.tolist(), "block_size": self.block_size}


def _layout_blocks(layout) -> np.ndarray:
    """`layout` as a bool array if it is a square (or per-head square) array of bools or 0/1 numbers."""
    try:
        array = np.asarray(layout)
    except ValueError:  # ragged nested lists
        array = np.asarray(layout, dtype=object)
    if array.ndim not in (2, 3) or array.shape[-1] != array.shape[-2] or array.shape[-1] == 0:
        raise invalid_argument(
            "layout",
            "a square array (num_blocks, num_blocks) or (num_heads, num_blocks, num_blocks)",
            f"layout.shape={array.shape}",
        )
    if array.dtype != bool:
        numeric = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
        if not numeric or not np.isin(array, (0, 1)).all():
            received = f"layout holding {np.unique(array[~np.isin(array, (0, 1))])}" if numeric else None
            raise invalid_argument(
                "layout",
                "bools or the numbers 0 and 1 (True or 1 keeps a block)",
                received or f"layout.dtype={array.dtype}",
            )
    blocks = array.astype(bool)
    empty = [int(h) for h in np.flatnonzero(~blocks.reshape(-1, blocks.shape[-1] ** 2).any(axis=1))]
    if empty:
        where = "" if blocks.ndim == 2 else f" for heads {empty}"
        raise invalid_argument(
            "layout", "at least one kept block per head (attention over no keys is undefined)", f"all False{where}"
        )
    return blocks


def _to_tuples(array: np.ndarray):
    return tuple(_to_tuples(row) for row in array) if array.ndim > 1 else tuple(bool(v) for v in array)
