"""`sparsify`: a copy of a model whose multi-head attention layers, at any depth, are `SparseMultiHeadAttention`."""

from __future__ import annotations

import warnings

import keras

from keras_sparse.layers import SparseMultiHeadAttention
from keras_sparse.patterns import Pattern
from keras_sparse.patterns.pattern import RECTANGULAR_PATTERNS
from keras_sparse.rewrites.attention_sites import AttentionSite, attention_sites
from keras_sparse.rewrites.layer_tree import sublayers
from keras_sparse.rewrites.rewrite_layers import check_rewritable, copy_with_replacements


class AttentionLeftDenseWarning(UserWarning):
    """`sparsify` found attention layers it cannot make sparse; they keep computing dense attention."""


def sparsify(
    model: keras.Model,
    pattern: Pattern,
    implementation: str = "auto",
    cross_attention_pattern: Pattern | None = None,
) -> keras.Model:
    """Returns a copy of `model` whose multi-head attention layers, at any depth, are sparse.

    It reaches Keras's `MultiHeadAttention` and its subclasses that compute Keras's attention, in functional
    and Sequential models, nested models, and inside layers that hold attention as attributes: keras-hub's
    `TransformerEncoder` and `TransformerDecoder` (whose `CachedMultiHeadAttention` keeps its cache protocol,
    so `CausalLM.generate()` works), our `SparseTransformerEncoder`. The copy keeps the model's class and task
    behaviour (a `BertBackbone` stays one, a `GPT2CausalLM` keeps `generate()`) and every weight, so it
    computes what `model` computes with `attention_mask=pattern.mask(T)` in each swapped layer. A decoder's
    self-attention becomes `causal=True`, so its kernels skip the blocks above the diagonal. Its `.keras` files
    load back sparse after `import keras_sparse`. The original is not changed.

    Attention layers of other kinds (keras-hub's DeBERTa-v3, XLNet, T5, RoFormer, ESM and Llama-family
    attention, or subclasses that override MultiHeadAttention's computation) stay dense: an
    `AttentionLeftDenseWarning` names each with the reason. Cross-attention stays dense unless
    `cross_attention_pattern` is given.

    Args:
        model: a built Keras model: functional, Sequential, or a class with its own config (keras-hub's
            backbones and tasks).
        pattern: the `keras_sparse.patterns.Pattern` every swapped self-attention layer uses.
        implementation: the kernel, as in `SparseMultiHeadAttention`.
        cross_attention_pattern: optional pattern for cross-attention layers (keys from another sequence,
            e.g. a decoder attending its encoder). It must have a rectangular form
            (`Pattern.rectangular_mask`), e.g. `patterns.Dense()`. None (default) leaves them as they are.

    Returns:
        The sparse copy.

    Raises:
        ValueError: if `model` cannot be copied, a pattern is not a Pattern, `cross_attention_pattern` has no
            rectangular form (BigBird, RandomKeys, Learned, LSH), or no attention layer could be made sparse
            (the message names the ones found and why each was left).

    Example:

    >>> import keras, keras_sparse as ks
    >>> x = keras.Input(shape=(128, 16))
    >>> dense = keras.Model(x, keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x))
    >>> sparse = ks.sparsify(dense, pattern=ks.patterns.SlidingWindow(window_size=32))
    >>> type(sparse.layers[1]).__name__
    'SparseMultiHeadAttention'
    """
    for name, value in (("pattern", pattern), ("cross_attention_pattern", cross_attention_pattern)):
        if not isinstance(value, Pattern) and not (name == "cross_attention_pattern" and value is None):
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected a keras_sparse.patterns.Pattern. "
                f"Received: {name}={value!r}"
            )
    if cross_attention_pattern is not None and not cross_attention_pattern.length_independent:
        raise ValueError(
            f"Received an invalid value for argument `cross_attention_pattern`: {cross_attention_pattern!r} has no "
            "rectangular form (which keys it allows depends on the sequence length), so it cannot relate a "
            "decoder's queries to encoder keys of another length. Use a length-independent pattern: "
            f"{RECTANGULAR_PATTERNS}."
        )
    check_rewritable(model)
    sites = attention_sites(model)
    chosen = [s for s in sites if s.unsupported is None and (not s.cross or cross_attention_pattern is not None)]
    left = [s for s in sites if s.unsupported is not None]
    if not chosen:
        raise ValueError(_nothing_swapped(model, sites, left))
    if left:
        warnings.warn(_left_dense(chosen, left), AttentionLeftDenseWarning, stacklevel=2)
    replacements = {
        id(site.layer): sparse_attention(site, cross_attention_pattern if site.cross else pattern, implementation)
        for site in chosen
    }
    # A keras-hub decoder passes its sparse causal self-attention other masks (`keras_hub_decoder`): its class
    # changes with it, so the decoder is replaced, by a copy holding its sparse attention.
    decoders = {id(site.parent): site.parent for site in chosen if site.causal}
    for decoder in decoders.values():
        inside = {id(layer) for layer in sublayers(decoder)}
        replacements[id(decoder)] = copy_with_replacements(
            decoder, {key: value for key, value in replacements.items() if key in inside}
        )
    return copy_with_replacements(model, replacements)


def sparse_attention(site: AttentionSite, pattern: Pattern, implementation: str) -> SparseMultiHeadAttention:
    """The `SparseMultiHeadAttention` that takes `site.layer`'s place: its arguments, build and weights."""
    layer = site.layer
    if isinstance(layer, SparseMultiHeadAttention):
        config = layer.get_config()
    else:  # Keras's arguments only: a subclass's own ones do not change what it computes (attention_sites)
        config = keras.layers.MultiHeadAttention.get_config(layer)
    causal = site.causal or config.get("causal", False)
    config = {**config, "pattern": pattern, "implementation": implementation, "causal": causal}
    new = SparseMultiHeadAttention.from_config(config)
    if layer.built:
        new.build_from_config(layer.get_build_config())
        new.set_weights(layer.get_weights())
    return new


def _reasons(sites: list[AttentionSite]) -> str:
    return "; ".join(f"'{site.path}' ({type(site.layer).__name__}): {site.unsupported}" for site in sites)


def _left_dense(chosen: list[AttentionSite], left: list[AttentionSite]) -> str:
    return f"sparsify made {len(chosen)} attention layers sparse and left {len(left)} dense: {_reasons(left)}."


def _nothing_swapped(model, sites: list[AttentionSite], left: list[AttentionSite]) -> str:
    if not sites:
        return (
            f"Received a model with no attention layer to sparsify: '{model.name}' ({type(model).__name__}) holds "
            "no keras.layers.MultiHeadAttention at any depth (e.g. FNet mixes tokens with Fourier transforms)."
        )
    if left:
        return (
            f"Received a model none of whose attention layers can be made sparse: {_reasons(left)}. "
            "keras_sparse swaps keras.layers.MultiHeadAttention (and keras-hub's CachedMultiHeadAttention) only."
        )
    return (
        f"Received a model whose only attention layers attend another sequence (cross-attention): "
        f"{[site.path for site in sites]}. Pass `cross_attention_pattern=` (e.g. patterns.Dense()) to swap them."
    )
