"""Structured pruning for Keras 3 models, as callbacks: `StructuredPruning` during `fit`, then `finalize`.

Example:

>>> import keras_sparse as ks
>>> callback = ks.pruning.StructuredPruning(
...     ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=200, end_step=2000), structure="heads")

Custom layers take part through two optional methods: `prunable_neuron_pairs()` (a list of
`(first Dense, second Dense)` for "neurons") and `finalized()` (their smaller copy, for `finalize`).
Attention and Dense layers nested in them are found as they are.
"""

from keras_sparse.pruning.attention_blocks import AttentionBlocks
from keras_sparse.pruning.callbacks import STRUCTURES, PruningLogger, StructuredPruning
from keras_sparse.pruning.finalize import finalize
from keras_sparse.pruning.masks import PruningMask
from keras_sparse.pruning.report import LayerPruning, pruning_rows, report
from keras_sparse.pruning.schedules import ConstantSparsity, PolynomialDecay, PruningSchedule
from keras_sparse.pruning.structures import Blocks, Heads, Neurons, NOfM

__all__ = [
    "STRUCTURES",
    "AttentionBlocks",
    "Blocks",
    "ConstantSparsity",
    "Heads",
    "LayerPruning",
    "NOfM",
    "Neurons",
    "PolynomialDecay",
    "PruningLogger",
    "PruningMask",
    "PruningSchedule",
    "StructuredPruning",
    "finalize",
    "pruning_rows",
    "report",
]
