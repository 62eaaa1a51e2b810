"""Token-by-token generation shared by Keras and LiteRT: samplers, and the prefill-then-decode loop.

A decoder is driven through one function, `run(token_ids (B, T), position) -> logits (B, T, vocab)`, which
keeps its own key/value cache: `SparseCausalLM.generate` passes its Keras step, `converters.generate_tflite`
the `.tflite` file's signatures. The loop feeds the prompt in chunks of `prefill_length` tokens (the rest one
token at a time), then one sampled token per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from keras_sparse.validation import invalid_argument, non_negative_int, number, optional_positive_int

SAMPLERS = ("greedy",)
"""Samplers given by name; `Sampler(...)` gives temperature and top-k sampling."""


@dataclasses.dataclass(frozen=True)
class Sampler:
    """Draws each token from `softmax(logits / temperature)`, restricted to the `top_k` largest logits.

    `"greedy"` (the argmax) is the sampler named by a string. Draws come from NumPy's `default_rng(seed)`,
    made once per `generate` call, so a seeded sampler repeats its tokens exactly.

    Args:
        temperature: float > 0 (default 1.0); below 1 sharpens the distribution, above 1 flattens it.
        top_k: optional int, sample among the k most likely tokens only (Fan et al. 2018). None: all tokens.
        seed: optional int; None draws differently on every call (refused by `generate(deterministic=True)`).

    Example:

    >>> import numpy as np
    >>> sampler = Sampler(temperature=0.5, top_k=2, seed=0)
    >>> draw = sampler.drawer()
    >>> int(draw(np.array([[0.0, 5.0, 4.0, -9.0]]))[0]) in (1, 2)
    True
    """

    temperature: float = 1.0
    top_k: int | None = None
    seed: int | None = None

    def __post_init__(self):
        number("temperature", self.temperature, above=0)
        optional_positive_int("top_k", self.top_k)
        if self.seed is not None:
            non_negative_int("seed", self.seed)

    def drawer(self) -> Callable[[np.ndarray], np.ndarray]:
        """A function `logits (B, vocab) -> int32 tokens (B,)` drawing from a fresh seeded generator."""
        rng = np.random.default_rng(self.seed)

        def draw(logits: np.ndarray) -> np.ndarray:
            scaled = logits.astype(np.float64) / self.temperature
            if self.top_k is not None and self.top_k < scaled.shape[-1]:
                kth = np.sort(scaled, axis=-1)[:, -self.top_k][:, None]
                scaled = np.where(scaled >= kth, scaled, -np.inf)
            probabilities = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
            probabilities /= probabilities.sum(axis=-1, keepdims=True)
            return np.array([rng.choice(len(row), p=row) for row in probabilities], np.int32)

        return draw


def _greedy(logits: np.ndarray) -> np.ndarray:
    return np.argmax(logits, axis=-1).astype(np.int32)


def drawer_of(sampler, deterministic: bool) -> Callable[[np.ndarray], np.ndarray]:
    """The draw function of `sampler` ("greedy" or a `Sampler`), checked for determinism when it is asked."""
    if isinstance(sampler, str) and sampler in SAMPLERS:
        return _greedy
    if not isinstance(sampler, Sampler):
        raise invalid_argument(
            "sampler", "'greedy' or a keras_sparse.models.Sampler(temperature, top_k, seed)", f"sampler={sampler!r}"
        )
    if deterministic and sampler.seed is None:
        raise invalid_argument(
            "sampler",
            "a seeded Sampler when deterministic=True (give Sampler(..., seed=0)), or 'greedy'",
            f"sampler={sampler!r}",
        )
    return sampler.drawer()


def prompt_array(prompt_ids, vocab_size: int, name: str = "prompt_ids") -> np.ndarray:
    """`prompt_ids` as int32 `(batch, length)` (a 1-D prompt is one batch row), every id in `[0, vocab_size)`;
    errors name the argument `name`."""
    prompt = np.asarray(prompt_ids)
    if prompt.ndim == 1:
        prompt = prompt[None]
    if prompt.ndim != 2 or prompt.shape[1] == 0 or prompt.dtype.kind not in "iu":
        raise invalid_argument(
            name,
            "integer token ids shaped (length,) or (batch, length), length >= 1",
            f"{name} with dtype {prompt.dtype} and shape {prompt.shape}",
        )
    if prompt.min() < 0 or prompt.max() >= vocab_size:
        raise invalid_argument(
            name,
            f"token ids in [0, {vocab_size})",
            f"ids from {prompt.min()} to {prompt.max()}",
        )
    return prompt.astype(np.int32)


def one_prompt(prompt_ids, vocab_size: int, name: str = "prompt_ids") -> np.ndarray:
    """One prompt as int32 `(1, length)`, from `(length,)` or `(1, length)` (a decoder file has batch 1); errors
    name the argument `name`."""
    prompt = prompt_array(prompt_ids, vocab_size, name)
    if prompt.shape[0] != 1:
        raise invalid_argument(
            name, "one prompt, ids shaped (length,) (the file has batch 1)", f"{prompt.shape[0]} prompts"
        )
    return prompt


def decode(
    run: Callable[[np.ndarray, int], np.ndarray],
    prompt: np.ndarray,
    max_new_tokens: int,
    draw: Callable[[np.ndarray], np.ndarray],
    prefill_length: int,
    on_token: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Prefills `prompt` (int32 `(B, P)`) in chunks, then generates: int32 `(B, P + max_new_tokens)`.

    `run(token_ids (B, T), position)` returns float logits `(B, T, vocab)` for tokens at `position, ...,
    position + T - 1`, with T either `prefill_length` or 1, and updates its cache. `on_token(position, logits)`
    sees each step's next-token logits `(B, vocab)` (for benchmarks and verification).

    Raises:
        FloatingPointError: a step's next-token logits are NaN or infinite.
    """
    length = prompt.shape[1]
    position = 0
    while length - position >= prefill_length:
        logits = run(prompt[:, position : position + prefill_length], position)
        position += prefill_length
    while position < length:
        logits = run(prompt[:, position : position + 1], position)
        position += 1
    tokens = [prompt]
    for step in range(max_new_tokens):
        last = np.asarray(logits)[:, -1]
        if not np.isfinite(last).all():  # argmax of NaN logits is token 0: never a silent answer
            raise FloatingPointError(
                f"The model gave NaN or infinite logits at position {position - 1}, so no token can be drawn. "
                "Check the model's weights (a NaN weight, an overflow in float16) and its inputs."
            )
        if on_token is not None:
            on_token(position - 1, last)
        token = draw(last)
        tokens.append(token[:, None])
        if step + 1 < max_new_tokens:
            logits = run(token[:, None], position)
            position += 1
    return np.concatenate(tokens, axis=1)
