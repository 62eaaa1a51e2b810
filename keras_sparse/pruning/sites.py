"""Where pruning masks attach: the layers a structure can prune, and their constraint slots.

A mask must sit in two places: on the variable (the optimizer applies
`variable.constraint` after each step) and in the layer's config (so `.keras` files
carry it). Dense and EinsumDense keep both under `kernel_constraint` / `bias_constraint`;
MultiHeadAttention keeps one `_kernel_constraint` / `_bias_constraint` that it hands to
all its projections, so its masks are keyed by projection (`PruningMask` roles).
"""

from __future__ import annotations

import keras

from keras_sparse.pruning.masks import PruningMask, find_mask, mask_chain

ATTENTION_PROJECTIONS = ("_query_dense", "_key_dense", "_value_dense", "_output_dense", "_gate_dense")


def is_attention(layer) -> bool:
    return isinstance(layer, keras.layers.MultiHeadAttention)


def is_dense(layer) -> bool:
    return isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))


def projections(attention) -> list:
    """The built EinsumDense projections of a MultiHeadAttention (query, key, value, output, gate)."""
    return [getattr(attention, name) for name in ATTENTION_PROJECTIONS if getattr(attention, name, None) is not None]


def model_layers(model) -> list:
    """Every layer of `model`, nested ones included, except the projections inside attention layers."""
    inside_attention = {id(p) for layer in model._flatten_layers() if is_attention(layer) for p in projections(layer)}
    return [layer for layer in model._flatten_layers(include_self=False) if id(layer) not in inside_attention]


def _config_slot(layer, weight: str) -> str:
    return f"_{weight}_constraint" if is_attention(layer) else f"{weight}_constraint"


def variables_of(layer, weight: str) -> list:
    """The variables a layer's `weight` ("kernel" or "bias") constraint applies to."""
    owners = projections(layer) if is_attention(layer) else [layer]
    return [v for v in (getattr(owner, weight, None) for owner in owners) if v is not None]


def attached_mask(layer, weight: str, structure: str) -> PruningMask | None:
    """The layer's `PruningMask` of `structure` on `weight`, or None."""
    return find_mask(getattr(layer, _config_slot(layer, weight), None), structure)


def attach_mask(layer, weight: str, structure: str) -> PruningMask:
    """The layer's `PruningMask` of `structure` on `weight`, created (wrapping any constraint there) if missing."""
    mask = attached_mask(layer, weight, structure)
    if mask is not None:
        return mask
    slot = _config_slot(layer, weight)
    mask = PruningMask(structure, inner=getattr(layer, slot, None))
    setattr(layer, slot, mask)
    for owner in projections(layer) if is_attention(layer) else []:
        setattr(owner, f"{weight}_constraint", mask)
    for variable in variables_of(layer, weight):
        variable.constraint = mask
    return mask


def apply_mask(layer, weight: str) -> None:
    """Zeroes now what the layer's `weight` constraint masks (the optimizer does it after each later step)."""
    for variable in variables_of(layer, weight):
        if variable.constraint is not None:
            variable.assign(variable.constraint(variable))


def masks_of(layer) -> list[PruningMask]:
    """All `PruningMask`s on a layer's kernel and bias constraints."""
    return [
        mask for weight in ("kernel", "bias") for mask in mask_chain(getattr(layer, _config_slot(layer, weight), None))
    ]


def without_masks(config: dict, layer) -> dict:
    """A copy of a layer config with `PruningMask`s removed from its constraints (inner constraints kept)."""
    config = dict(config)
    for weight in ("kernel", "bias"):
        constraint = getattr(layer, _config_slot(layer, weight), None)
        chain = mask_chain(constraint)
        if chain:
            constraint = chain[-1].inner
        config[f"{weight}_constraint"] = None if constraint is None else keras.constraints.serialize(constraint)
    return config
