"""Pieces the training benchmarks share: seeding, the pruning schedule they use and LiteRT accuracy."""

from __future__ import annotations

import json
import re
import signal
import statistics
import subprocess
import sys
import time

import numpy as np


def reproducible(seed: int = 0) -> None:
    """Seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`) and makes TensorFlow's ops deterministic.

    With op determinism, a run gives the same numbers as the last one on the same machine (TensorFlow's threaded
    reductions otherwise add in varying orders); other machines may still differ. It is set for the whole process.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def pruning_schedule(total_steps: int, sparsity: float):
    """PolynomialDecay from 30% to 75% of training, ending on a pruning step so `sparsity` is reached."""
    import keras_sparse as ks

    frequency = max(1, total_steps // 40)
    begin = int(0.3 * total_steps)
    end = begin + frequency * max(1, (int(0.75 * total_steps) - begin) // frequency)
    return ks.pruning.PolynomialDecay(0.0, sparsity, begin_step=begin, end_step=end, frequency=frequency)


def litert_accuracy(path, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a `.tflite` classifier in LiteRT (batch 1, 2 threads)."""
    from converters import predict

    return float((predict(path, inputs).argmax(-1) == labels).mean())


def run_isolated(script: str, one: list[str], args) -> dict | str:
    """Runs `script --one ONE... --seq-len --train --test --epochs` (from `args`) in a fresh process.

    Returns the JSON row it prints last, or its last error line if it failed.
    """
    command = [sys.executable, script, "--one", *one]
    for flag in ("seq_len", "train", "test", "epochs"):
        command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode < 0:
        return (
            f"the process was killed by {signal.Signals(-done.returncode).name} (a native crash, e.g. in the converter)"
        )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if re.match(r"^\w+(Error|Exception)\b", line)]
        return errors[-1] if errors else done.stderr.strip().splitlines()[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_ms(function, argument, repeats: int) -> float:
    """Median wall time of `function(argument)` in ms over `repeats` calls, after a call that traces it and one
    that warms up; every output it returns (None skipped) is fetched."""
    import tensorflow as tf

    function(argument)
    function(argument)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        [t.numpy() for t in tf.nest.flatten(function(argument), expand_composites=True) if t is not None]
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def interleaved_medians(calls: dict, repeats: int) -> dict:
    """Median wall time in ms of each of `calls` (key -> function of no arguments), timed in `repeats` rounds that
    call each once, so that a change of machine load reaches every key alike."""
    times = {key: [] for key in calls}
    for _ in range(repeats):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            times[key].append((time.perf_counter() - start) * 1e3)
    return {key: statistics.median(values) for key, values in times.items()}


def run_case(script: str, *arguments) -> dict:
    """Runs `script --case ARGUMENTS...` in a fresh process: the JSON row it prints last, or `{"error": ...}`."""
    command = [sys.executable, script, "--case", *map(str, arguments)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode < 0:  # no Python error to show: its last stderr line would be a TensorFlow log line
        name = signal.Signals(-result.returncode).name
        return {"error": f"killed by {name}" + (", most likely out of memory" if name == "SIGKILL" else "")}
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])
