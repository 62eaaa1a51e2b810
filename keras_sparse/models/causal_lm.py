"""`SparseCausalLM`: a decoder-only language model on a sparse causal pattern, generating with bounded memory."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_sparse import kernels
from keras_sparse.layers import SparseTransformerEncoder, TokenEmbedding
from keras_sparse.layers.activations import get_activation
from keras_sparse.layers.position_embedding import sinusoidal_encoding
from keras_sparse.models.decoding import decode, drawer_of, prompt_array
from keras_sparse.patterns import Dense, DistanceDecay, Pattern
from keras_sparse.validation import boolean, fraction, invalid_argument, number, one_of, positive_int

CACHES = ("auto", "bounded", "full")
POSITION_ENCODINGS = ("sinusoidal", "rotary", "alibi")
ALIBI_THRESHOLD = 1e-9
"""ALiBi's bias is cut where its weight factor falls below this (`DistanceDecay(threshold=)`): a key past the cut
would add under 1e-9 of the nearest key's weight, below float32's resolution of a softmax sum."""


@keras.saving.register_keras_serializable(package="keras_sparse")
class SparseCausalLM(keras.Model):
    """A GPT-style language model: token ids -> next-token logits, every layer's attention sparse and causal.

    Token embedding (`TokenEmbedding`), positions that no table caps (`position_encoding`), `num_layers` pre-norm
    causal blocks (`SparseTransformerEncoder(causal=True)`), a final layer normalization and an output head
    tied to the token embedding (or a separate `Dense`).
    `fit` trains it with teacher forcing on the sparse kernels: `y` is `x` shifted by one token.

    With `pattern=SlidingWindow(window_size=W, global_tokens=G)` (global tokens within `W // 2`) `generate`
    keeps a ring buffer of `len(G) + W // 2 + 1` keys and values per layer (`kernels.ring_buffer_attention`):
    memory and time per token do not grow with the position (StreamingLLM's window with attention sinks,
    Xiao et al. 2023). Other patterns need a cache of every position (`cache="full"`).

    Args:
        vocab_size: number of token ids.
        num_layers, hidden_dim, num_heads, intermediate_dim: the decoder blocks' sizes.
        pattern: a `keras_sparse.patterns.Pattern` (default `Dense()`), applied causally.
        dropout: rate after embeddings, attention and feed-forward (default 0).
        activation: of the feed-forward network (default "relu"; see `SparseTransformerEncoder`).
        tie_embeddings: the output head is the token embedding transposed (default True).
        position_encoding: "rotary" (default; RoPE, Su et al. 2021: queries and keys rotated at their positions;
            keys enter the cache rotated), "sinusoidal" (Vaswani et al. 2017, added to the token embedding; what
            `.keras` files without this key were made with, and load with) or
            "alibi" (Press et al. 2022: a per-head bias `-m_h * (i - j)`, slopes `m_h = 2 ** (-8 * (h + 1) / H)`,
            which is `pattern & DistanceDecay(2 ** (-8 / H), ALIBI_THRESHOLD, per_head=True)` on the sparse
            kernels and the ring buffer). Rotary is the default by measurement (docs/decoding.md).
        max_wavelength: of the sinusoidal or rotary positions (default 10000).
        layer_norm_epsilon: default 1e-5.
        implementation: the attention kernel for full sequences (see `SparseMultiHeadAttention`).

    Call arguments:
        token_ids: int `(batch, length)`; the length must be static (known when traced), else a ValueError.
        training: whether dropout is applied.

    Returns:
        float logits `(batch, length, vocab_size)`: position t predicts token t + 1.

    Example:

    >>> import numpy as np, keras_sparse as ks
    >>> lm = ks.models.SparseCausalLM(vocab_size=20, num_layers=1, hidden_dim=16, num_heads=2,
    ...     intermediate_dim=32, pattern=ks.patterns.SlidingWindow(window_size=8, global_tokens=(0,), block_size=4))
    >>> tuple(lm(np.zeros((2, 12), "int32")).shape)
    (2, 12, 20)
    >>> lm.generate(np.array([1, 2, 3]), max_new_tokens=5).shape
    (1, 8)
    """

    def __init__(
        self,
        vocab_size: int,
        num_layers: int,
        hidden_dim: int,
        num_heads: int,
        intermediate_dim: int,
        pattern: Pattern | None = None,
        dropout: float = 0.0,
        activation="relu",
        tie_embeddings: bool = True,
        position_encoding: str = "rotary",
        max_wavelength: float = 10000.0,
        layer_norm_epsilon: float = 1e-5,
        implementation: str = "auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.num_layers = positive_int("num_layers", num_layers)
        self.hidden_dim = positive_int("hidden_dim", hidden_dim)
        self.num_heads = positive_int("num_heads", num_heads)
        self.intermediate_dim = positive_int("intermediate_dim", intermediate_dim)
        if self.hidden_dim % self.num_heads:
            raise invalid_argument(
                "num_heads", f"a divisor of hidden_dim={self.hidden_dim}", f"num_heads={self.num_heads}"
            )
        if isinstance(pattern, dict):
            pattern = keras.saving.deserialize_keras_object(pattern)
        if pattern is not None and not isinstance(pattern, Pattern):
            raise invalid_argument("pattern", "None or a keras_sparse.patterns.Pattern", f"pattern={pattern!r}")
        self.pattern = Dense() if pattern is None else pattern
        self.dropout = fraction("dropout", dropout)
        self.activation = get_activation(activation)
        self.tie_embeddings = boolean("tie_embeddings", tie_embeddings)
        self.position_encoding = one_of("position_encoding", position_encoding, POSITION_ENCODINGS)
        self.max_wavelength = number("max_wavelength", max_wavelength, above=0)
        self.layer_norm_epsilon = number("layer_norm_epsilon", layer_norm_epsilon, above=0)
        self.implementation = implementation
        self.token_embedding = TokenEmbedding(vocab_size, hidden_dim, name="token_embedding")
        self.embedding_dropout = keras.layers.Dropout(self.dropout)
        self.blocks = [
            SparseTransformerEncoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                pattern=self.attention_pattern,
                dropout=self.dropout,
                activation=self.activation,
                layer_norm_epsilon=layer_norm_epsilon,
                normalize_first=True,
                implementation=implementation,
                causal=True,
                rotary_max_wavelength=self.max_wavelength if self.position_encoding == "rotary" else None,
                name=f"decoder_{index}",
            )
            for index in range(self.num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="final_norm")
        self.output_head = None if self.tie_embeddings else keras.layers.Dense(vocab_size, name="output_head")
        self._decode_steps = {}

    @property
    def attention_pattern(self) -> Pattern:
        """The blocks' pattern: `pattern`, ANDed with ALiBi's `DistanceDecay` when `position_encoding="alibi"`."""
        if self.position_encoding != "alibi":
            return self.pattern
        alibi = DistanceDecay(2 ** (-8 / self.num_heads), ALIBI_THRESHOLD, per_head=True)
        return self.pattern & alibi.for_heads(self.num_heads)

    @property
    def key_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    def build(self, input_shape):
        hidden_shape = (*input_shape[:2], self.hidden_dim)
        self.token_embedding.build(input_shape)
        for block in self.blocks:
            block.build(hidden_shape)
        self.final_norm.build(hidden_shape)
        if self.output_head is not None:
            self.output_head.build(hidden_shape)
        self.built = True

    def _embed(self, token_ids, positions, training=None):
        x = self.token_embedding(token_ids)
        if self.position_encoding == "sinusoidal":  # rotary and ALiBi act inside the attention
            x = x + ops.cast(sinusoidal_encoding(positions, self.hidden_dim, self.max_wavelength), x.dtype)[None]
        return self.embedding_dropout(x, training=training)

    def _logits(self, x):
        x = self.final_norm(x)
        if self.output_head is not None:
            return self.output_head(x)
        return ops.matmul(x, ops.transpose(ops.cast(self.token_embedding.embeddings, x.dtype)))

    def call(self, token_ids, training=None):
        x = self._embed(token_ids, ops.arange(_static_length(token_ids)), training)
        for block in self.blocks:
            x = block(x, training=training)
        return self._logits(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], self.vocab_size)

    def cache_layout(self, cache: str = "auto") -> kernels.RingBufferLayout | None:
        """The ring-buffer layout of a bounded cache, or None for a full cache.

        Args:
            cache: "bounded" (a ring buffer; a ValueError if the pattern cannot be bounded), "full" (every
                position), or "auto" (default): bounded when the pattern allows, else full with a warning.
        """
        one_of("cache", cache, CACHES)
        if cache == "full":
            return None
        reason = kernels.unbounded_reason(self.attention_pattern)
        if reason is None or cache == "bounded":
            return kernels.ring_buffer_layout(self.attention_pattern)
        warnings.warn(
            f"{self.name} decodes with a full cache, growing with every position: {reason}. Memory and time per "
            "token grow with the length. Pass cache='full' to silence this, or train with a causal "
            "SlidingWindow(window_size, global_tokens) for a bounded cache.",
            stacklevel=3,
        )
        return None

    def empty_cache(self, batch_size: int, length: int) -> np.ndarray:
        """Zeros float32 `(batch_size, num_layers, 2, length, num_heads, key_dim)`: every layer's keys and values."""
        return np.zeros((batch_size, self.num_layers, 2, length, self.num_heads, self.key_dim), np.float32)

    def call_with_cache(self, token_ids, cache, position, bounded: bool):
        """Logits of tokens at `position, ...` and the updated cache (keras-hub's `call_with_cache`).

        Args:
            token_ids: int `(batch, T)`, the tokens at positions `position, ..., position + T - 1`.
            cache: float `(batch, num_layers, 2, S, num_heads, key_dim)`: a ring buffer of
                `cache_layout("bounded").length` slots if `bounded`, else every position up to S.
            position: int32 scalar (a tensor in traced functions).
            bounded: whether `cache` is a ring buffer.

        Returns:
            `(logits (batch, T, vocab_size), cache)`.
        """
        given = tuple(cache.shape)
        if len(given) != 6 or given[1:3] != (self.num_layers, 2) or given[4:] != (self.num_heads, self.key_dim):
            raise invalid_argument(
                "cache",
                f"a (batch, {self.num_layers}, 2, length, {self.num_heads}, {self.key_dim}) cache (empty_cache)",
                f"cache.shape={tuple(cache.shape)}",
            )
        position = ops.cast(position, "int32")
        x = self._embed(token_ids, position + ops.arange(_static_length(token_ids), dtype="int32"))
        shape = tuple(cache.shape[2:])  # TFLite slices at most 5-D tensors: the layers' caches are 5-D slices
        layers = ops.reshape(cache, (-1, 2 * self.num_layers, *shape[1:]))
        caches = []
        for index, block in enumerate(self.blocks):
            layer_cache = layers[:, 2 * index : 2 * index + 2]
            x, layer_cache = block(x, cache=layer_cache, cache_update_index=position, bounded_cache=bounded)
            caches.append(layer_cache)
        return self._logits(x), ops.reshape(ops.concatenate(caches, axis=1), (-1, self.num_layers, *shape))

    def _decode_step(self, bounded: bool):
        if bounded not in self._decode_steps:
            self._decode_steps[bounded] = tf.function(  # one trace per token count and cache shape
                lambda tokens, cache, position: self.call_with_cache(tokens, cache, position, bounded)
            )
        return self._decode_steps[bounded]

    def decoder(self, batch_size: int = 1, cache: str = "auto", max_length: int | None = None) -> KerasDecoder:
        """A `KerasDecoder` over this model with an empty cache: bounded, or full with `max_length` positions."""
        layout = self.cache_layout(cache)
        if layout is None and max_length is None:
            raise invalid_argument("max_length", "the positions a full cache holds", "max_length=None")
        length = layout.length if layout is not None else positive_int("max_length", max_length)
        return KerasDecoder(self, positive_int("batch_size", batch_size), length, layout is not None)

    def generate(
        self,
        prompt_ids,
        max_new_tokens: int,
        sampler="greedy",
        cache: str = "auto",
        prefill_length: int = 64,
        deterministic: bool = False,
    ) -> np.ndarray:
        """Generates `max_new_tokens` tokens after each prompt, one token per step.

        The prompt is prefilled `prefill_length` tokens at a time (the rest one by one), then each new token
        is fed back. A greedy token is the argmax of a full forward pass over the sequence so far.

        Args:
            prompt_ids: int `(length,)` or `(batch, length)`, ids in `[0, vocab_size)`.
            max_new_tokens: int >= 1.
            sampler: "greedy" (default) or a `keras_sparse.models.Sampler(temperature, top_k, seed)`.
            cache: "auto" (default), "bounded" or "full" (see `cache_layout`): "auto" warns when the pattern
                needs a full cache.
            prefill_length: tokens per prefill step (default 64).
            deterministic: refuse samplers without a seed (default False).

        Returns:
            int32 `(batch, length + max_new_tokens)`: the prompt followed by the new tokens.

        Raises:
            ValueError: naming the argument: ids out of range, max_new_tokens < 1, an unseeded sampler with
                deterministic=True, cache="bounded" with a pattern that cannot be bounded.
            RuntimeError: called inside a tf.function (generate runs eagerly).
            FloatingPointError: the model gave NaN or infinite logits (a NaN weight, a float16 overflow).
        """
        if not tf.executing_eagerly():
            raise RuntimeError(
                "SparseCausalLM.generate was called inside a tf.function (or another traced graph), but it runs "
                "eagerly: a Python loop that samples each token and calls a compiled decode step. Fix: call "
                "generate outside tf.function; to trace a step, wrap call_with_cache in tf.function (jit_compile "
                "works), or export the decoder with converters.to_tflite_decoder."
            )
        prompt = prompt_array(prompt_ids, self.vocab_size)
        max_new_tokens = positive_int("max_new_tokens", max_new_tokens)
        prefill_length = positive_int("prefill_length", prefill_length)
        draw = drawer_of(sampler, boolean("deterministic", deterministic))
        decoder = self.decoder(prompt.shape[0], cache, prompt.shape[1] + max_new_tokens)
        return decode(decoder, prompt, max_new_tokens, draw, prefill_length)

    @classmethod
    def from_config(cls, config):
        return cls(**{"position_encoding": "sinusoidal", **config})  # configs saved before the option existed

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "pattern": keras.saving.serialize_keras_object(self.pattern),
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "tie_embeddings": self.tie_embeddings,
            "position_encoding": self.position_encoding,
            "max_wavelength": self.max_wavelength,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "implementation": self.implementation,
        }


