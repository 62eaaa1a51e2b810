"""`LSH`: Reformer's locality-sensitive-hashing attention, a pattern that depends on the input."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from keras_sparse.patterns.pattern import Pattern, register
from keras_sparse.validation import invalid_argument, non_negative_int, positive_int


@register
@dataclasses.dataclass(frozen=True)
class LSH(Pattern):
    """Reformer attention: queries attend the keys that hash to their bucket, found by sorting and chunking.

    Queries and keys share one projection (the layer's query projection; keys are its
    L2-normalised rows, as in the paper), so a vector and its key hash alike. For each of
    `num_hashes` rounds, with a seeded random rotation R per head and round, position i falls
    in bucket `argmax([x_i R, -x_i R])`. Positions are sorted by (bucket, position) and cut
    into chunks of `chunk_size`; a query attends the keys of its own bucket in its chunk and
    the previous one (cyclically), never itself unless it has no other key. Rounds are combined
    as in the paper: each round's output weighted by the softmax over rounds of its
    log-normaliser. The layer pads the sequence to a multiple of `chunk_size`.

    The pattern depends on the input, so it has no static `mask`; `buckets(keys)` gives the
    hashes, from which a test rebuilds the mask of every round.

    Args:
        num_buckets: even int >= 2. Buckets per round.
        num_hashes: int. Hash rounds. Defaults to 1.
        chunk_size: int. Tokens per chunk. Defaults to 64.
        seed: int. Seed of the random rotations. Defaults to 0.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> lsh = ks.patterns.LSH(num_buckets=4, chunk_size=8)
    >>> lsh.buckets(np.eye(3, 2)[None, :, None, :]).shape   # (batch, heads, rounds, length)
    (1, 1, 1, 3)

    Reference: Kitaev et al. 2020, "Reformer: The Efficient Transformer".
    """

    num_buckets: int
    num_hashes: int = 1
    chunk_size: int = 64
    seed: int = 0

    def __post_init__(self):
        self._store(
            num_buckets=positive_int("num_buckets", self.num_buckets),
            num_hashes=positive_int("num_hashes", self.num_hashes),
            chunk_size=positive_int("chunk_size", self.chunk_size),
            seed=non_negative_int("seed", self.seed),
        )
        if self.num_buckets < 2 or self.num_buckets % 2:
            raise invalid_argument(
                "num_buckets",
                "an even integer >= 2 (random rotations give buckets in +/- pairs)",
                f"num_buckets={self.num_buckets}",
            )

    dynamic = True
    """The pattern depends on the input: kernels hash at run time."""

    def allowed(self, query_index, key_index, seq_len):
        raise ValueError(
            "LSH attention depends on the input, so it has no static mask or layout: the layer computes it "
            "with its LSH kernel. Use `buckets(keys)` to see the hashes."
        )

    @functools.lru_cache(maxsize=8)  # noqa: B019 (patterns are small, immutable and hashable)
    def rotations(self, num_heads: int, key_dim: int) -> np.ndarray:
        """float32 `(num_heads, num_hashes, key_dim, num_buckets // 2)` random rotations, fixed by the seed."""
        rng = np.random.default_rng(self.seed)
        rotations = rng.normal(size=(num_heads, self.num_hashes, key_dim, self.num_buckets // 2)).astype(np.float32)
        rotations.flags.writeable = False
        return rotations

    def buckets(self, keys: np.ndarray) -> np.ndarray:
        """Buckets of keys `(batch, length, heads, dim)`: int `(batch, heads, num_hashes, length)`."""
        keys = np.asarray(keys, np.float32)
        rotated = np.einsum("bthd,hrdn->bhrtn", keys, self.rotations(keys.shape[2], keys.shape[3]))
        return np.argmax(np.concatenate([rotated, -rotated], axis=-1), axis=-1)
