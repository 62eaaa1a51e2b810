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
from keras_sparse.validation import fraction, integer, invalid_argument, non_negative_int, positive_int

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


def task_data(texts: list[str], labels, vocabulary: Vocabulary, seq_len: int, num_classes: int) -> TaskData:
    """A `TaskData` of `texts` encoded to `seq_len` ids (an empty task has inputs of shape `(0, seq_len)`)."""
    inputs = np.zeros((len(texts), seq_len), np.int32)
    for row, text in enumerate(texts):
        inputs[row] = vocabulary.encode(text, seq_len)
    return TaskData(inputs, np.asarray(labels, np.int32), vocabulary, tuple(texts), num_classes)


@dataclasses.dataclass(frozen=True)
class _Generator:
    """LRA's ListOps generator: a node below the root is a digit, or (below `max_depth`, with probability
    `branch_probability`) an operator over 2 to `max_args` sub-expressions; the root is always an operator."""

    max_depth: int
    max_args: int
    branch_probability: float

    def expression(self, rng: np.random.Generator, max_tokens: int) -> list[str] | None:
        """One expression's tokens, or None once it passes `max_tokens` (then it is abandoned unfinished).

        Depth first with an explicit stack (no recursion limit), drawing from `rng` in the order of the
        recursive definition: at each node the digit-or-operator draw, then the digit, or the operator and its
        number of arguments.
        """
        tokens: list[str] = []
        open_operators: list[list[int]] = []  # [depth, arguments still to generate]
        depth = 1
        while True:
            if len(tokens) >= max_tokens:
                return None
            if depth > 1 and (depth >= self.max_depth or rng.random() >= self.branch_probability):
                tokens.append(DIGITS[rng.integers(10)])
            else:
                tokens.append(OPERATORS[rng.integers(len(OPERATORS))])
                open_operators.append([depth, int(rng.integers(2, self.max_args + 1))])
            while open_operators and open_operators[-1][1] == 0:
                open_operators.pop()
                tokens.append("]")
            if not open_operators:
                return tokens
            open_operators[-1][1] -= 1
            depth = open_operators[-1][0] + 1

    def possible_lengths(self, longest: int) -> np.ndarray:
        """bool `(longest + 1,)`: True at n if some expression has exactly n tokens.

        Bottom-up over depth: a node at `max_depth` is a digit (1 token); above it, a digit (if
        `branch_probability < 1`) or an operator (if `branch_probability > 0`), whose lengths are 2 plus a sum
        of 2 to `max_args` lengths of the level below. The sets stop changing after a few levels (they only grow,
        or with `branch_probability` 1 only lengthen past `longest`), which ends the loop early.
        """
        digit = np.zeros(longest + 1, bool)
        digit[1] = True
        below = digit
        for _ in range(self.max_depth - 1, 1, -1):
            level = np.zeros_like(digit)
            if self.branch_probability < 1:
                level |= digit
            if self.branch_probability > 0:
                level |= self._operator_lengths(below)
            if np.array_equal(level, below):
                break
            below = level
        return self._operator_lengths(below)

    def _operator_lengths(self, arguments: np.ndarray) -> np.ndarray:
        """Lengths of `[OP a_1 ... a_k ]`, 2 <= k <= max_args, each a_i's length possible in `arguments`."""
        size = 2 * len(arguments)
        spectrum = np.fft.rfft(arguments.astype(float), size)
        sums, lengths = arguments, np.zeros_like(arguments)
        for _ in range(2, min(self.max_args, len(arguments)) + 1):
            sums = np.fft.irfft(np.fft.rfft(sums.astype(float), size) * spectrum, size)[: len(arguments)] > 0.5
            if not sums.any():
                break
            lengths[2:] |= sums[:-2]
        return lengths


MIN_ACCEPTANCE = 1 / 1000
"""`listops` gives up when, after 2000 attempts, fewer than this fraction of expressions had a length in range."""


