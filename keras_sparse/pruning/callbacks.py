"""`StructuredPruning` and `PruningLogger`: Keras callbacks that prune during `model.fit` and record it."""

from __future__ import annotations

import csv
import os
import warnings

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from keras_sparse.pruning.attention_blocks import AttentionBlocks
from keras_sparse.pruning.report import pruning_rows
from keras_sparse.pruning.schedules import PruningSchedule
from keras_sparse.pruning.structures import Blocks, Heads, Neurons, NOfM
from keras_sparse.validation import invalid_argument, is_integer, non_negative_int, one_of, positive_int

STRUCTURES = ("heads", "neurons", "attention_blocks", "n:m", "blocks")

_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
    data_class=summary_pb2.DATA_CLASS_SCALAR,
).SerializeToString()
"""What TensorBoard's scalars plugin reads, written with core TensorFlow (the tensorboard package is optional)."""


def _pair(name: str, value, example: str) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise invalid_argument(name, f"a pair of positive integers, e.g. {example}", f"{name}={value!r}")
    return positive_int(name, value[0]), positive_int(name, value[1])


def _structure(name: str, n_m, block_shape):
    one_of("structure", name, STRUCTURES)
    if name == "heads":
        return Heads()
    if name == "neurons":
        return Neurons()
    if name == "attention_blocks":
        return AttentionBlocks()
    if name == "n:m":
        return NOfM(*_pair("n_m", n_m, "(2, 4)"))
    return Blocks(_pair("block_shape", block_shape, "(1, 4)"))


def _layer_filter(layers):
    if layers is None:
        return lambda layer: True
    if callable(layers):
        return layers
    if isinstance(layers, (list, tuple, set)) and all(isinstance(item, (str, keras.layers.Layer)) for item in layers):
        names = {item if isinstance(item, str) else item.name for item in layers}
        return lambda layer: layer.name in names
    raise invalid_argument(
        "layers",
        "None (every layer the structure can take), a list of layers or layer names, or a callable layer -> bool",
        f"layers={layers!r}",
    )


class StructuredPruning(keras.callbacks.Callback):
    """Prunes a structure on a schedule during `model.fit`: no wrappers, no change to the model beforehand.

    At the start of every training step for which `schedule(step)` says to prune (`step` is the
    optimizer's iteration count, so resumed training continues the schedule), each target layer is
    pruned to the schedule's sparsity. Removed weights are masked by a `PruningMask` constraint that
    Keras's optimizer applies after every update, and that `model.save` keeps.

    Args:
        schedule: a callable `step -> (should_prune, sparsity)`: `ConstantSparsity`, `PolynomialDecay`,
            tensorflow-model-optimization's schedules, or your own.
        structure: what is removed, per target layer:
            - "heads": attention heads (MultiHeadAttention and SparseMultiHeadAttention);
            - "neurons": hidden units of Dense -> Dense pairs (feed-forward blocks);
            - "attention_blocks": key blocks per query block of SparseMultiHeadAttention, learned
              from the attention mass (the layer's pattern becomes a learned layout);
            - "n:m": N of every M consecutive input weights (`n_m`, default 2:4) of Dense, EinsumDense
              and attention projections;
            - "blocks": blocks of weights (`block_shape`, default (1, 4) as TFLite names it).
            Only heads, neurons and attention_blocks make the model smaller and faster on every runtime
            after `finalize`; n:m and blocks leave zeros that TFLite's sparse weight encoding stores
            compactly and that LiteRT's sparse fully-connected kernels (float 1x4, int8 1x16) may skip.
            TFLite Micro has no sparse kernels: on a microcontroller they save nothing.
        layers: None (every layer the structure can take), a list of layers or names, or a callable.
        n_m: `(n, m)` for "n:m".
        block_shape: `(outputs, inputs)` per block for "blocks".
        verbose: 1 prints each pruning step.

    Example:

    >>> import keras, numpy as np, keras_sparse as ks
    >>> x = keras.Input((16,)); h = keras.layers.Dense(32, activation="relu")(x)
    >>> model = keras.Model(x, keras.layers.Dense(1)(h)); model.compile("adam", "mse")
    >>> prune = ks.pruning.StructuredPruning(ks.pruning.ConstantSparsity(0.5, begin_step=0, frequency=1),
    ...                                      structure="neurons")
    >>> _ = model.fit(np.ones((8, 16)), np.ones((8, 1)), epochs=1, callbacks=[prune], verbose=0)
    >>> ks.pruning.pruning_rows(model)[0].sparsity
    0.5
    """

    def __init__(self, schedule, structure: str, layers=None, n_m=(2, 4), block_shape=(1, 4), verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise ValueError(
                "Received an invalid value for argument `schedule`, expected a callable step -> (should_prune, "
                f"sparsity) such as keras_sparse.pruning.PolynomialDecay(...). Received: schedule={schedule!r}"
            )
        self.schedule = schedule
        self.structure = _structure(structure, n_m, block_shape)
        self.accept = _layer_filter(layers)
        self.verbose = non_negative_int("verbose", verbose)
        self.targets = []
        self.pruned_steps = 0
        self.last_sparsity = None

    def on_train_begin(self, logs=None):
        self.targets = self.structure.targets(self.model, self.accept)
        if not self.targets:
            raise ValueError(
                f"StructuredPruning(structure={self.structure.name!r}) found no layer to prune in model "
                f"'{self.model.name}'. {self._what_it_takes()}"
            )
        for target in self.targets:
            if hasattr(self.structure, "check"):
                self.structure.check(target)
        if isinstance(self.structure, AttentionBlocks):
            for layer in self.targets:
                self.structure.start(layer, self.model.distribute_strategy)
            self._retrace()
        else:
            # Attach every mask now, keeping what is kept (all of it, unless resuming): the optimizer applies a
            # variable's constraint only if the variable had one when the train step was traced.
            for target in self.targets:
                self.structure.prune(target, 0.0)

    def _what_it_takes(self) -> str:
        return {
            "heads": "It takes keras.layers.MultiHeadAttention and SparseMultiHeadAttention layers.",
            "neurons": "It takes a Dense whose output feeds only another Dense (through Activation or Dropout), "
            "the feed-forward pair of keras-sparse's and keras-hub's Transformer blocks, or custom layers with "
            "prunable_neuron_pairs().",
            "attention_blocks": "It takes SparseMultiHeadAttention layers with a static pattern.",
        }.get(self.structure.name, "It takes Dense, EinsumDense and MultiHeadAttention layers.")

    def _retrace(self):
        self.model.make_train_function(force=True)
        self.model.test_function = None
        self.model.predict_function = None

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        should_prune, sparsity = self.schedule(step)
        if not bool(np.asarray(should_prune)):
            return
        sparsity = float(np.asarray(sparsity))
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"The pruning schedule returned sparsity {sparsity} at step {step}; it must be in [0, 1).")
        changed = [self.structure.prune(target, sparsity) for target in self.targets]
        if isinstance(self.structure, AttentionBlocks) and any(changed):
            self._retrace()
        self.pruned_steps += 1
        self.last_sparsity = sparsity
        if self.verbose:
            print(f"\nStructuredPruning: step {step}, {self.structure.name} sparsity {sparsity:.3f}")

    def on_train_end(self, logs=None):
        if isinstance(self.structure, AttentionBlocks):
            for layer in self.targets:
                self.structure.stop(layer)
            # The next fit / evaluate / predict traces again, without the attention-mass statistic.
            self.model.train_function = self.model.test_function = self.model.predict_function = None
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        final_step = getattr(self.schedule, "final_sparsity_step", None)
        if self.pruned_steps == 0:
            warnings.warn(
                f"StructuredPruning({self.structure.name!r}) never pruned: training ended at step {step} before the "
                f"schedule's first pruning step ({getattr(self.schedule, 'begin_step', '?')}). Train longer or lower "
                "begin_step.",
                stacklevel=2,
            )
        elif isinstance(self.schedule, PruningSchedule) and step <= final_step:
            warnings.warn(
                f"StructuredPruning({self.structure.name!r}) stopped with the model at {self._held_sparsity()}: "
                f"training ended at step {step}, before the schedule's end_step {final_step}. Continue `fit` with "
                "this callback to reach the final sparsity.",
                stacklevel=2,
            )

    def _held_sparsity(self) -> str:
        """The sparsity the target layers hold now (pruning never restores a unit, so it can exceed the schedule's
        last value: after a recompile the optimizer's step, and with it the schedule, starts again)."""
        held = sorted({round(float(self.structure.sparsity(target)), 3) for target in self.targets})
        text = f"sparsity {held[0]:.3f}" if len(held) == 1 else f"sparsities {held[0]:.3f} to {held[-1]:.3f}"
        if self.last_sparsity is not None and not held[0] <= self.last_sparsity <= held[-1]:
            text += f" (the schedule's last pruning step asked for {self.last_sparsity:.3f})"
        return text


