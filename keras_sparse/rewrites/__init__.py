"""Model rewrites: copies of a model with layers swapped or set, at any depth, keeping every weight.

- `sparsify`: multi-head attention becomes `SparseMultiHeadAttention` (keras-hub models included).
- `exportable`, `centered_layer_norms`, `with_max_query_blocks`, `with_blockwise_softmax`: the same numbers in
  forms the TFLite converter handles better.
- `rewrite_layers`: the general copy with replacements; `attention_sites`: where a model's attention is.
"""

from keras_sparse.rewrites.attention_sites import AttentionSite, attention_sites
from keras_sparse.rewrites.for_export import (
    centered_layer_norms,
    exportable,
    with_blockwise_softmax,
    with_max_query_blocks,
)
from keras_sparse.rewrites.rewrite_layers import rewritable, rewrite_layers
from keras_sparse.rewrites.sparsify import AttentionLeftDenseWarning, sparsify

__all__ = [
    "AttentionLeftDenseWarning",
    "AttentionSite",
    "attention_sites",
    "centered_layer_norms",
    "exportable",
    "rewritable",
    "rewrite_layers",
    "sparsify",
    "with_blockwise_softmax",
    "with_max_query_blocks",
]