def _static_length(token_ids) -> int:
    """The length of int token ids `(batch, length)`; a ValueError naming `token_ids` for another rank or a
    length unknown at trace time (the sparse kernels plan their blocks for one length)."""
    shape = tuple(token_ids.shape)
    if len(shape) != 2:
        raise invalid_argument("token_ids", "int ids (batch, length): pass a 2-D array", f"token_ids.shape={shape}")
    if shape[1] is None:
        raise invalid_argument(
            "token_ids",
            "int ids (batch, length) with a length known when traced, as the sparse kernels plan for one length. "
            "Keras's fit, evaluate and predict each trace one tf.function with reduce_retracing=True, so after a "
            "call at one length a call at another is traced with the length None. Fix: before each new length set "
            "`lm.train_function = None` (fit), `lm.test_function = None` (evaluate) or `lm.predict_function = None` "
            "(predict), or call `lm(token_ids)` directly; in your own tf.function give a fixed length "
            "(tf.TensorSpec((None, length), tf.int32))",
            f"token_ids.shape={shape}",
        )
    return shape[1]


class KerasDecoder:
    """A `SparseCausalLM` reading tokens with its cache: `decoder(token_ids (B, T), position) -> logits (B, T, vocab)`.

    Each call runs the model's compiled step (`call_with_cache`) and keeps the updated cache in `cache`.
    Make one with `SparseCausalLM.decoder`.
    """

    def __init__(self, lm: SparseCausalLM, batch_size: int, length: int, bounded: bool):
        self.bounded = bounded
        self.cache = tf.constant(lm.empty_cache(batch_size, length))
        self._step = lm._decode_step(bounded)

    def __call__(self, token_ids: np.ndarray, position: int) -> np.ndarray:
        logits, self.cache = self._step(tf.constant(token_ids), self.cache, tf.constant(position, tf.int32))
        return logits.numpy()