class PruningLogger(keras.callbacks.Callback):
    """Writes each pruned layer's sparsity: TensorBoard scalars and `pruning.csv` in `log_dir`.

    The CSV has a row per (step, layer, structure) with the sparsity; an existing CSV (resumed
    training) is appended to, never overwritten.

    Args:
        log_dir: folder for the event files and `pruning.csv` (created if missing).
        update_freq: "epoch" (default) or a number of steps.

    Example:

    >>> import keras_sparse as ks
    >>> logger = ks.pruning.PruningLogger(log_dir="logs/", update_freq=100)
    """

    def __init__(self, log_dir: str, update_freq="epoch"):
        super().__init__()
        if update_freq != "epoch" and not (is_integer(update_freq) and update_freq > 0):
            raise invalid_argument(
                "update_freq", "'epoch' or a positive number of steps", f"update_freq={update_freq!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self._writer = None
        self._last_logged_step = None

    @property
    def csv_path(self) -> str:
        return os.path.join(self.log_dir, "pruning.csv")

    def on_train_begin(self, logs=None):
        os.makedirs(self.log_dir, exist_ok=True)
        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "pruning"))

    def _log(self):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step == self._last_logged_step:
            return
        self._last_logged_step = step
        rows = pruning_rows(self.model)
        new_file = not os.path.exists(self.csv_path)
        with open(self.csv_path, "a", newline="") as file:
            writer = csv.writer(file)
            if new_file:
                writer.writerow(["step", "layer", "structure", "sparsity"])
            writer.writerows([step, row.layer, row.structure, f"{row.sparsity:.6f}"] for row in rows)
        with self._writer.as_default(step=step):
            for row in rows:
                tf.summary.write(
                    f"sparsity/{row.layer}/{row.structure}",
                    tf.constant(row.sparsity, tf.float32),
                    metadata=_SCALAR_METADATA,
                )
        self._writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq != "epoch":
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            if step % self.update_freq == 0:
                self._log()

    def on_epoch_end(self, epoch, logs=None):
        if self.update_freq == "epoch":
            self._log()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
