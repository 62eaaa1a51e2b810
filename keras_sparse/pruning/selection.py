"""Which units to keep: pure NumPy rules shared by the pruning structures."""

from __future__ import annotations

import math

import numpy as np


def keep_count(total: int, sparsity: float, minimum: int = 1) -> int:
    """Units kept when `sparsity` of `total` are removed (rounding the removal down), at least `minimum`."""
    return max(minimum, total - math.floor(sparsity * total + 1e-9))


def keep_largest(scores: np.ndarray, count: int, alive: np.ndarray | None = None) -> np.ndarray:
    """Bool mask of the `count` largest scores (earlier index first on ties); units not `alive` never return.

    Example:

    >>> keep_largest(np.array([3.0, 1.0, 2.0, 5.0]), 2)
    array([ True, False, False,  True])
    """
    scores = np.asarray(scores, dtype=np.float64).copy()
    if alive is not None:
        scores[~alive] = -np.inf
        count = min(count, int(alive.sum()))
    order = np.argsort(-scores, kind="stable")
    kept = np.zeros(scores.shape, dtype=bool)
    kept[order[:count]] = True
    return kept


def n_of_m(matrix: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keeps the n largest |weights| of every m consecutive inputs (rows) of each output (column).

    Example:

    >>> n_of_m(np.array([[1.0], [-4.0], [3.0], [2.0]]), n=2, m=4)[:, 0]
    array([False,  True,  True, False])
    """
    inputs, outputs = matrix.shape
    groups = np.abs(matrix).reshape(inputs // m, m, outputs)
    rank = np.argsort(np.argsort(-groups, axis=1, kind="stable"), axis=1, kind="stable")
    return (rank < n).reshape(inputs, outputs)


def blocks(matrix: np.ndarray, block_shape: tuple[int, int], sparsity: float, alive: np.ndarray) -> np.ndarray:
    """Removes the `sparsity` fraction of (input x output) blocks with the smallest L2 norm.

    `block_shape` is (inputs, outputs) per block; `alive` the current mask (removed blocks stay removed).
    """
    rows, cols = block_shape
    inputs, outputs = matrix.shape
    grid = (inputs // rows, rows, outputs // cols, cols)
    norms = np.sqrt((matrix.reshape(grid) ** 2).sum(axis=(1, 3)))
    alive_blocks = alive.reshape(grid).all(axis=(1, 3))
    kept = keep_largest(norms.ravel(), keep_count(norms.size, sparsity), alive_blocks.ravel())
    return np.repeat(np.repeat(kept.reshape(norms.shape), rows, axis=0), cols, axis=1)
