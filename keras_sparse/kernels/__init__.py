"""Kernels: ways to compute attention restricted to a pattern.

- `gathered_block_attention` (plan from `plan_gathered_blocks`): fast, TFLite builtins only; with
  `blockwise_softmax=True` its softmax is taken in two levels (`blockwise_softmax`), for accurate int8 files.
- `sparse_attention` (plan from `plan_token_pairs`): `tf.sparse`, any pattern at O(nnz) memory; not exportable.
- `segment_attention`: the same numbers as `sparse_attention` with builtins only, for export.
- `dense_masked_attention`: every score computed, then masked; the reference for tests.
- `lsh_attention`: Reformer's hashed attention, for the input-dependent `LSH` pattern (`lsh_query_key` makes
  its shared query and key).
- `cached_rows_attention`: new queries at run-time positions against a key/value cache (decoding steps).
- `ring_buffer_attention`: decoding steps of a causal window with sinks against a bounded ring-buffer cache.
"""

from keras_sparse.kernels.cached_rows import cached_rows_attention
from keras_sparse.kernels.dense_masked import dense_masked_attention
from keras_sparse.kernels.gather_plan import BlockGroup, GatherPlan, plan_gathered_blocks
from keras_sparse.kernels.gathered_blocks import gathered_block_attention
from keras_sparse.kernels.lsh import lsh_attention, lsh_query_key
from keras_sparse.kernels.ring_buffer import (
    RingBufferLayout,
    ring_buffer_attention,
    ring_buffer_layout,
    unbounded_reason,
)
from keras_sparse.kernels.segment import segment_attention
from keras_sparse.kernels.sparse_coo import sparse_attention
from keras_sparse.kernels.token_pairs import TokenPairs, plan_token_pairs

__all__ = [
    "BlockGroup",
    "GatherPlan",
    "RingBufferLayout",
    "TokenPairs",
    "cached_rows_attention",
    "dense_masked_attention",
    "gathered_block_attention",
    "lsh_attention",
    "lsh_query_key",
    "plan_gathered_blocks",
    "plan_token_pairs",
    "ring_buffer_attention",
    "ring_buffer_layout",
    "segment_attention",
    "sparse_attention",
    "unbounded_reason",
]