def evaluate(text: str) -> int:
    """The value of a ListOps expression (MED is the median rounded down, as in LRA).

    Raises:
        ValueError: `text` is not a ListOps expression (unknown tokens, unbalanced brackets, an operator
            without arguments, or more than one expression).

    Example:

    >>> evaluate("[MAX 2 9 [MIN 4 7 ] 0 ]"), evaluate("[SM 5 6 7 ]"), evaluate("[MED 1 2 3 4 ]")
    (9, 8, 2)
    """
    if not isinstance(text, str):
        raise invalid_argument("text", "a ListOps expression as a string", f"text={text!r}")
    stack: list[list] = [[]]
    for token in text.split():
        if token in OPERATORS:
            stack.append([token])
        elif token == "]" and len(stack) > 1 and len(stack[-1]) > 1:
            operator, *values = stack.pop()
            stack[-1].append(_apply(operator, values))
        elif token in DIGITS:
            stack[-1].append(int(token))
        else:
            break
    else:
        if len(stack) == 1 and len(stack[0]) == 1:
            return stack[0][0]
    raise invalid_argument(
        "text",
        f"one ListOps expression of {', '.join(OPERATORS)}, ']' and digits 0-9, e.g. '[MAX 2 [MIN 4 7 ] 0 ]'",
        f"text={text[:200]!r}",
    )


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
        num_examples: how many (1 or more; 0 raises a ValueError rather than return an empty task).
        max_length: the sequence length (tokens per example, `<cls>` included).
        seed: the same seed gives the same examples.
        min_length: shortest expression kept (default `max_length // 4`); expressions have at most
            `max_length - 1` tokens.
        max_depth: operators nest at most `max(1, max_depth - 1)` deep (LRA: 10).
        max_args: arguments per operator, from 2 (LRA: 10).
        branch_probability: chance that an argument is an operator rather than a digit (LRA: 0.25).

    Raises:
        ValueError: an argument is invalid, or no expression can have `min_length` to `max_length - 1` tokens
            with these settings (checked before generating), or such expressions are too rare to generate
            (under 1 in 1000 attempts).

    Example:

    >>> data = listops(4, max_length=64, seed=0)
    >>> data.inputs.shape, data.labels.tolist() == [evaluate(t) for t in data.texts]
    ((4, 64), True)
    """
    num_examples = positive_int("num_examples", num_examples)
    max_length = integer("max_length", max_length, at_least=2)
    seed = non_negative_int("seed", seed)
    min_length = max_length // 4 if min_length is None else integer("min_length", min_length)
    if not 1 <= min_length < max_length:
        raise invalid_argument("min_length", f"1 <= min_length < max_length={max_length}", f"min_length={min_length}")
    generator = _Generator(
        positive_int("max_depth", max_depth),
        integer("max_args", max_args, at_least=2, at_most=2**31 - 1),
        fraction("branch_probability", branch_probability, closed_above=True),
    )
    longest = max_length - 1
    _check_feasible(generator, generator.possible_lengths(longest), min_length, longest)
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    attempts = too_long = 0
    while len(texts) < num_examples:
        if attempts >= 2000 and len(texts) < MIN_ACCEPTANCE * attempts:
            raise ValueError(
                f"listops made only {len(texts)} of {num_examples} expressions of {min_length} to {longest} tokens in "
                f"{attempts} attempts ({too_long} were longer, the rest shorter): with {_settings(generator)} they "
                "are too rare to generate. Widen min_length..max_length, or change max_depth, max_args or "
                "branch_probability."
            )
        attempts += 1
        tokens = generator.expression(rng, longest)
        if tokens is None or len(tokens) > longest:
            too_long += 1
        elif len(tokens) >= min_length:
            texts.append(" ".join(tokens))
    return task_data(texts, [evaluate(text) for text in texts], VOCABULARY, max_length, num_classes=10)


def _settings(generator: _Generator) -> str:
    return ", ".join(f"{field.name}={getattr(generator, field.name)}" for field in dataclasses.fields(generator))


def _check_feasible(generator: _Generator, possible: np.ndarray, min_length: int, longest: int) -> None:
    if possible[min_length:].any():
        return
    if possible.any():
        found = f"they have at most {np.flatnonzero(possible).max()} tokens"
        fix = "Lower min_length, or raise max_depth, max_args or branch_probability."
    else:
        found = f"every one has more than max_length - 1 = {longest} tokens"
        fix = "Raise max_length, or lower max_depth, max_args or branch_probability."
    raise ValueError(
        "Received arguments `min_length`, `max_length`, `max_depth`, `max_args`, `branch_probability` that no "
        f"ListOps expression satisfies: it must have min_length={min_length} to max_length - 1 = {longest} tokens, "
        f"and with {_settings(generator)} {found}. {fix}"
    )
