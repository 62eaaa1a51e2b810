"""Attention patterns: plain, seeded, serializable descriptions of which keys each query attends.

Every pattern gives `mask(seq_len)`, the exact token mask kernels honour, and
`layout(seq_len)`, its block mask for the gathered-block kernel.
"""

from keras_sparse.patterns.big_bird import BigBird
from keras_sparse.patterns.block_local import BlockLocal
from keras_sparse.patterns.combined import Intersection, Union
from keras_sparse.patterns.dense import Dense
from keras_sparse.patterns.distance_decay import DistanceDecay
from keras_sparse.patterns.fixed import Fixed
from keras_sparse.patterns.learned import Learned
from keras_sparse.patterns.lsh import LSH
from keras_sparse.patterns.pattern import DEFAULT_BLOCK_SIZE, Pattern
from keras_sparse.patterns.per_head import PerHead
from keras_sparse.patterns.random_keys import RandomKeys
from keras_sparse.patterns.sliding_window import SlidingWindow
from keras_sparse.patterns.strided import Strided

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "BigBird",
    "BlockLocal",
    "Dense",
    "DistanceDecay",
    "Fixed",
    "Intersection",
    "LSH",
    "Learned",
    "Pattern",
    "PerHead",
    "RandomKeys",
    "SlidingWindow",
    "Strided",
    "Union",
]
