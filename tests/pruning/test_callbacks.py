"""`StructuredPruning` and `PruningLogger` during `model.fit`."""

import csv
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_sparse as ks
from tests.two_devices import run_on_two_devices

from .conftest import attention_model, every_step


def fit(model, data, callbacks, epochs=2):
    return model.fit(*data, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks)


def test_sparsity_follows_the_schedule_step_by_step(data, tmp_path):
    schedule = ks.pruning.PolynomialDecay(0.0, 0.75, begin_step=1, end_step=7, power=1, frequency=2)
    logger = ks.pruning.PruningLogger(tmp_path, update_freq=1)
    fit(attention_model(), data, [ks.pruning.StructuredPruning(schedule, "neurons"), logger])
    with open(logger.csv_path) as file:
        rows = {int(row["step"]): float(row["sparsity"]) for row in csv.DictReader(file)}
    # pruning happens before steps 1, 3, 5, 7 (sparsity 0, .25, .5, .75 of 32 units); logged after each step
    expected = {2: 0.0, 3: 0.0, 4: 0.25, 5: 0.25, 6: 0.5, 7: 0.5, 8: 0.75}
    assert {step: rows[step] for step in expected} == expected


def test_any_callable_schedule_is_accepted(data):
    model = attention_model()
    fit(model, data, [ks.pruning.StructuredPruning(lambda step: (step == 2, 0.5), "heads")])
    assert ks.pruning.Heads().kept(model.get_layer("attention")).sum() == 2


def test_layers_filter_limits_the_targets(data):
    model = attention_model()
    fit(model, data, [ks.pruning.StructuredPruning(every_step(0.5), "n:m", layers=["hidden"])])
    assert [row.layer for row in ks.pruning.pruning_rows(model)] == ["hidden"]


def test_attention_blocks_narrow_the_pattern_and_stop_tracking_after_fit(data):
    model = attention_model()
    layer = model.get_layer("attention")
    fit(model, data, [ks.pruning.StructuredPruning(every_step(0.5), "attention_blocks")])
    start, learned = ks.pruning.attention_blocks.split_learned(layer.pattern)
    assert start == ks.patterns.Dense(block_size=8) and learned.blocks.shape == (4, 4, 4)
    assert (learned.blocks.sum(axis=-1) == 2).all()  # half of the 4 key blocks of every row, per head
    assert all(learned.blocks[h].diagonal().all() for h in range(4))  # a query block keeps its own keys
    assert layer._block_mass_sink is None and model.train_function is None
    model.evaluate(*data, verbose=0)  # traced again with the learned pattern


def test_attention_blocks_keep_the_blocks_attention_uses():
    """Keys carry signal only in block 0: every query block must keep block 0 (and its own)."""
    keras.utils.set_random_seed(0)
    seq_len, block = 32, 8
    x = keras.Input((seq_len, 4))
    attention = ks.layers.SparseMultiHeadAttention(num_heads=1, key_dim=4, pattern=ks.patterns.Dense(block_size=8))
    model = keras.Model(x, attention(x, x))
    model.compile(keras.optimizers.Adam(0.0), "mse")  # weights fixed: the mass decides alone
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(32, seq_len, 4)).astype("float32") * 0.1
    inputs[:, :block] *= 30.0
    for dense in (attention._query_dense, attention._key_dense):
        dense.kernel.assign(np.eye(4, dtype="float32")[:, None, :] * 3)
    schedule = ks.pruning.ConstantSparsity(0.5, begin_step=1, end_step=1)
    model.fit(
        inputs,
        np.zeros_like(inputs),
        epochs=1,
        batch_size=8,
        verbose=0,
        callbacks=[ks.pruning.StructuredPruning(schedule, "attention_blocks")],
    )
    blocks = ks.pruning.attention_blocks.split_learned(attention.pattern)[1].blocks[0]
    assert (blocks.sum(axis=1) == 2).all() and blocks.diagonal().all()
    np.testing.assert_array_equal(blocks[1:], np.eye(4, dtype=bool)[1:] | np.eye(4, dtype=bool)[0])  # {0, own}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(schedule=every_step(0.5), structure="rows"), "`structure`"),
        (dict(schedule=0.5, structure="heads"), "`schedule`"),
        (dict(schedule=every_step(0.5), structure="heads", layers=3), "`layers`"),
        (dict(schedule=every_step(0.5), structure="heads", layers=(1, 2)), "`layers`"),
        (dict(schedule=every_step(0.5), structure="n:m", n_m=(4, 2)), "`n_m`"),
        (dict(schedule=every_step(0.5), structure="n:m", n_m=4), "`n_m`"),
        (dict(schedule=every_step(0.5), structure="blocks", block_shape=(1, 0)), "`block_shape`"),
        (dict(schedule=every_step(0.5), structure="heads", verbose="yes"), "`verbose`"),
        (dict(schedule=every_step(0.5), structure=["heads"]), "`structure`"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ks.pruning.StructuredPruning(**kwargs)


def test_numpy_scalars_are_accepted_as_numbers(data):
    model = attention_model()
    schedule = ks.pruning.PolynomialDecay(np.float32(0.0), np.float64(0.5), np.int64(0), np.int32(6), frequency=1)
    pruning = ks.pruning.StructuredPruning(schedule, "n:m", n_m=(np.int64(2), np.int64(4)), verbose=np.int8(0))
    logger = ks.pruning.PruningLogger("unused", update_freq=np.int64(5))
    assert (pruning.structure.n, pruning.structure.m, logger.update_freq) == (2, 4, 5)
    fit(model, data, [pruning])
    assert {row.sparsity for row in ks.pruning.pruning_rows(model)} == {0.5}


def test_a_model_without_targets_is_refused(data):
    x = keras.Input((32, 16))
    model = keras.Model(x, keras.layers.Dense(1)(x))
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="found no layer to prune.*MultiHeadAttention"):
        fit(model, data, [ks.pruning.StructuredPruning(every_step(0.5), "heads")])


