"""ListOps (Long Range Arena): nested MAX / MIN / MED / SM (sum mod 10) expressions over digits, answer 0-9.

Generated here, deterministic by seed: an expression is a digit, or with probability
`branch_probability` (below `max_depth`) an operator over 2 to `max_args` sub-expressions;
only expressions whose token count falls in [min_length, max_length) are kept, as LRA does.
"""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np

from keras_sparse.datasets.vocabulary import Vocabulary

OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")
DIGITS = tuple(str(d) for d in range(10))
VOCABULARY = Vocabulary([*OPERATORS, "]", *DIGITS])


@dataclasses.dataclass(frozen=True)
class TaskData:
    """A generated classification task.

    Attributes:
        inputs: int32 `(num_examples, seq_len)` token ids: `<cls>` first, padded with 0.
        labels: int32 `(num_examples,)`.
        vocabulary: the `Vocabulary` the ids come from.
        texts: the examples as text (what a user would type).
        num_classes: number of labels.
    """

    inputs: np.ndarray
    labels: np.ndarray
    vocabulary: Vocabulary
    texts: tuple[str, ...]
    num_classes: int


class _TooLong(Exception):
    pass


def _expression(rng, depth, limits, out: list) -> None:
    max_depth, max_args, branch_probability, max_tokens = limits
    if len(out) >= max_tokens:
        raise _TooLong
    if depth > 1 and (depth >= max_depth or rng.random() >= branch_probability):
        out.append(DIGITS[rng.integers(10)])
        return
    out.append(OPERATORS[rng.integers(len(OPERATORS))])
    for _ in range(rng.integers(2, max_args + 1)):
        _expression(rng, depth + 1, limits, out)
    out.append("]")


def evaluate(text: str) -> int:
    """The value of a ListOps expression (MED is the median rounded down, as in LRA).

    Example:

    >>> evaluate("[MAX 2 9 [MIN 4 7 ] 0 ]"), evaluate("[SM 5 6 7 ]"), evaluate("[MED 1 2 3 4 ]")
    (9, 8, 2)
    """
    stack: list[list] = [[]]
    for token in text.split():
        if token in OPERATORS:
            stack.append([token])
        elif token == "]":
            operator, *values = stack.pop()
            stack[-1].append(_apply(operator, values))
        else:
            stack[-1].append(int(token))
    (value,) = stack[0]
    return value


def _apply(operator: str, values: list[int]) -> int:
    if operator == "[MAX":
        return max(values)
    if operator == "[MIN":
        return min(values)
    if operator == "[MED":
        return int(statistics.median(values))
    return sum(values) % 10


def listops(
    num_examples: int,
    max_length: int = 512,
    seed: int = 0,
    min_length: int | None = None,
    max_depth: int = 10,
    max_args: int = 10,
    branch_probability: float = 0.25,
) -> TaskData:
    """Generates ListOps examples as `<cls>` + expression tokens, padded to `max_length`.

    Args:
        num_examples: how many.
        max_length: the sequence length (tokens per example, `<cls>` included).
        seed: the same seed gives the same examples.
        min_length: shortest expression kept (default `max_length // 4`).
        max_depth, max_args, branch_probability: the generator (LRA: 10, 10, 0.25).

    Example:

    >>> data = listops(4, max_length=64, seed=0)
    >>> data.inputs.shape, data.labels.tolist() == [evaluate(t) for t in data.texts]
    ((4, 64), True)
    """
    min_length = max_length // 4 if min_length is None else min_length
    if not 1 <= min_length < max_length:
        raise ValueError(
            f"Received an invalid value for argument `min_length`, expected 1 <= min_length < max_length="
            f"{max_length}. Received: min_length={min_length}"
        )
    rng = np.random.default_rng(seed)
    limits = (max_depth, max_args, branch_probability, max_length - 1)
    texts = []
    while len(texts) < num_examples:
        tokens: list[str] = []
        try:
            _expression(rng, 1, limits, tokens)
        except _TooLong:
            continue
        if min_length <= len(tokens) <= max_length - 1:
            texts.append(" ".join(tokens))
    inputs = np.stack([VOCABULARY.encode(text, max_length) for text in texts])
    labels = np.array([evaluate(text) for text in texts], dtype=np.int32)
    return TaskData(inputs, labels, VOCABULARY, tuple(texts), num_classes=10)
