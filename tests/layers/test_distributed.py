"""Training under tf.distribute.MirroredStrategy on two logical CPU devices."""

from tests.two_devices import run_on_two_devices


def test_mirrored_strategy_fit_on_two_replicas():
    stdout = run_on_two_devices(
        """
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
    assert stdout.count(" ok ") == 2, stdout
