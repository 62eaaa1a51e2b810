"""ListOps: answers checked by an independent evaluator, deterministic by seed, lengths in bounds."""

import numpy as np
import pytest

import keras_sparse as ks
from keras_sparse.datasets.listops import _Generator


def independent_value(tokens: list[str]) -> int:
    """Recursive descent over the token list (the library evaluates with a stack)."""

    def parse(position):
        token = tokens[position]
        if token.isdigit():
            return int(token), position + 1
        values, position = [], position + 1
        while tokens[position] != "]":
            value, position = parse(position)
            values.append(value)
        ordered = sorted(values)
        result = {
            "[MAX": ordered[-1],
            "[MIN": ordered[0],
            "[MED": (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) // 2,
            "[SM": sum(values) % 10,
        }[token]
        return result, position + 1

    value, end = parse(0)
    assert end == len(tokens)
    return value


@pytest.fixture(scope="module")
def data():
    return ks.datasets.listops(300, max_length=256, seed=3)


def test_answers_match_an_independent_evaluator(data):
    for text, label in zip(data.texts, data.labels, strict=True):
        assert independent_value(text.split()) == label


def test_ids_encode_the_texts_with_cls_and_padding(data):
    for text, ids in zip(data.texts, data.inputs, strict=True):
        assert ids[0] == 1 and data.vocabulary.decode(ids) == text
        length = len(text.split()) + 1
        assert (ids[:length] > 0).all() and (ids[length:] == 0).all()


def test_lengths_within_bounds_and_depth_at_most_ten(data):
    lengths = np.array([len(t.split()) for t in data.texts])
    assert lengths.min() >= 256 // 4 and lengths.max() <= 255
    for text in data.texts:
        depth = np.cumsum([1 if t.startswith("[") else -1 if t == "]" else 0 for t in text.split()])
        assert depth.max() <= 10


def test_same_seed_same_data_other_seed_other_data(data):
    again = ks.datasets.listops(300, max_length=256, seed=3)
    np.testing.assert_array_equal(again.inputs, data.inputs)
    assert not np.array_equal(ks.datasets.listops(300, max_length=256, seed=4).inputs, data.inputs)


def test_every_answer_occurs():
    assert set(ks.datasets.listops(400, max_length=128, seed=0).labels) == set(range(10))


def test_bad_min_length_is_named():
    with pytest.raises(ValueError, match="`min_length`"):
        ks.datasets.listops(4, max_length=64, min_length=64)


def brute_force_lengths(max_depth: int, max_args: int, branch_probability: float, longest: int) -> set[int]:
    """Every expression length up to `longest`, by enumerating the generator's choices (small settings only)."""

    def lengths(depth: int) -> set[int]:
        found = set()
        if depth > 1 and (depth >= max_depth or branch_probability < 1):
            found.add(1)
        if depth == 1 or (depth < max_depth and branch_probability > 0):
            arguments, sums = lengths(depth + 1), {0}
            for count in range(1, max_args + 1):
                sums = {a + b for a in sums for b in arguments if a + b <= longest}
                if count >= 2:
                    found |= {2 + total for total in sums if 2 + total <= longest}
        return found

    return lengths(1)


@pytest.mark.parametrize(
    "max_depth, max_args, branch_probability",
    [(1, 3, 0.25), (2, 4, 0.5), (3, 3, 0.25), (3, 3, 1.0), (4, 2, 1.0), (3, 2, 0.0), (4, 3, 0.7)],
)
def test_possible_lengths_match_enumeration(max_depth, max_args, branch_probability):
    generator = _Generator(max_depth, max_args, branch_probability)
    found = set(np.flatnonzero(generator.possible_lengths(60)).tolist())
    assert found == brute_force_lengths(max_depth, max_args, branch_probability, 60)


@pytest.mark.parametrize(
    "kwargs, names",
    [
        (dict(max_length=4), "has more than max_length - 1 = 3 tokens"),
        (dict(max_depth=2), "at most 12 tokens"),
        (dict(max_depth=3), "at most 122 tokens"),
        (dict(branch_probability=1.0), "more than max_length - 1 = 511"),
        (dict(branch_probability=0.0), "at most 12 tokens"),
        (dict(min_length=60, max_length=64, max_depth=2), "at most 12 tokens"),
    ],
)
def test_settings_no_expression_satisfies_fail_at_once(kwargs, names):
    """These looped for ever; now they fail before generating, naming the arguments and what was found."""
    with pytest.raises(ValueError, match=f"`min_length`, `max_length`, `max_depth`.*{names}"):
        ks.datasets.listops(3, **kwargs)


def test_settings_whose_expressions_are_too_rare_stop_with_a_clear_error():
    """Lengths 8..31 are possible with branch_probability 0.9, but nearly every tree is longer."""
    with pytest.raises(ValueError, match="made only 0 of 5 expressions of 8 to 31 tokens in 2000 attempts"):
        ks.datasets.listops(5, max_length=32, branch_probability=0.9)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(num_examples=-1), "num_examples"),
        (dict(num_examples=0), "num_examples"),
        (dict(num_examples=2.0), "num_examples"),
        (dict(max_length="512"), "max_length"),
        (dict(max_depth=0), "max_depth"),
        (dict(max_args=1), "max_args"),
        (dict(branch_probability=1.5), "branch_probability"),
        (dict(branch_probability=float("nan")), "branch_probability"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ks.datasets.listops(**{"num_examples": 2, **kwargs})


def test_numpy_scalars():
    data = ks.datasets.listops(np.int64(3), np.int32(64), seed=np.int64(0), branch_probability=np.float32(0.25))
    np.testing.assert_array_equal(data.inputs, ks.datasets.listops(3, 64, seed=0).inputs)


class ChainDraws:
    """Draws that make `[MAX [MAX ... [MAX 0 0 ] 0 ] ... 0 ]`: branch at the first `levels` draws, then digits."""

    def __init__(self, levels: int):
        self.draws = 0
        self.levels = levels

    def random(self):
        self.draws += 1
        return 0.0 if self.draws <= self.levels else 0.99

    def integers(self, low, high=None):
        return 0 if high is None else low  # digit "0", "[MAX", 2 arguments


def test_deep_expressions_do_not_hit_the_recursion_limit():
    """1500 nested operators (Python's recursion limit is 1000): generated depth first without recursion."""
    tokens = _Generator(max_depth=2000, max_args=2, branch_probability=0.5).expression(ChainDraws(1499), 6000)
    assert tokens == ["[MAX"] * 1500 + ["0"] + ["0", "]"] * 1500


@pytest.mark.parametrize("text", ["", "5 6", "[MAX ]", "[MAX 1 2", "]", "[MAX 1 12 ]", "[MIN 1 x ]", "[MAX 1 ] ]"])
def test_evaluate_refuses_what_is_not_an_expression(text):
    with pytest.raises(ValueError, match="`text`"):
        ks.datasets.evaluate(text)
