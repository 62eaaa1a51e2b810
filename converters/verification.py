"""Comparing a file's outputs with the Keras model's: bounds, non-finite numbers, and the measures reported."""

from __future__ import annotations

import dataclasses

import numpy as np

from converters.errors import VerificationError

REWRITE_TOLERANCE = 1e-5
"""The largest relative change the export rewrites may make to a model's outputs (float32 rounding)."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How outputs compare with the Keras model's, over every output and sample.

    Attributes:
        max_relative_error: max |actual - expected| / max |expected|, per output; the worst output's.
        mean_absolute_error: mean |actual - expected| over every output value.
        argmax_agreement: the share of equal argmaxes on classifier outputs (rank 2, more than one class);
            the lowest over such outputs, or None if there are none.
    """

    max_relative_error: float
    mean_absolute_error: float
    argmax_agreement: float | None


def compare(actual: list[list[np.ndarray]], expected: list[list[np.ndarray]]) -> Comparison:
    """Compares outputs per sample (each a list of arrays in the model's output order).

    A NaN on either side makes the errors NaN (which no bound accepts), never 0.
    """
    relative, absolute, agreements = [], [], []
    for output in range(len(expected[0])):
        want = np.concatenate([sample[output] for sample in expected]).astype(np.float64)
        got = np.concatenate([sample[output] for sample in actual]).astype(np.float64)
        difference = np.abs(got - want)
        relative.append(np.max(difference, initial=0.0) / np.maximum(np.max(np.abs(want), initial=0.0), 1e-30))
        absolute.append(difference.ravel())
        if want.ndim == 2 and want.shape[-1] > 1:
            agreements.append(float((got.argmax(-1) == want.argmax(-1)).mean()))
    absolute = np.concatenate(absolute)
    return Comparison(
        float(np.max(relative)), float(absolute.mean()) if absolute.size else 0.0, min(agreements, default=None)
    )


def check_finite(outputs: list[list[np.ndarray]], what: str) -> None:
    """Raises VerificationError naming the first sample on which `what` gave a NaN or infinite output."""
    for index, sample in enumerate(outputs):
        if not all(np.isfinite(array).all() for array in sample):
            raise VerificationError(
                f"{what} gave NaN or infinite outputs on verification sample {index}, so the file cannot be "
                "verified; it was not written. Check the model's weights and inputs."
            )


def verify(
    actual: list[list[np.ndarray]],
    expected: list[list[np.ndarray]],
    what: str,
    max_relative_error: float,
    min_argmax_agreement: float,
) -> Comparison:
    """Raises VerificationError unless `actual` (the file `what`) meets both bounds against `expected`.

    Non-finite numbers on either side fail: NaN compares false with any bound.
    """
    check_finite(expected, "The Keras model")
    check_finite(actual, what)
    result = compare(actual, expected)
    failures = []
    if not result.max_relative_error <= max_relative_error:
        failures.append(f"max relative error {result.max_relative_error:.3g} > {max_relative_error:g}")
    if result.argmax_agreement is not None and not result.argmax_agreement >= min_argmax_agreement:
        failures.append(f"argmax agreement {result.argmax_agreement:.1%} < {min_argmax_agreement:.0%}")
    if failures:
        raise VerificationError(
            f"{what} disagrees with the Keras model on {len(expected)} inputs ({'; '.join(failures)}); it was not "
            "written. Give more or better representative_data, or choose another quantization."
        )
    return result
