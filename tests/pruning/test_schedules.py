"""Schedules give tensorflow-model-optimization's values at every step.

tfmot is a test-only dependency and switches TensorFlow to legacy Keras when imported,
so its values are computed in a separate process.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_sparse as ks

CASES = [
    ("ConstantSparsity", dict(target_sparsity=0.5, begin_step=0)),
    ("ConstantSparsity", dict(target_sparsity=0.3, begin_step=7, end_step=91, frequency=9)),
    ("PolynomialDecay", dict(initial_sparsity=0.0, final_sparsity=0.5, begin_step=10, end_step=150, frequency=10)),
    (
        "PolynomialDecay",
        dict(initial_sparsity=0.1, final_sparsity=0.9, begin_step=3, end_step=77, power=1, frequency=7),
    ),
    ("PolynomialDecay", dict(initial_sparsity=0.2, final_sparsity=0.8, begin_step=0, end_step=200, power=2)),
    ("PolynomialDecay", dict(initial_sparsity=0.0, final_sparsity=0.6, begin_step=4, end_step=90, power=0.5)),
    (  # NumPy scalars, as a user's config computed with NumPy gives them
        "PolynomialDecay",
        dict(
            initial_sparsity=np.float32(0.125),
            final_sparsity=np.float64(0.75),
            begin_step=np.int64(2),
            end_step=np.int32(120),
            power=np.float32(1.5),
            frequency=np.int64(4),
        ),
    ),
    ("ConstantSparsity", dict(target_sparsity=np.float32(0.25), begin_step=np.int64(3), frequency=np.int16(5))),
]
STEPS = list(range(0, 260))


@pytest.fixture(scope="module")
def tfmot_values():
    script = textwrap.dedent(
        f"""
        import json, os
        import numpy as np
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import tensorflow_model_optimization as tfmot
        out = []
        for name, kwargs in {CASES!r}:
            schedule = getattr(tfmot.sparsity.keras, name)(**kwargs)
            values = []
            for step in {STEPS!r}:
                prune, sparsity = schedule(step)
                values.append([bool(prune.numpy()), float(sparsity.numpy())])
            out.append(values)
        print(json.dumps(out))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", range(len(CASES)))
def test_schedule_equals_tfmot_at_every_step(case, tfmot_values):
    name, kwargs = CASES[case]
    schedule = getattr(ks.pruning, name)(**kwargs)
    for step, (tfmot_prune, tfmot_sparsity) in zip(STEPS, tfmot_values[case], strict=True):
        prune, sparsity = schedule(step)
        assert prune == tfmot_prune, (step, prune)
        assert sparsity == pytest.approx(tfmot_sparsity, abs=1e-6), step


def test_config_round_trip():
    schedule = ks.pruning.PolynomialDecay(0.1, 0.6, begin_step=5, end_step=50, power=2, frequency=3)
    again = ks.pruning.PolynomialDecay.from_config(schedule.get_config())
    assert [again(s) for s in range(60)] == [schedule(s) for s in range(60)]


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: ks.pruning.ConstantSparsity(1.0, begin_step=0), "target_sparsity"),
        (lambda: ks.pruning.ConstantSparsity(-0.1, begin_step=0), "target_sparsity"),
        (lambda: ks.pruning.PolynomialDecay(0.0, 1.2, begin_step=0, end_step=10), "final_sparsity"),
        (lambda: ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=10, end_step=10), "end_step"),
        (lambda: ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=10, end_step=-1), "end_step"),
        (lambda: ks.pruning.ConstantSparsity(0.5, begin_step=10, end_step=5), "end_step"),
        (lambda: ks.pruning.ConstantSparsity(0.5, begin_step=-1), "begin_step"),
        (lambda: ks.pruning.ConstantSparsity(0.5, begin_step=0, frequency=0), "frequency"),
        (lambda: ks.pruning.ConstantSparsity(float("nan"), begin_step=0), "target_sparsity"),
        (lambda: ks.pruning.ConstantSparsity(True, begin_step=0), "target_sparsity"),
        (lambda: ks.pruning.ConstantSparsity(0.5, begin_step=2.0), "begin_step"),
        (lambda: ks.pruning.ConstantSparsity(0.5, begin_step=0, frequency="10"), "frequency"),
        (lambda: ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=10, power=0), "power"),
        (lambda: ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=10, power=-1), "power"),
        (lambda: ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=10, power=float("inf")), "power"),
        (lambda: ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=10, power="3"), "power"),
    ],
)
def test_bad_arguments_are_named(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    initial=st.floats(0, 0.99),
    final=st.floats(0, 0.99),
    begin=st.integers(0, 50),
    length=st.integers(1, 100),
    power=st.floats(1e-3, 100) | st.integers(1, 10),
)
def test_polynomial_decay_reaches_its_final_sparsity_at_end_step(initial, final, begin, length, power):
    """Zhu & Gupta's schedule for every power it accepts: initial at begin_step, final from end_step on."""
    schedule = ks.pruning.PolynomialDecay(initial, final, begin_step=begin, end_step=begin + length, power=power)
    assert schedule(begin)[1] == pytest.approx(initial)
    assert schedule(begin + length) == (schedule.should_prune(begin + length), final)
    assert schedule(begin + length + 7)[1] == final
