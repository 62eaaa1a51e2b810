"""Plans for the token-level kernels: the (query, key) pairs a pattern allows, as flat index arrays."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns import Pattern

_ROWS_PER_CHUNK = 256


@dataclasses.dataclass(frozen=True, eq=False)
class TokenPairs:
    """The allowed (query, key) pairs of every head, sorted by head, query, key.

    Attributes:
        seq_len: tokens in the sequence.
        num_heads: attention heads (a shared pattern is repeated for each).
        query_rows: int32 `(nnz,)`, `head * seq_len + query position`.
        key_rows: int32 `(nnz,)`, `head * seq_len + key position`.
        bias: float32 `(nnz,)` logit bias of each pair, or None when the pattern adds none.
    """

    seq_len: int
    num_heads: int
    query_rows: np.ndarray
    key_rows: np.ndarray
    bias: np.ndarray | None = None

    @property
    def nnz(self) -> int:
        return len(self.query_rows)


def _head_pairs(pattern: Pattern, seq_len: int, causal: bool):
    """(query positions, key positions, bias or None) of one shared pattern."""
    keys = np.arange(seq_len)[None, :]
    queries, key_positions, biases = [], [], []
    for start in range(0, seq_len, _ROWS_PER_CHUNK):
        rows = np.arange(start, min(seq_len, start + _ROWS_PER_CHUNK))[:, None]
        allowed = np.broadcast_to(pattern.allowed(rows, keys, seq_len), (len(rows), seq_len))
        if causal:
            allowed = allowed & (keys <= rows)
        i, j = np.nonzero(allowed)
        queries.append(i + start)
        key_positions.append(j)
        bias = pattern.bias(rows, keys, seq_len)
        if bias is not None:
            biases.append(np.broadcast_to(bias, (len(rows), seq_len))[i, j])
    bias = np.concatenate(biases).astype(np.float32) if biases else None
    return np.concatenate(queries), np.concatenate(key_positions), bias


def plan_token_pairs(pattern: Pattern, seq_len: int, num_heads: int, causal: bool = False) -> TokenPairs:
    """Lists the pairs `pattern` allows (AND `key <= query` with `causal`), in O(nnz) memory.

    Example:

    >>> import keras_sparse as ks
    >>> pairs = ks.kernels.plan_token_pairs(ks.patterns.BlockLocal(block_size=2), seq_len=4, num_heads=1)
    >>> pairs.query_rows.tolist(), pairs.key_rows.tolist()
    ([0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 0, 1, 2, 3, 2, 3])
    """
    pattern.check_fits(seq_len)
    shared = _head_pairs(pattern, seq_len, causal) if pattern.num_heads is None else None
    query_rows, key_rows, biases, any_bias = [], [], [], False
    for head in range(num_heads):
        queries, keys, bias = shared or _head_pairs(pattern.head(head), seq_len, causal)
        query_rows.append(queries + head * seq_len)
        key_rows.append(keys + head * seq_len)
        biases.append(np.zeros(len(queries), np.float32) if bias is None else bias)
        any_bias |= bias is not None
    return TokenPairs(
        seq_len=seq_len,
        num_heads=num_heads,
        query_rows=np.concatenate(query_rows).astype(np.int32),
        key_rows=np.concatenate(key_rows).astype(np.int32),
        bias=np.concatenate(biases) if any_bias else None,
    )
