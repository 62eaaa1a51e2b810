"""Training under tf.distribute.MirroredStrategy on two logical CPU devices.

It runs in a fresh process: logical devices can only be set before TensorFlow starts.
"""

import subprocess
import sys
import textwrap


def test_mirrored_strategy_fit_on_two_replicas():
    script = textwrap.dedent(
        """
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras, keras_sparse as ks
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        keras.utils.set_random_seed(0)
        data = np.random.default_rng(0).normal(size=(64, 32, 4)).astype("float32")
        target = data[:, :, 0].mean(axis=1, keepdims=True) * 3
        for implementation in ("blocked", "sparse"):
            with strategy.scope():
                x = keras.Input((32, 4))
                h = ks.layers.SparseMultiHeadAttention(
                    num_heads=2, key_dim=4, pattern=ks.patterns.BigBird(8, num_global_blocks=1, num_random_blocks=1),
                    implementation=implementation)(x, x)
                model = keras.Model(x, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(h)))
                model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
            losses = model.fit(data, target, epochs=6, batch_size=16, verbose=0).history["loss"]
            assert losses[-1] < 0.7 * losses[0], (implementation, losses)
            print(implementation, "ok", losses[0], losses[-1])
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" ok ") == 2, result.stdout
