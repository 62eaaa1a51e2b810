"""Composite layers: Transformer blocks that hold attention and a feed-forward pair as attributes.

Pruning finds attention and Dense layers inside any layer (Keras tracks sublayers), but inside a layer
there is no graph to show which Dense feeds which, and only the layer's own constructor builds it smaller.
This module knows the blocks keras-sparse and keras-hub ship:

- `keras_sparse.layers.SparseTransformerEncoder`: its feed-forward pair and its heads shrink;
- keras-hub's `TransformerEncoder` and `TransformerDecoder`: their feed-forward pair shrinks
  (`intermediate_dim`); their heads cannot, since they derive `key_dim` from `hidden_dim // num_heads`
  and so cannot hold fewer heads of the same size.

keras-hub stays optional (`keras_sparse.optional_keras_hub`). Other custom layers take part in "neurons"
pruning by listing their pairs with a `prunable_neuron_pairs()` method; `finalize` keeps them at full size.
"""

from __future__ import annotations

import dataclasses

from keras_sparse.layers import SparseTransformerEncoder
from keras_sparse.optional_keras_hub import keras_hub_layer_classes


@dataclasses.dataclass(frozen=True)
class Composite:
    """How pruning reads and rebuilds one class of composite layer.

    Attributes:
        first, second: attribute names of the feed-forward pair's Dense layers.
        width_argument: the constructor argument that sets the pair's hidden width.
        attention: attribute name of the self-attention whose heads shrink through the constructor's
            `num_heads` / `key_dim` / `pattern`, or None when heads cannot shrink.
        fixed_heads_reason: why heads cannot shrink (when `attention` is None).
        cleared: config entries a smaller copy resets (ours carries its pruning masks in its config).
    """

    first: str
    second: str
    width_argument: str
    attention: str | None = None
    fixed_heads_reason: str = ""
    cleared: tuple[tuple[str, object], ...] = ()


SPARSE_ENCODER = Composite(
    "intermediate",
    "output_dense",
    "intermediate_dim",
    attention="self_attention",
    cleared=(("sublayer_constraints", {}),),
)
KERAS_HUB_BLOCK = Composite(
    "_feedforward_intermediate_dense",
    "_feedforward_output_dense",
    "intermediate_dim",
    fixed_heads_reason="keras-hub's {cls} derives key_dim from hidden_dim // num_heads, so it cannot hold "
    "fewer heads of the same size; the pruned heads stay as zero weights",
)


def composite_of(layer) -> Composite | None:
    """The `Composite` describing `layer`'s class, or None for any other layer."""
    if isinstance(layer, SparseTransformerEncoder):
        return SPARSE_ENCODER
    if isinstance(layer, keras_hub_layer_classes("TransformerEncoder", "TransformerDecoder")):
        return KERAS_HUB_BLOCK
    return None


def neuron_pairs(layer) -> list[tuple]:
    """`(first Dense, second Dense)` pairs inside `layer` whose hidden units "neurons" pruning may remove."""
    composite = composite_of(layer)
    if composite is not None:
        return [(getattr(layer, composite.first), getattr(layer, composite.second))]
    if hasattr(layer, "prunable_neuron_pairs"):
        return list(layer.prunable_neuron_pairs())
    return []
