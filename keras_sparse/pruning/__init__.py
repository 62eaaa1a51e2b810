"""Structured pruning for Keras 3 models, as callbacks: `StructuredPruning` during `fit`, then `finalize`.

Example:

>>> import keras_sparse as ks
>>> callback = ks.pruning.StructuredPruning(
...     ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=200, end_step=2000), structure="heads")

Pruning reaches attention and Dense layers at any depth: in nested functional and Sequential models,
in keras-sparse's and keras-hub's Transformer blocks (`composites`), and in keras-hub backbones and tasks.
Custom layers can list their feed-forward pairs with a `prunable_neuron_pairs()` method returning
`(first Dense, second Dense)` pairs; `finalize` keeps custom layers at full size.
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
