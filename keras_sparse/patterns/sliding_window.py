"""`SlidingWindow`: Longformer's band of local attention, with dilation and global tokens."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.patterns.pattern import Pattern, band_layout, register
from keras_sparse.validation import invalid_argument, is_integer, optional_positive_int, positive_int


@register
@dataclasses.dataclass(frozen=True)
class SlidingWindow(Pattern):
    """Query i attends key j iff `|i - j| <= window_size // 2` (and, with `dilation` d > 1, `(i - j) % d == 0`).

    Each index in `global_tokens` attends every key, and every query attends it
    (Longformer's global attention, e.g. on a [CLS] token).

    Args:
        window_size: int. Width of the band; each query sees `window_size // 2` keys on either side.
        global_tokens: tuple of int. Positions with global attention. Defaults to `()`.
        dilation: int. Keep every `dilation`-th key inside the band. Defaults to 1.
        block_size: optional int. Block size for the gathered-block kernel (default 64).

    Example:

    >>> import keras_sparse as ks
    >>> ks.patterns.SlidingWindow(window_size=2, global_tokens=(0,)).mask(4).astype(int)
    array([[1, 1, 1, 1],
           [1, 1, 1, 0],
           [1, 1, 1, 1],
           [1, 0, 1, 1]])

    Reference: Beltagy et al. 2020, "Longformer: The Long-Document Transformer".
    """

    length_independent = True

    window_size: int
    global_tokens: tuple[int, ...] = ()
    dilation: int = 1
    block_size: int | None = None

    def __post_init__(self):
        tokens = self.global_tokens
        if isinstance(tokens, np.ndarray):
            tokens = tokens.tolist() if tokens.ndim == 1 else None
        if not isinstance(tokens, (list, tuple)) or not all(is_integer(t) and t >= 0 for t in tokens):
            raise invalid_argument(
                "global_tokens", "a tuple of non-negative integers", f"global_tokens={self.global_tokens!r}"
            )
        self._store(
            window_size=positive_int("window_size", self.window_size),
            global_tokens=tuple(sorted({int(t) for t in tokens})),
            dilation=positive_int("dilation", self.dilation),
            block_size=optional_positive_int("block_size", self.block_size),
        )

    def check_fits(self, seq_len):
        outside = [t for t in self.global_tokens if t >= seq_len]
        if outside:
            raise ValueError(
                f"Received an invalid value for argument `seq_len`: global_tokens={outside} lie outside a sequence of "
                f"{seq_len} tokens. Use a longer sequence or global tokens below {seq_len}."
            )

    def layout(self, seq_len, block_size=None):
        seq_len = positive_int("seq_len", seq_len)
        self.check_fits(seq_len)
        block_size = self.resolve_block_size(block_size)
        layout = band_layout(seq_len, block_size, self.window_size // 2, self.dilation)
        blocks = np.unique(np.asarray(self.global_tokens, dtype=int) // block_size)
        layout[blocks, :] = layout[:, blocks] = True
        return layout

    def residue_strides(self):
        return (self.dilation,) if self.dilation > 1 else ()

    def allowed(self, query_index, key_index, seq_len):
        query_index, key_index = np.asarray(query_index), np.asarray(key_index)
        offset = query_index - key_index
        band = np.abs(offset) <= self.window_size // 2
        if self.dilation > 1:
            band &= offset % self.dilation == 0
        if self.global_tokens:
            band = band | np.isin(query_index, self.global_tokens) | np.isin(key_index, self.global_tokens)
        return band
