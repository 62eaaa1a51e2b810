"""`RandomKeys`: a local window plus keys sampled at random, re-weighted to stand in for the rest."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from keras_sparse.patterns.pattern import Pattern, band_layout, register
from keras_sparse.validation import boolean, non_negative_int, optional_positive_int, positive_int


@register
@dataclasses.dataclass(frozen=True)
class RandomKeys(Pattern):
    """Each query attends its local window plus `num_keys` keys drawn at random outside it.

    Query i's local keys are `|i - j| <= local_window // 2` (none when `local_window=0`); its
    candidates are the other keys, and `k_i = min(num_keys, candidates_i)` of them are drawn
    without replacement, row by row with `np.random.default_rng(seed)`, fixed for a sequence length.

    With `reweight=True` the drawn keys stand in for all candidates: inside the softmax each drawn
    key's weight is multiplied by `candidates_i / k_i` (a logit bias of `log(candidates_i / k_i)`), so

        out_i = (sum_local e^s v + (candidates_i / k_i) * sum_drawn e^s v)
                / (sum_local e^s + (candidates_i / k_i) * sum_drawn e^s)

    a self-normalised importance-sampling estimate of dense attention whose error falls as
    `num_keys` grows; with `num_keys` = all candidates it is dense attention exactly.

    Args:
        num_keys: int. Keys drawn per query.
        seed: int. Defaults to 0.
        reweight: bool. Defaults to True.
        local_window: int. Width of the local band (0 for none). Defaults to 0.
        block_size: optional int. Block size for the gathered-block kernel (default 64).

    Example:

    >>> import keras_sparse as ks
    >>> p = ks.patterns.RandomKeys(num_keys=3, local_window=2)
    >>> p.mask(50).sum(axis=1)[:3].tolist()
    [5, 6, 6]
    """

    num_keys: int
    seed: int = 0
    reweight: bool = True
    local_window: int = 0
    block_size: int | None = None

    def __post_init__(self):
        self._store(
            num_keys=positive_int("num_keys", self.num_keys),
            seed=non_negative_int("seed", self.seed),
            reweight=boolean("reweight", self.reweight),
            local_window=non_negative_int("local_window", self.local_window),
            block_size=optional_positive_int("block_size", self.block_size),
        )

    def check_fits(self, seq_len):
        if self.num_keys > seq_len:
            raise ValueError(
                f"Received an invalid value for argument `num_keys`: {self.num_keys} keys cannot be drawn from a "
                f"sequence of seq_len={seq_len} tokens. Use num_keys <= seq_len."
            )

    def _local(self, query_index, key_index):
        if self.local_window == 0:
            return np.zeros(np.broadcast_shapes(np.shape(query_index), np.shape(key_index)), dtype=bool)
        return np.abs(np.asarray(query_index) - np.asarray(key_index)) <= self.local_window // 2

    @functools.lru_cache(maxsize=8)  # noqa: B019 (patterns are small, immutable and hashable)
    def _draws(self, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted `query * seq_len + key` codes of the drawn pairs, and each query's logit bias."""
        rng = np.random.default_rng(self.seed)
        keys = np.arange(seq_len)
        codes, row_bias = [], np.zeros(seq_len, np.float32)
        for query in range(seq_len):
            candidates = keys[~self._local(query, keys)]
            count = min(self.num_keys, len(candidates))
            if count:
                codes.append(query * seq_len + rng.choice(candidates, size=count, replace=False))
                row_bias[query] = np.log(len(candidates) / count)
        codes = np.sort(np.concatenate(codes)) if codes else np.zeros(0, np.int64)
        codes.flags.writeable = row_bias.flags.writeable = False
        return codes, row_bias

    def _drawn(self, query_index, key_index, seq_len):
        codes, _ = self._draws(seq_len)
        wanted = np.asarray(query_index) * seq_len + np.asarray(key_index)
        if not len(codes):
            return np.zeros(np.shape(wanted), bool)
        found = codes[np.minimum(np.searchsorted(codes, wanted), len(codes) - 1)]
        return (np.asarray(key_index) < seq_len) & (found == wanted)

    def layout(self, seq_len, block_size=None):
        seq_len = positive_int("seq_len", seq_len)
        self.check_fits(seq_len)
        block_size = self.resolve_block_size(block_size)
        layout = band_layout(seq_len, block_size, self.local_window // 2)
        if not self.local_window:
            layout[:] = False
        codes, _ = self._draws(seq_len)
        layout[codes // seq_len // block_size, codes % seq_len // block_size] = True
        return layout

    def allowed(self, query_index, key_index, seq_len):
        return self._local(query_index, key_index) | self._drawn(query_index, key_index, seq_len)

    def bias(self, query_index, key_index, seq_len):
        if not self.reweight:
            return None
        _, row_bias = self._draws(seq_len)
        rows = row_bias[np.minimum(np.asarray(query_index), seq_len - 1)]
        return np.where(self._drawn(query_index, key_index, seq_len), rows, np.float32(0)).astype(np.float32)
