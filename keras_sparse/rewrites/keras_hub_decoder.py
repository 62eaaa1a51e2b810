"""What a keras-hub `TransformerDecoder` does differently once its self-attention is sparse and causal.

keras-hub's decoder ANDs its causal mask into a `(B, T, S)` tensor (`_compute_self_attention_mask`) and passes
that to its self-attention. A `SparseMultiHeadAttention(causal=True)` applies causality itself, from its plan
(and from `cache_update_index` while decoding), and skips the blocks above the diagonal; the tensor would only
cost a `(B, T, S)` mask gathered block by block. So the decoder passes on the padding and attention masks alone
(keras-hub's `(B, 1, S)` padding mask costs nothing), and refuses `use_causal_mask=False`, which its sparse
self-attention cannot honour. keras-hub is imported only when such a decoder runs.
"""

from __future__ import annotations

import inspect

from keras_sparse.layers import SparseMultiHeadAttention

KERAS_HUB_DECODER = "keras_hub.src.layers.modeling.transformer_decoder.TransformerDecoder"
"""keras-hub's decoder block: its self-attention always gets a causal mask, its cross-attention an encoder's keys."""


class CausalSparseDecoder:
    """Mixed into a keras-hub `TransformerDecoder` subclass (see `swapped_layers.with_swapped_layers`)."""

    def _compute_self_attention_mask(self, *args, **kwargs):
        """keras-hub's hook: the mask its self-attention gets."""
        keras_hubs = super()._compute_self_attention_mask
        attention = self._self_attention_layer
        if not (isinstance(attention, SparseMultiHeadAttention) and attention.causal):
            return keras_hubs(*args, **kwargs)
        arguments = inspect.signature(keras_hubs).bind(*args, **kwargs).arguments
        if not arguments["use_causal_mask"]:
            raise ValueError(
                f"Received an invalid value for argument `use_causal_mask` of decoder '{self.name}': its sparse "
                "self-attention is causal (keras_sparse.sparsify makes a decoder's self-attention so). Call it with "
                "use_causal_mask=True (the default). Received: use_causal_mask=False"
            )
        from keras_hub.src.layers.modeling.transformer_layer_utils import merge_padding_and_attention_mask

        return merge_padding_and_attention_mask(
            arguments["decoder_sequence"], arguments["decoder_padding_mask"], arguments["decoder_attention_mask"]
        )
