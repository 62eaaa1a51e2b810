"""Argument checks shared by the whole public API, so every bad value gets the same kind of message.

Each check returns the value as a plain Python type or raises a ValueError in Keras's style, naming the
argument, what it expects and what it received:

    Received an invalid value for argument `num_heads`, expected a positive integer. Received: num_heads=0

NumPy integer and floating scalars (`np.int64(4)`, `np.float32(0.5)`) are accepted wherever a Python
number is. Booleans are not numbers here, and only `True` / `False` (or a NumPy bool) are booleans: a
string such as `"no"` is refused rather than read as true. Non-finite numbers (NaN, infinities) never pass.

Example:

>>> import numpy as np
>>> from keras_sparse import validation
>>> validation.number("rate", np.float32(0.5), above=0)
0.5
>>> validation.boolean("per_head", "no")
Traceback (most recent call last):
...
ValueError: Received an invalid value for argument `per_head`, expected True or False. Received: per_head='no'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def invalid_argument(name: str, expected: str, received: str) -> ValueError:
    """The error for argument `name`: "Received an invalid value for argument `name`, expected ... Received: ..."."""
    return ValueError(f"Received an invalid value for argument `{name}`, expected {expected}. Received: {received}")


def sequence_shape(name: str, shape) -> tuple:
    """`shape` as a tuple if it has rank 3, `(batch, sequence, features)`; else the error naming `name`."""
    if len(shape) != 3:
        raise invalid_argument(name, "a rank-3 tensor (batch, sequence, features)", f"{name}.shape={tuple(shape)}")
    return tuple(shape)


def _refuse(name: str, value, expected: str) -> ValueError:
    return invalid_argument(name, expected, f"{name}={value!r}")


def is_integer(value) -> bool:
    """True for Python and NumPy integers, False for booleans."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def integer(name: str, value, at_least: int | None = None, at_most: int | None = None) -> int:
    """`value` as an int if it is an integer in `[at_least, at_most]` (either bound optional)."""
    if at_least == 1 and at_most is None:
        expected = "a positive integer"
    elif at_least == 0 and at_most is None:
        expected = "a non-negative integer"
    elif at_most is None:
        expected = "an integer" if at_least is None else f"an integer >= {at_least}"
    else:
        expected = f"an integer <= {at_most}" if at_least is None else f"an integer in [{at_least}, {at_most}]"
    if (
        not is_integer(value)
        or (at_least is not None and value < at_least)
        or (at_most is not None and value > at_most)
    ):
        raise _refuse(name, value, expected)
    return int(value)


def positive_int(name: str, value) -> int:
    """`value` as an int if it is an integer >= 1."""
    return integer(name, value, at_least=1)


def non_negative_int(name: str, value) -> int:
    """`value` as an int if it is an integer >= 0."""
    return integer(name, value, at_least=0)


def optional_positive_int(name: str, value) -> int | None:
    """None, or `value` as an int if it is an integer >= 1."""
    if value is None:
        return None
    if not is_integer(value) or value < 1:
        raise _refuse(name, value, "None or a positive integer")
    return int(value)


def number(
    name: str,
    value,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
) -> float:
    """`value` as a float if it is a finite real number within the bounds given (at most one lower, one upper)."""
    expected = _number_range(at_least, above, at_most, below)
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if (
        not real
        or not math.isfinite(value)
        or (at_least is not None and value < at_least)
        or (above is not None and value <= above)
        or (at_most is not None and value > at_most)
        or (below is not None and value >= below)
    ):
        raise _refuse(name, value, expected)
    return float(value)


def _number_range(at_least, above, at_most, below) -> str:
    """ "a positive number", "a number in [0, 1)", ... for the bounds of `number`."""
    if (at_least is not None and above is not None) or (at_most is not None and below is not None):
        raise TypeError("number() takes at most one lower bound (at_least or above) and one upper (at_most or below)")
    has_low, has_high = at_least is not None or above is not None, at_most is not None or below is not None
    if not has_high and above == 0:
        return "a positive number"
    if not has_high and at_least == 0:
        return "a non-negative number"
    if has_low and has_high:
        low = f"[{at_least:g}" if above is None else f"({above:g}"
        high = f"{at_most:g}]" if below is None else f"{below:g})"
        return f"a number in {low}, {high}"
    if has_low:
        return f"a number >= {at_least:g}" if above is None else f"a number > {above:g}"
    if has_high:
        return f"a number <= {at_most:g}" if below is None else f"a number < {below:g}"
    return "a finite number"


def fraction(name: str, value, closed_above: bool = False) -> float:
    """`value` as a float in [0, 1) (or [0, 1] with `closed_above`): a sparsity, a rate, a probability."""
    return number(name, value, at_least=0, **({"at_most": 1} if closed_above else {"below": 1}))


def boolean(name: str, value) -> bool:
    """`value` as a bool if it is `True`, `False` or a NumPy bool; anything else (`"no"`, 0, None) is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise _refuse(name, value, "True or False")
    return bool(value)


def one_of(name: str, value, choices: Sequence):
    """`value` if it is one of `choices` (of the same type: `1` is not `"1"`, arrays are refused)."""
    if not any(isinstance(value, type(choice)) and value == choice for choice in choices):
        raise _refuse(name, value, f"one of {tuple(choices)}")
    return value
