"""Where a model's attention layers are, what each one attends, and which ones `sparsify` can make sparse.

keras-hub is not imported: its classes are recognised by their qualified names.
"""

from __future__ import annotations

import dataclasses

import keras

from keras_sparse.layers import SparseMultiHeadAttention
from keras_sparse.rewrites.keras_hub_decoder import KERAS_HUB_DECODER
from keras_sparse.rewrites.layer_tree import walk
from keras_sparse.rewrites.swapped_layers import qualified_names

KERAS_HUB_CACHED_ATTENTION = "keras_hub.src.layers.modeling.cached_multi_head_attention.CachedMultiHeadAttention"
"""keras-hub's MultiHeadAttention with a key/value cache: `SparseMultiHeadAttention` speaks its protocol."""

COMPUTING_METHODS = ("call", "build", "_compute_attention", "_compute_attention_mask", "_masked_softmax")
"""MultiHeadAttention methods a subclass overrides when it computes something else than Keras's attention."""

OTHER_ATTENTION = {
    "DisentangledSelfAttention": "DeBERTa-v3's disentangled attention adds content-to-position and "
    "position-to-content scores from relative position embeddings",
    "TwoStreamRelativeAttention": "XLNet's two-stream attention adds relative-position and segment scores",
    "T5MultiHeadAttention": "T5's attention adds learned relative-position biases and does not scale by 1/sqrt(d)",
    "RoformerAttention": "RoFormer's attention rotates queries and keys (rotary position embedding) itself",
    "EsmSelfAttention": "ESM's attention rotates queries and keys (rotary position embedding) itself",
    "LlamaAttention": "Llama's attention rotates queries and keys and shares key/value heads (grouped-query)",
}
"""Why keras-hub's own attention classes cannot be swapped for `SparseMultiHeadAttention`, by class name."""


@dataclasses.dataclass(frozen=True)
class AttentionSite:
    """One attention layer of a model.

    Attributes:
        path: the layer's path from the model (`layer_tree.walk`), e.g. "transformer_layer_0/self_attention_layer".
        parent: the layer holding it.
        layer: the attention layer.
        cross: True if it attends another sequence (an encoder's outputs) than its queries'.
        causal: True for a decoder's self-attention, which keras-hub always gives a causal mask.
        unsupported: why `sparsify` cannot make it sparse, or None.
    """

    path: str
    parent: keras.layers.Layer
    layer: keras.layers.Layer
    cross: bool
    causal: bool
    unsupported: str | None


def attention_sites(model: keras.layers.Layer) -> list[AttentionSite]:
    """Every attention layer inside `model`, at any depth: Keras's `MultiHeadAttention` and its subclasses
    (keras-hub's `CachedMultiHeadAttention`, ours), and other layers whose class name ends in "Attention"
    (keras-hub's DeBERTa, T5, RoFormer, ... attention), which `sparsify` names but cannot swap.

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input((16, 8))
    >>> model = keras.Model(x, keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x))
    >>> [(site.path, site.cross, site.unsupported) for site in ks.rewrites.attention_sites(model)]
    [('attention', False, None)]
    """
    found = [(path, parent, layer) for path, parent, layer in walk(model) if _is_attention(layer)]
    found_paths = [path for path, _, _ in found]
    sites = []
    for path, parent, layer in found:
        if not isinstance(layer, keras.layers.MultiHeadAttention) and any(
            other.startswith(path + "/") for other in found_paths
        ):
            continue  # a block holding attention layers (e.g. DeBERTa's DisentangledAttentionEncoder)
        in_decoder = KERAS_HUB_DECODER in qualified_names(type(parent))
        cross = _attends_another_sequence(parent, layer)
        causal = in_decoder and getattr(parent, "_self_attention_layer", None) is layer
        sites.append(AttentionSite(path, parent, layer, cross, causal, _unsupported(layer)))
    return sites


def _is_attention(layer) -> bool:
    return isinstance(layer, keras.layers.MultiHeadAttention) or type(layer).__name__.endswith("Attention")


def _attends_another_sequence(parent, layer) -> bool:
    if getattr(parent, "_cross_attention_layer", None) is layer:  # keras-hub's TransformerDecoder
        return True
    for node in layer._inbound_nodes:  # a functional graph's call: query and value differ
        arguments = node.arguments
        query = arguments.kwargs.get("query", arguments.args[0] if arguments.args else None)
        value = arguments.kwargs.get("value", arguments.args[1] if len(arguments.args) > 1 else None)
        if value is not None and query is not value:
            return True
    names = [name for name, value in vars(parent).items() if value is layer]
    return any("cross" in name for name in names)


def _unsupported(layer) -> str | None:
    cls = type(layer)
    if not isinstance(layer, keras.layers.MultiHeadAttention):
        return OTHER_ATTENTION.get(
            cls.__name__, f"{cls.__name__} computes attention its own way, not as keras.layers.MultiHeadAttention"
        )
    for base in cls.__mro__:
        if base in (keras.layers.MultiHeadAttention, SparseMultiHeadAttention):
            return None
        if f"{base.__module__}.{base.__qualname__}" == KERAS_HUB_CACHED_ATTENTION:
            return None
        overridden = [name for name in COMPUTING_METHODS if name in vars(base)]
        if overridden:
            return OTHER_ATTENTION.get(
                cls.__name__,
                f"{cls.__name__} overrides MultiHeadAttention's {', '.join(overridden)}, so it may compute "
                "something else than Keras's attention",
            )
    return None
