"""The shared argument checks: NumPy scalars pass as numbers, non-finite numbers and non-bool flags do not."""

import math

import numpy as np
import pytest

from keras_sparse import validation


@pytest.mark.parametrize("value", [3, np.int8(3), np.int64(3), np.uint16(3)])
def test_integers_of_any_kind_become_python_ints(value):
    result = validation.positive_int("size", value)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, True, np.bool_(True), "3", None, np.array([3])])
def test_positive_int_refuses_with_the_argument_and_value(value):
    with pytest.raises(ValueError, match=r"argument `size`, expected a positive integer\. Received: size="):
        validation.positive_int("size", value)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), np.float16(0.5)])
def test_numbers_of_any_kind_become_python_floats(value):
    result = validation.number("rate", value, above=0)
    assert result == 0.5 and type(result) is float


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"), True, "0.5", None, 1j])
def test_non_finite_and_non_real_numbers_never_pass(value):
    with pytest.raises(ValueError, match="`rate`"):
        validation.number("rate", value)


@pytest.mark.parametrize(
    "bounds, value, expected",
    [
        (dict(above=0), 0, "a positive number"),
        (dict(at_least=0), -1e-9, "a non-negative number"),
        (dict(at_least=0, below=1), 1, r"a number in \[0, 1\)"),
        (dict(above=0, at_most=1), 0, r"a number in \(0, 1\]"),
        (dict(above=2.5), 2.5, "a number > 2.5"),
        (dict(at_most=4), 5, "a number <= 4"),
    ],
)
def test_number_bounds_are_stated_in_the_message(bounds, value, expected):
    with pytest.raises(ValueError, match=f"expected {expected}. Received: x={value!r}"):
        validation.number("x", value, **bounds)


def test_integer_ranges_are_stated_in_the_message():
    assert validation.integer("end_step", -1) == -1
    with pytest.raises(ValueError, match=r"expected an integer in \[2, 5\]\. Received: n=6"):
        validation.integer("n", 6, at_least=2, at_most=5)
    with pytest.raises(ValueError, match="expected an integer >= 2. Received: n=1"):
        validation.integer("n", 1, at_least=2)
    assert validation.optional_positive_int("n", None) is None and validation.optional_positive_int("n", 2) == 2
    with pytest.raises(ValueError, match="expected None or a positive integer"):
        validation.optional_positive_int("n", 0)


@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, np.array([True])])
def test_flags_take_only_booleans(value):
    with pytest.raises(ValueError, match="`per_head`, expected True or False"):
        validation.boolean("per_head", value)
    assert validation.boolean("per_head", np.bool_(False)) is False


def test_one_of_compares_type_and_value():
    assert validation.one_of("kind", "a", ("a", "b")) == "a"
    for value in (1, ["a"], np.array(["a"]), None):
        with pytest.raises(ValueError, match=r"`kind`, expected one of \('a', 'b'\)"):
            validation.one_of("kind", value, ("a", "b"))
