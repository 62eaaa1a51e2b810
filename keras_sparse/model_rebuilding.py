"""Rebuilding a model at another size, keeping its class: from its own arguments, then its weights in order.

`keras.Sequential` and plain functional models can be cloned layer by layer (`keras.models.clone_model`).
keras-hub's backbones and tasks cannot: they are functional subclasses that build their graph from their
arguments (`BertBackbone(max_sequence_length=512, intermediate_dim=3072, ...)`), and a layer-by-layer clone
is a plain functional model. They are rebuilt from their config with arguments changed instead, which keeps
their class and their `.keras` round trip, and the old weights are copied in order.
"""

from __future__ import annotations

import copy

import keras
import numpy as np
from keras.src.models.functional import Functional  # the class of keras.Model(inputs, outputs); Keras is pinned


def is_graph_model(model) -> bool:
    """True for `keras.Sequential` and plain functional models (`keras.Model(inputs, outputs)`)."""
    return isinstance(model, keras.Sequential) or type(model) is Functional


def _set_arguments(config: dict, arguments: dict) -> bool:
    """Sets `arguments` in a model config, or in its backbone's (a keras-hub task's); False if absent."""
    if all(name in config for name in arguments):
        config.update(arguments)
        return True
    backbone = config.get("backbone")
    return (
        isinstance(backbone, dict)
        and isinstance(backbone.get("config"), dict)
        and _set_arguments(backbone["config"], arguments)
    )


def with_arguments(model: keras.Model, **arguments) -> keras.Model | None:
    """A new model of `model`'s class built from its config with `arguments` changed, or None if its config
    (or, for a keras-hub task, its backbone's) has no such arguments. Its weights are new: see
    `copy_weights_in_order`."""
    config = copy.deepcopy(model.get_config())
    if not _set_arguments(config, arguments):
        return None
    return type(model).from_config(config)


def copy_weights_in_order(old: keras.layers.Layer, new: keras.layers.Layer, values: dict[int, np.ndarray]) -> None:
    """Gives `new`, a rebuilt `old`, the weights of `old` in order; `values[id(variable)]` replaces one.

    Raises:
        ValueError: if `new` does not hold the same variables in the same order with these shapes.
    """
    old_variables, new_variables = old.weights, new.weights
    if len(old_variables) != len(new_variables):
        raise ValueError(
            f"'{old.name}' rebuilt has {len(new_variables)} weights, not {len(old_variables)}: it is not the same "
            "model at another size."
        )
    for old_variable, new_variable in zip(old_variables, new_variables, strict=True):
        value = values.get(id(old_variable))
        value = keras.ops.convert_to_numpy(old_variable) if value is None else value
        if tuple(new_variable.shape) != value.shape:
            raise ValueError(
                f"'{old.name}' rebuilt holds {new_variable.path} with shape {tuple(new_variable.shape)}, where "
                f"{old_variable.path} needs {value.shape}: it is not the same model at another size."
            )
        new_variable.assign(value)
