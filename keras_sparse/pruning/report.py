"""What pruning has done to a model: per layer and structure, the sparsity, parameters and FLOPs kept."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_sparse.layers import SparseMultiHeadAttention
from keras_sparse.pruning.attention_blocks import learned_sparsity, split_learned
from keras_sparse.pruning.masks import PruningMask, mask_chain
from keras_sparse.pruning.sites import masks_of, model_layers, variables_of
from keras_sparse.rewrites.layer_tree import walk

STRUCTURAL = ("heads", "neurons", "attention_blocks")
"""Structures `finalize` removes physically; `n:m` and `blocks` leave zeros for TFLite's sparse weight encoding."""

NO_STATE = (
    "The model has no pruning state: no layer carries a pruning mask or a learned attention layout. Pass "
    "`keras_sparse.pruning.StructuredPruning(schedule, structure)` to `model.fit(..., callbacks=[...])` and "
    "check that its schedule's begin_step is reached during training."
)


@dataclasses.dataclass(frozen=True)
class LayerPruning:
    """One layer under one structure.

    Attributes:
        layer: the layer's path ("encoder_0/self_attention" for a nested layer).
        structure: "heads", "neurons", "n:m", "blocks" or "attention_blocks".
        sparsity: fraction of the structure's units removed (heads, units, weights, or attention blocks).
        params_kept, params_total: the layer's weights that the structure keeps, of all of them.
        flops_kept: fraction of the layer's multiply-adds left after `finalize` (1.0 for n:m and blocks,
            whose zeros only sparse kernels skip).
    """

    layer: str
    structure: str
    sparsity: float
    params_kept: int
    params_total: int
    flops_kept: float


def _kept_and_covered(layer, masks: list[PruningMask]) -> tuple[int, int]:
    """(weights the masks keep, weights they cover) over the layer's kernel and bias variables."""
    kept = covered = 0
    for mask in masks:
        for weight in ("kernel", "bias"):
            for variable in variables_of(layer, weight):
                if any(link is mask for link in mask_chain(variable.constraint)):
                    ones = mask.kept_for(variable)
                    kept, covered = kept + int(ones.sum()), covered + ones.size
    return kept, covered


def pruning_rows(model) -> list[LayerPruning]:
    """One `LayerPruning` per pruned (layer, structure) of `model`, nested layers included."""
    rows = []
    paths = {id(layer): path for path, _, layer in walk(model)}
    for layer in model_layers(model):
        total = sum(int(np.prod(v.shape)) for v in layer.weights)
        by_structure = {}
        for mask in masks_of(layer):
            by_structure.setdefault(mask.structure, []).append(mask)
        for structure, masks in by_structure.items():
            kept, covered = _kept_and_covered(layer, masks)
            if structure == "heads":
                sparsity = 1.0 - masks[0].kept("query").mean()
            else:
                sparsity = 1.0 - kept / max(covered, 1)
            flops_kept = 1.0 - sparsity if structure in STRUCTURAL else 1.0
            kept_parameters = total - covered + kept
            rows.append(LayerPruning(paths[id(layer)], structure, float(sparsity), kept_parameters, total, flops_kept))
        if isinstance(layer, SparseMultiHeadAttention) and split_learned(layer.pattern)[1] is not None:
            sparsity = learned_sparsity(layer)
            rows.append(LayerPruning(paths[id(layer)], "attention_blocks", sparsity, total, total, 1.0 - sparsity))
    return rows


def report(model) -> str:
    """A table of `pruning_rows(model)`: per layer and structure, sparsity, parameters and FLOPs kept.

    FLOPs kept is the fraction of the layer's multiply-adds left after `finalize` (for heads: of the
    projections and attention; for attention_blocks: of the attention scores; n:m and blocks keep
    dense multiply-adds unless a runtime uses sparse kernels). Raises if the model was never pruned.

    Example:

    >>> import keras, numpy as np, keras_sparse as ks
    >>> x = keras.Input((8,))
    >>> model = keras.Model(x, keras.layers.Dense(2)(keras.layers.Dense(4, name="hidden")(x)))
    >>> pair = ks.pruning.Neurons().targets(model, lambda layer: True)[0]
    >>> ks.pruning.Neurons().set_kept(pair, np.array([True, False, True, False]))
    >>> print(ks.pruning.report(model))
    layer   structure        sparsity      params kept  FLOPs kept
    hidden  neurons             50.0%          18 / 36       50.0%
    """
    rows = pruning_rows(model)
    if not rows:
        raise ValueError(NO_STATE)
    width = max(len("layer"), *(len(row.layer) for row in rows))
    lines = [f"{'layer':<{width}}  {'structure':<16} {'sparsity':>8}  {'params kept':>15}  {'FLOPs kept':>10}"]
    for row in rows:
        params = f"{row.params_kept} / {row.params_total}"
        lines.append(
            f"{row.layer:<{width}}  {row.structure:<16} {row.sparsity:>8.1%}  {params:>15}  {row.flops_kept:>10.1%}"
        )
    return "\n".join(lines)
