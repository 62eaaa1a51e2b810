"""Tiny keras-hub backbones (random weights, no network), their inputs, and keras-hub's own attention with a
pattern passed as its attention mask (the reference a sparsified backbone must equal)."""

from __future__ import annotations

import contextlib

import keras
import keras_hub
import numpy as np

LENGTH = 32
VOCABULARY = 50
SIZES = dict(num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32)

BACKBONES = {
    "Bert": lambda: keras_hub.models.BertBackbone(vocabulary_size=VOCABULARY, max_sequence_length=LENGTH, **SIZES),
    "Roberta": lambda: keras_hub.models.RobertaBackbone(
        vocabulary_size=VOCABULARY, max_sequence_length=LENGTH, **SIZES
    ),
    "XLMRoberta": lambda: keras_hub.models.XLMRobertaBackbone(
        vocabulary_size=VOCABULARY, max_sequence_length=LENGTH, **SIZES
    ),
    "DistilBert": lambda: keras_hub.models.DistilBertBackbone(
        vocabulary_size=VOCABULARY, max_sequence_length=LENGTH, **SIZES
    ),
    "Albert": lambda: keras_hub.models.AlbertBackbone(
        vocabulary_size=VOCABULARY, embedding_dim=8, max_sequence_length=LENGTH, **SIZES
    ),
    "Electra": lambda: keras_hub.models.ElectraBackbone(
        vocab_size=VOCABULARY, embedding_dim=8, max_sequence_length=LENGTH, **SIZES
    ),
    "GPT2": lambda: keras_hub.models.GPT2Backbone(vocabulary_size=VOCABULARY, max_sequence_length=LENGTH, **SIZES),
    "OPT": lambda: keras_hub.models.OPTBackbone(vocabulary_size=VOCABULARY, max_sequence_length=LENGTH, **SIZES),
    "Bart": lambda: keras_hub.models.BartBackbone(vocabulary_size=VOCABULARY, max_sequence_length=LENGTH, **SIZES),
}
CAUSAL = ("GPT2", "OPT")
UNSUPPORTED = {
    "DebertaV3": lambda: keras_hub.models.DebertaV3Backbone(
        vocabulary_size=VOCABULARY, max_sequence_length=LENGTH, bucket_size=8, **SIZES
    ),
    "XLNet": lambda: keras_hub.models.XLNetBackbone(vocabulary_size=VOCABULARY, **SIZES),
    "FNet": lambda: keras_hub.models.FNetBackbone(
        vocabulary_size=VOCABULARY, num_layers=1, hidden_dim=16, intermediate_dim=32, max_sequence_length=LENGTH
    ),
    "T5": lambda: keras_hub.models.T5Backbone(vocabulary_size=VOCABULARY, **SIZES),
    "RoformerV2": lambda: keras_hub.models.RoformerV2Backbone(vocabulary_size=VOCABULARY, head_size=8, **SIZES),
    "ESM": lambda: keras_hub.models.ESMBackbone(vocabulary_size=VOCABULARY, **SIZES),
    "Llama": lambda: keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCABULARY,
        num_layers=1,
        num_query_heads=2,
        num_key_value_heads=1,
        hidden_dim=16,
        intermediate_dim=32,
    ),
}


def backbone(name: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    return BACKBONES[name]()


def inputs(model: keras.Model, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random token ids for every input of `model`; sample 1 is padded from position 20."""
    rng = np.random.default_rng(seed)
    keep = np.ones((batch, LENGTH), "int32")
    keep[1:, 20:] = 0
    data = {}
    for name in model.input:
        if "padding_mask" in name:
            data[name] = keep
        elif "segment" in name:
            data[name] = np.zeros((batch, LENGTH), "int32")
        else:
            data[name] = rng.integers(1, VOCABULARY, (batch, LENGTH)).astype("int32") * np.maximum(keep, 0)
    return data


def sequence_outputs(outputs) -> dict[str, np.ndarray]:
    """A backbone's per-token outputs by name (one tensor, or a dict of them)."""
    if not isinstance(outputs, dict):
        outputs = {"sequence_output": outputs}
    return {name: np.asarray(value) for name, value in outputs.items() if np.ndim(value) == 3}


def live_rows(data: dict) -> np.ndarray:
    """bool (batch, length): tokens that are not padding (their outputs are compared)."""
    masks = [value for name, value in data.items() if "padding_mask" in name]
    return np.asarray(masks[0], bool)


@contextlib.contextmanager
def self_attention_with_mask(model: keras.Model, mask: np.ndarray):
    """Within the block, `model`'s self-attention layers (keras's MultiHeadAttention, in keras-hub's encoders and
    decoders) AND `mask` (T, T) into their attention mask: keras-hub's computation with the pattern as mask."""
    patched = []
    for layer in model._flatten_layers():
        attention = getattr(layer, "_self_attention_layer", None)
        if isinstance(attention, keras.layers.MultiHeadAttention) and attention not in patched:
            original = attention.call

            def call(query, value, *args, attention_mask=None, _original=original, **kwargs):
                pattern = mask[-query.shape[1] :, : value.shape[1]]
                if attention_mask is not None:
                    pattern = keras.ops.logical_and(keras.ops.cast(attention_mask, "bool"), pattern)
                attention_mask = pattern
                return _original(query, value, *args, attention_mask=attention_mask, **kwargs)

            attention.call = call
            patched.append(attention)
    try:
        yield
    finally:
        for attention in patched:
            del attention.call
