"""Checks of the converters' arguments: each error names the argument, what it expects and what it received."""

from __future__ import annotations

import numbers

import numpy as np


def checked_bound(name: str, value, default: float) -> float:
    """`value` (or `default` if None) as a bound in [0, 1]: a relative error or a share of equal argmaxes.

    Raises:
        ValueError: for a value that is not a finite number in [0, 1] (NaN included).

    Example:

    >>> checked_bound("max_relative_error", None, 0.15)
    0.15
    """
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) <= 1:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a number in [0, 1]. Received: {name}={value!r}"
        )
    return float(value)


def checked_flag(name: str, value) -> bool:
    """`value` if it is True or False (NumPy's too): strings such as 'no' are refused, not taken as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected True or False. Received: {name}={value!r}"
        )
    return bool(value)


def checked_count(name: str, value) -> int:
    """`value` if it is a non-negative integer (NumPy's too)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a non-negative integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)
