"""Representative and verification data: arrays, `tf.data.Dataset`s or generators, as batch-1 samples."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf


def as_samples(data, input_ranks: Sequence[int], limit: int | None = None, name: str = "representative_data"):
    """Splits `data` into single samples: lists with one batch-1 array per model input.

    `data` is an array `(N, ...)` (or a list of them, one per input), a `tf.data.Dataset`, or an iterable;
    the last two may yield batches or single samples (told apart by the inputs' ranks, `input_ranks`,
    batch axis included). Takes at most `limit` samples.

    Example:

    >>> [s[0].shape for s in as_samples(np.zeros((3, 5, 2)), input_ranks=[3], limit=2)]
    [(1, 5, 2), (1, 5, 2)]
    """
    if isinstance(data, tf.data.Dataset):
        data = data.as_numpy_iterator()
    elif isinstance(data, np.ndarray) or (isinstance(data, (list, tuple)) and data and _all_arrays(data)):
        data = [data]  # one batch
    if not isinstance(data, Iterable):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected an array, a list of arrays (one per input), "
            f"a tf.data.Dataset or an iterable of samples or batches. Received: {type(data).__name__}"
        )
    samples = []
    for item in data:
        arrays = [np.asarray(a) for a in (item if isinstance(item, (list, tuple)) else [item])]
        if len(arrays) != len(input_ranks):
            raise ValueError(
                f"Received an invalid value for argument `{name}`: items have {len(arrays)} arrays but the model "
                f"has {len(input_ranks)} inputs."
            )
        if all(a.ndim == rank for a, rank in zip(arrays, input_ranks, strict=True)):
            samples.extend([a[i : i + 1] for a in arrays] for i in range(len(arrays[0])))
        elif all(a.ndim == rank - 1 for a, rank in zip(arrays, input_ranks, strict=True)):
            samples.append([a[None] for a in arrays])
        else:
            raise ValueError(
                f"Received an invalid value for argument `{name}`: arrays of ranks {[a.ndim for a in arrays]} "
                f"do not fit inputs of rank {list(input_ranks)} (batch axis included)."
            )
        if limit is not None and len(samples) >= limit:
            break
    return list(itertools.islice(samples, limit))


def _all_arrays(items) -> bool:
    return all(isinstance(a, np.ndarray) for a in items)
