"""Attention patterns: plain, seeded, serializable descriptions of which keys each query attends.

Every pattern gives `mask(seq_len)`, the exact token mask kernels honour, and
`layout(seq_len)`, its block mask for the gathered-block kernel.
"""

from keras_sparse.patterns.big_bird import BigBird
from keras_sparse.patterns.block_local import BlockLocal
from keras_sparse.patterns.combined import Intersection, Union
from keras_sparse.patterns.dense import Dense
from keras_sparse.patterns.pattern import DEFAULT_BLOCK_SIZE, Pattern
from keras_sparse.patterns.sliding_window import SlidingWindow

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "BigBird",
    "BlockLocal",
    "Dense",
    "Intersection",
    "Pattern",
    "SlidingWindow",
    "Union",
]
