"""Runs a test body in a fresh process with two logical CPU devices and `strategy`, a MirroredStrategy on both.

Logical devices can only be set before TensorFlow starts, hence the process.
"""

import subprocess
import sys
import textwrap

PRELUDE = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, keras_sparse as ks
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
"""


def run_on_two_devices(body: str) -> str:
    """Runs PRELUDE + `body`; fails the test with the child's stderr if it fails; returns its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
