"""The `attention_blocks` structure: learn which key blocks each query block needs, from the attention itself.

While training, every `SparseMultiHeadAttention` target sums its attention probabilities
per (head, query block, key block) into a variable (the blocked kernel computes them anyway).
At each pruning step, every query block of every head keeps the key blocks that drew the most
attention mass since the last step (its own diagonal block always), down to the schedule's
sparsity of the blocks its starting pattern allowed. The layer's pattern becomes
`start & Learned(kept)`, so later steps and the exported model compute only the kept blocks.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_sparse.layers import SparseMultiHeadAttention
from keras_sparse.layers.sparse_multi_head_attention import _gather_plan
from keras_sparse.patterns import Intersection, Learned, Pattern
from keras_sparse.pruning import selection
from keras_sparse.pruning.sites import model_layers


def split_learned(pattern: Pattern) -> tuple[Pattern, Learned | None]:
    """`(start, learned)` for a pattern this structure narrowed (`start & Learned`), else `(pattern, None)`."""
    if isinstance(pattern, Intersection) and isinstance(pattern.second, Learned):
        return pattern.first, pattern.second
    return pattern, None


def as_learned(layer: SparseMultiHeadAttention) -> Pattern:
    """The layer's pattern as a plain `Learned` layout when that is exact at token level, else unchanged."""
    pattern = layer.pattern
    seq_len = layer.built_seq_len
    plan = _gather_plan(layer.effective_pattern, seq_len, False)
    heads = layer.num_heads
    layout = np.broadcast_to(
        pattern.for_heads(heads).layout(seq_len, plan.block_size), (heads,) + (plan.num_blocks,) * 2
    )
    learned = Learned(layout[0] if (layout == layout[:1]).all() else layout, plan.block_size)
    token_mask = np.broadcast_to(pattern.for_heads(heads).mask(seq_len), (heads, seq_len, seq_len))
    same = np.array_equal(np.broadcast_to(learned.for_heads(heads).mask(seq_len), token_mask.shape), token_mask)
    return learned if same and pattern.dense_bias(seq_len) is None else pattern


def learned_sparsity(layer: SparseMultiHeadAttention) -> float:
    """The fraction of its starting pattern's blocks a layer's learned layout removed (0 if it has none)."""
    start, learned = split_learned(layer.pattern)
    if learned is None:
        return 0.0
    allowed = start.for_heads(layer.num_heads).layout(layer.built_seq_len, learned.block_size)
    allowed = np.broadcast_to(allowed, (layer.num_heads,) + allowed.shape[-2:])
    return float(1.0 - (allowed & learned.blocks).sum() / allowed.sum())


class _Tracking:
    """One layer's statistic and layouts during training."""

    def __init__(self, layer: SparseMultiHeadAttention, strategy):
        self.start, learned = split_learned(layer.pattern)
        seq_len = layer.built_seq_len
        plan = _gather_plan(layer.effective_pattern, seq_len, False)
        self.block_size, heads = plan.block_size, layer.num_heads
        shape = (heads, plan.num_blocks, plan.num_blocks)
        self.allowed = np.broadcast_to(self.start.for_heads(heads).layout(seq_len, plan.block_size), shape).copy()
        self.kept = self.allowed if learned is None else self.allowed & np.broadcast_to(learned.blocks, shape)
        with strategy.scope():
            self.mass = tf.Variable(
                tf.zeros(shape),
                trainable=False,
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.SUM,
                name=f"{layer.name}_block_mass",
            )


class AttentionBlocks:
    """Key blocks per query block of `SparseMultiHeadAttention` layers (blocked kernel, static pattern)."""

    name = "attention_blocks"

    def __init__(self):
        self._tracking: dict[int, _Tracking] = {}

    def targets(self, model, accept):
        return [
            layer
            for layer in model_layers(model)
            if isinstance(layer, SparseMultiHeadAttention) and not layer.pattern.dynamic and accept(layer)
        ]

    def check(self, layer) -> None:
        if layer.kernel_name(layer.built_seq_len) != "blocked":
            raise ValueError(
                f"Layer '{layer.name}' computes attention with the {layer.kernel_name(layer.built_seq_len)!r} "
                "kernel; attention_blocks pruning reads the blocked kernel's probabilities. Use "
                "implementation='blocked' (or 'auto' with a block-aligned pattern) for this layer."
            )

    def start(self, layer, strategy) -> None:
        tracking = _Tracking(layer, strategy)
        self._tracking[id(layer)] = tracking
        layer.set_block_mass_sink(lambda mass: tracking.mass.assign_add(mass))

    def stop(self, layer) -> None:
        layer.set_block_mass_sink(None)
        self._tracking.pop(id(layer), None)

    def prune(self, layer, sparsity: float) -> bool:
        """Narrows the layer's pattern; True if it changed (the caller retraces the model's functions)."""
        tracking = self._tracking[id(layer)]
        mass = np.asarray(tracking.mass.numpy())
        if not mass.any():
            return False
        heads, blocks, _ = mass.shape
        diagonal = np.eye(blocks, dtype=bool)
        kept = np.zeros_like(tracking.kept)
        for h in range(heads):
            for row in range(blocks):
                allowed = tracking.allowed[h, row]
                score = np.where(diagonal[row], np.inf, mass[h, row])
                count = selection.keep_count(int(allowed.sum()), sparsity)
                kept[h, row] = selection.keep_largest(score, count, alive=tracking.kept[h, row])
        tracking.mass.assign(tf.zeros_like(tracking.mass))
        if np.array_equal(kept, tracking.kept):
            return False
        tracking.kept = kept
        layer.set_pattern(Intersection(tracking.start, Learned(kept, tracking.block_size)))
        return True

    def sparsity(self, layer) -> float:
        return learned_sparsity(layer)