def test_attention_blocks_need_the_blocked_kernel(data):
    model = attention_model(pattern=ks.patterns.Dense(block_size=8))
    model.get_layer("attention")._implementation = "segment"
    with pytest.raises(ValueError, match="'segment' kernel.*implementation='blocked'"):
        fit(model, data, [ks.pruning.StructuredPruning(every_step(0.5), "attention_blocks")])


def test_a_schedule_out_of_range_is_refused(data):
    with pytest.raises(ValueError, match="sparsity 1.0 at step 0"):
        fit(attention_model(), data, [ks.pruning.StructuredPruning(lambda step: (True, 1.0), "heads")])


def test_training_that_never_reaches_the_schedule_is_reported(data):
    late = ks.pruning.StructuredPruning(ks.pruning.ConstantSparsity(0.5, begin_step=1000), "heads")
    with pytest.warns(UserWarning, match="never pruned.*begin_step"):
        fit(attention_model(), data, [late])
    short = ks.pruning.StructuredPruning(ks.pruning.PolynomialDecay(0.0, 0.5, 0, 1000, frequency=1), "heads")
    with pytest.warns(UserWarning, match="before the schedule's end_step 1000"):
        fit(attention_model(), data, [short])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="StructuredPruning")
        fit(attention_model(), data, [ks.pruning.StructuredPruning(every_step(0.5), "heads")])


def test_the_end_of_fit_warning_reports_what_the_model_holds_after_a_recompile(data):
    """A recompile restarts the optimizer's step, and with it the schedule; pruned heads stay pruned."""
    model = attention_model()
    callback = ks.pruning.StructuredPruning(every_step(0.5), "heads")
    fit(model, data, [callback])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    with pytest.warns(UserWarning, match="StructuredPruning") as caught:
        fit(model, data, [callback], epochs=1)  # steps 0..3 of 6: the schedule asks for 0.438 at step 3
    assert ks.pruning.Heads().sparsity(model.get_layer("attention")) == 0.5
    (message,) = [str(w.message) for w in caught if "StructuredPruning" in str(w.message)]
    assert "model at sparsity 0.500" in message and "asked for 0.438" in message, message


def test_logger_appends_on_resume_and_writes_tensorboard_scalars(data, tmp_path):
    model = attention_model()
    callbacks = [ks.pruning.StructuredPruning(every_step(0.5), "heads"), ks.pruning.PruningLogger(tmp_path)]
    fit(model, data, callbacks)
    fit(model, data, callbacks)
    with open(tmp_path / "pruning.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16]  # one row per epoch, both runs kept
    tags = set()
    for path in (tmp_path / "pruning").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    assert tags == {"sparsity/attention/heads"}


@pytest.mark.slow  # 14 s; tests/layers/test_distributed.py keeps a MirroredStrategy fit in the default suite
def test_pruning_under_mirrored_strategy():
    stdout = run_on_two_devices(
        """
        keras.utils.set_random_seed(0)
        data = np.random.default_rng(0).normal(size=(64, 32, 8)).astype("float32")
        with strategy.scope():
            x = keras.Input((32, 8))
            pattern = ks.patterns.Dense(block_size=8)
            h = ks.layers.SparseMultiHeadAttention(num_heads=4, key_dim=4, pattern=pattern)(x, x)
            model = keras.Model(x, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(h)))
            model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        schedule = ks.pruning.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=6, frequency=1)
        callbacks = [ks.pruning.StructuredPruning(schedule, s) for s in ("heads", "attention_blocks")]
        model.fit(data, data[:, :, :1].mean(1), epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
        rows = {row.structure: row.sparsity for row in ks.pruning.pruning_rows(model)}
        assert rows == {"heads": 0.5, "attention_blocks": 0.5}, rows
        small = ks.pruning.finalize(model)
        error = np.abs(small.predict(data, verbose=0) - model.predict(data, verbose=0)).max()
        assert error < 1e-5, error
        print("mirrored pruning ok")
        """
    )
    assert "mirrored pruning ok" in stdout
