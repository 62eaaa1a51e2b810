"""Pruning schedules: when to prune and to what sparsity, step by step as tensorflow-model-optimization's.

A schedule is any callable `step -> (should_prune, sparsity)`; tfmot's own schedule
objects qualify. These two take tfmot's arguments and return the same values at every
step (tested against tfmot 0.8), as plain Python numbers: the pruning callbacks call
them between training steps, outside the compiled graph.
"""

from __future__ import annotations

import keras

from keras_sparse.validation import fraction, integer, invalid_argument, non_negative_int, number, positive_int


def _check_steps(begin_step, end_step, frequency, open_end: bool) -> tuple[int, int, int]:
    """`(begin_step, end_step, frequency)` as ints, checked as tensorflow-model-optimization checks them."""
    begin_step = non_negative_int("begin_step", begin_step)
    end_step = integer("end_step", end_step)
    frequency = positive_int("frequency", frequency)
    if open_end and end_step == -1:
        return begin_step, end_step, frequency
    if end_step < begin_step or (end_step == begin_step and not open_end):
        expected = "-1 (prune until training ends) or a step >= " if open_end else "a step after "
        raise invalid_argument("end_step", f"{expected}begin_step={begin_step}", f"end_step={end_step}")
    return begin_step, end_step, frequency


class PruningSchedule:
    """Base class: `schedule(step) -> (should_prune: bool, sparsity: float)`."""

    begin_step: int
    end_step: int
    frequency: int

    def should_prune(self, step: int) -> bool:
        """tfmot's rule: inside [begin_step, end_step] (end_step -1: no end), every `frequency` steps."""
        in_range = step >= self.begin_step and (step <= self.end_step or self.end_step < 0)
        return bool(in_range and (step - self.begin_step) % self.frequency == 0)

    def __call__(self, step: int) -> tuple[bool, float]:
        raise NotImplementedError

    @property
    def final_sparsity_step(self) -> int:
        """The first step at which the schedule asks for its final sparsity."""
        return self.begin_step if self.end_step < 0 else self.end_step

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@keras.saving.register_keras_serializable(package="keras_sparse")
class ConstantSparsity(PruningSchedule):
    """The same sparsity at every pruning step from `begin_step` to `end_step`.

    Args:
        target_sparsity: float in [0, 1).
        begin_step: first step that prunes.
        end_step: last step that prunes (`begin_step` prunes once), or -1 (default) to prune until training ends.
        frequency: prune every `frequency` steps (default 100).

    Example:

    >>> import keras_sparse as ks
    >>> schedule = ks.pruning.ConstantSparsity(0.5, begin_step=10, frequency=5)
    >>> schedule(10), schedule(12), schedule(15)
    ((True, 0.5), (False, 0.5), (True, 0.5))
    """

    def __init__(self, target_sparsity: float, begin_step: int, end_step: int = -1, frequency: int = 100):
        self.target_sparsity = fraction("target_sparsity", target_sparsity)
        self.begin_step, self.end_step, self.frequency = _check_steps(begin_step, end_step, frequency, open_end=True)

    def __call__(self, step: int) -> tuple[bool, float]:
        return self.should_prune(int(step)), self.target_sparsity

    @property
    def final_sparsity(self) -> float:
        return self.target_sparsity

    def get_config(self):
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }


@keras.saving.register_keras_serializable(package="keras_sparse")
class PolynomialDecay(PruningSchedule):
    """Sparsity rising from `initial_sparsity` to `final_sparsity` between `begin_step` and `end_step`.

    `sparsity(step) = final + (initial - final) * (1 - p) ** power`, `p = clip((step - begin) / (end - begin), 0, 1)`
    (Zhu & Gupta, 2017), pruning every `frequency` steps inside [begin_step, end_step].

    Args:
        initial_sparsity, final_sparsity: floats in [0, 1).
        begin_step, end_step: `end_step > begin_step >= 0`.
        power: the exponent, a number > 0 (default 3: fast at first, then slowly).
        frequency: prune every `frequency` steps (default 100).

    Example:

    >>> import keras_sparse as ks
    >>> schedule = ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=100, power=1, frequency=50)
    >>> schedule(0), schedule(50), schedule(100), schedule(150)
    ((True, 0.0), (True, 0.25), (True, 0.5), (False, 0.5))
    """

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        power: float = 3,
        frequency: int = 100,
    ):
        self.initial_sparsity = fraction("initial_sparsity", initial_sparsity)
        self.final_sparsity = fraction("final_sparsity", final_sparsity)
        self.begin_step, self.end_step, self.frequency = _check_steps(begin_step, end_step, frequency, open_end=False)
        # (1 - p) ** power reaches 0 at end_step only for power > 0: power 0 stays at initial_sparsity for
        # ever, and a negative power divides by zero there (tfmot's formula does the same: it checks nothing).
        self.power = number("power", power, above=0)

    def __call__(self, step: int) -> tuple[bool, float]:
        step = int(step)
        progress = min(1.0, max(0.0, (step - self.begin_step) / (self.end_step - self.begin_step)))
        sparsity = (self.initial_sparsity - self.final_sparsity) * (1.0 - progress) ** self.power + self.final_sparsity
        return self.should_prune(step), sparsity

    def get_config(self):
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "power": self.power,
            "frequency": self.frequency,
        }
