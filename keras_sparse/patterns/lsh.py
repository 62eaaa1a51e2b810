"""`LSH`: Reformer's locality-sensitive-hashing attention, a pattern that depends on the input."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from keras_sparse.patterns.pattern import Pattern, register
from keras_sparse.validation import invalid_argument, non_negative_int, one_of, positive_int

SEMANTICS = ("same_bucket", "trax")


@register
@dataclasses.dataclass(frozen=True)
class LSH(Pattern):
    """Reformer attention: queries attend keys that hash alike, found by sorting and chunking.

    Queries and keys share one projection (the layer's query projection), so a vector and its key
    hash alike. For each of `num_hashes` rounds, with a seeded random rotation R per head and round,
    position i falls in bucket `argmax([x_i R, -x_i R])` (with factorized `num_buckets=(f1, f2, ...)`,
    R is cut into pieces of `f/2` columns, and the pieces' buckets combine as `b1 + f1 * b2 + ...`,
    as transformers' list-valued `num_buckets`). Positions are sorted by (bucket, position) and cut
    into chunks of `chunk_size`; a query attends keys in its chunk, `num_chunks_before` chunks before
    it and `num_chunks_after` after it (cyclically). Each round's output is weighted by the softmax
    over rounds of its log-normaliser. The layer pads the sequence to a multiple of `chunk_size`.

    `semantics` says which keys of those chunks, and how:
    - "same_bucket" (the default, as the paper describes it): only keys of the query's own bucket;
      each round is sorted and chunked on its own; keys are the L2-normalised projections and scores
      are scaled by `1/sqrt(key_dim)`; a query attends itself only when it has no other key.
    - "trax" (trax's and transformers' `LSHSelfAttention`): every key of those chunks, whatever its
      bucket; the rounds' sorted sequences are chained, so the first chunk of a round looks back at
      the last chunk of the round before; padding keys are hashed into an extra last bucket; keys are
      `x / sqrt(mean(x^2) + 1e-6) / sqrt(key_dim)` and the query is not scaled; a query's score
      against its own position is always pushed below every other key (transformers: -1e5), so it
      attends itself only when no other key is allowed; a key listed twice (the same chunk reached
      from two sides) counts twice. Sequences of at most `chunk_size` tokens get plain attention
      under the same rules, without hashing, as in transformers.

    The pattern depends on the input, so it has no static `mask`; `buckets(keys)` gives the
    hashes, from which a test rebuilds the mask of every round. The rotations are a non-trainable
    weight of the layer, `lsh_rotations`, drawn from `rotations()` and replaceable (transformers draws
    new ones on every call unless `hash_seed` is set; `keras_sparse.models.from_huggingface` loads
    the ones a checkpoint folder records).

    Args:
        num_buckets: even int >= 2, or a tuple of them (factorized). Buckets per round.
        num_hashes: int. Hash rounds. Defaults to 1.
        chunk_size: int. Tokens per chunk. Defaults to 64.
        seed: int. Seed of the random rotations. Defaults to 0.
        num_chunks_before: int. Chunks before a query's own that it attends. Defaults to 1.
        num_chunks_after: int. Chunks after it. Defaults to 0.
        semantics: "same_bucket" (default) or "trax", as above.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> lsh = ks.patterns.LSH(num_buckets=4, chunk_size=8)
    >>> lsh.buckets(np.eye(3, 2)[None, :, None, :]).shape   # (batch, heads, rounds, length)
    (1, 1, 1, 3)

    Reference: Kitaev et al. 2020, "Reformer: The Efficient Transformer"; trax's `LSHSelfAttention`.
    """

    num_buckets: int | tuple[int, ...]
    num_hashes: int = 1
    chunk_size: int = 64
    seed: int = 0
    num_chunks_before: int = 1
    num_chunks_after: int = 0
    semantics: str = "same_bucket"

    def __post_init__(self):
        factors = self.num_buckets if isinstance(self.num_buckets, (list, tuple)) else (self.num_buckets,)
        factors = tuple(positive_int("num_buckets", factor) for factor in factors)
        if not factors or any(f < 2 or f % 2 for f in factors):
            raise invalid_argument(
                "num_buckets",
                "an even integer >= 2 or a tuple of them (random rotations give buckets in +/- pairs)",
                f"num_buckets={self.num_buckets}",
            )
        self._store(
            num_buckets=factors if isinstance(self.num_buckets, (list, tuple)) else factors[0],
            num_hashes=positive_int("num_hashes", self.num_hashes),
            chunk_size=positive_int("chunk_size", self.chunk_size),
            seed=non_negative_int("seed", self.seed),
            num_chunks_before=non_negative_int("num_chunks_before", self.num_chunks_before),
            num_chunks_after=non_negative_int("num_chunks_after", self.num_chunks_after),
            semantics=one_of("semantics", self.semantics, SEMANTICS),
        )

    dynamic = True
    """The pattern depends on the input: kernels hash at run time."""

    @property
    def bucket_factors(self) -> tuple[int, ...]:
        """`num_buckets` as a tuple of factors (one factor when it is an int)."""
        return self.num_buckets if isinstance(self.num_buckets, tuple) else (self.num_buckets,)

    @property
    def total_buckets(self) -> int:
        """Buckets per round: the product of the factors."""
        return math.prod(self.bucket_factors)

    def allowed(self, query_index, key_index, seq_len):
        raise ValueError(
            "LSH attention depends on the input, so it has no static mask or layout: the layer computes it "
            "with its LSH kernel. Use `buckets(keys)` to see the hashes."
        )

    @functools.lru_cache(maxsize=8)  # noqa: B019 (patterns are small, immutable and hashable)
    def rotations(self, num_heads: int, key_dim: int) -> np.ndarray:
        """float32 `(num_heads, num_hashes, key_dim, sum(factors) // 2)` random rotations, fixed by the seed."""
        rng = np.random.default_rng(self.seed)
        shape = (num_heads, self.num_hashes, key_dim, sum(self.bucket_factors) // 2)
        rotations = rng.normal(size=shape).astype(np.float32)
        rotations.flags.writeable = False
        return rotations

    def buckets(self, keys: np.ndarray, rotations: np.ndarray | None = None) -> np.ndarray:
        """Buckets of keys `(batch, length, heads, dim)`: int `(batch, heads, num_hashes, length)`.

        `rotations` defaults to `rotations(heads, dim)`."""
        keys = np.asarray(keys, np.float32)
        if rotations is None:
            rotations = self.rotations(keys.shape[2], keys.shape[3])
        rotated = np.einsum("bthd,hrdn->bhrtn", keys, rotations)
        buckets, start, scale = 0, 0, 1
        for factor in self.bucket_factors:
            piece = rotated[..., start : start + factor // 2]
            buckets = buckets + scale * np.argmax(np.concatenate([piece, -piece], axis=-1), axis=-1)
            start, scale = start + factor // 2, scale * factor
        return buckets
