"""`rewrite_layers`: a copy of a model with some of its layers, at any depth, replaced by others.

A copy keeps the model's class, config and weights. Functional and Sequential models (whose configs list their
layers) are cloned node by node with `keras.models.clone_model`. Every other layer or model (keras-hub backbones
and tasks, `TransformerEncoder`, our encoders) is rebuilt from its own config, the way Keras loads it, and its
sublayers take the original's variables one by one (`save_own_variables` / `load_own_variables`); replacements
inside it are swapped in place and recorded in its config (`swapped_layers.SwappedLayers`), so `.keras` files
keep them. Only the layers that contain a replacement are extended so; no layer is rebuilt from a config it
does not own (keras-hub's `LlamaTransformerDecoder` does not survive its own config round trip).
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from keras_sparse.model_rebuilding import is_graph_model
from keras_sparse.rewrites.layer_tree import PATH_SEPARATOR, sublayers, swap, walk
from keras_sparse.rewrites.swapped_layers import with_swapped_layers

TASK_CHILDREN = ("backbone", "preprocessor")
"""Sublayers of a keras-hub `Task` that its config holds whole (the task is rebuilt around them)."""


def rewritable(model) -> bool:
    """True for a Keras model the rewrites can copy: functional, Sequential, or a class with its own config."""
    return isinstance(model, keras.Model) and (
        is_graph_model(model) or type(model).get_config is not keras.Model.get_config
    )


def check_rewritable(model) -> None:
    """Raises a ValueError naming `model` unless the rewrites can copy it (`rewritable`)."""
    if not rewritable(model):
        raise ValueError(
            "Received an invalid value for argument `model`, expected a functional or Sequential keras.Model, or "
            "a model class with its own get_config (keras-hub's backbones and tasks): a subclassed model without "
            f"one cannot be copied. Received: model={model!r}"
        )


def _default_transfer(old: keras.layers.Layer, new: keras.layers.Layer) -> None:
    new.set_weights(old.get_weights())


def rewrite_layers(
    model: keras.Model,
    replace: Callable[[keras.layers.Layer], keras.layers.Layer | None],
    transfer: Callable[[keras.layers.Layer, keras.layers.Layer], None] | None = None,
) -> keras.Model:
    """A copy of `model` in which `replace(layer)`, where not None, stands for `layer`, at any depth.

    `replace` sees the original's layers, outer layers first; the layers inside a replaced one are not
    visited. Once the copy is made (and the replacements built in it), each replacement gets its weights from
    `transfer(layer, new)`, by default `layer`'s own. The original model is not changed.

    Raises:
        ValueError: if `model` is not a Keras model the rewrites can copy (see `rewritable`).
    """
    check_rewritable(model)
    replaced, replaced_paths = [], []
    for path, _, layer in walk(model):
        if any(path.startswith(earlier + PATH_SEPARATOR) for earlier in replaced_paths):
            continue
        new = replace(layer)
        if new is not None:
            replaced.append((layer, new))
            replaced_paths.append(path)
    copy = copy_with_replacements(model, {id(old): new for old, new in replaced})
    for old, new in replaced:
        (transfer or _default_transfer)(old, new)
    return copy


def copy_with_replacements(layer: keras.layers.Layer, replacements: dict[int, keras.layers.Layer]):
    """A copy of `layer` in which `replacements[id(sublayer)]` stands for `sublayer`, at any depth.

    Replacements are taken as they are (their weights are the caller's business); those not yet built are
    built as the copy calls them (in a functional graph) or as the sublayer they replace was.
    """
    if id(layer) in replacements:
        return replacements[id(layer)]
    if not isinstance(layer, keras.layers.Layer):  # a functional graph's operation such as `x + y`
        return layer.__class__.from_config(layer.get_config())
    if is_graph_model(layer):
        return keras.models.clone_model(layer, clone_function=lambda op: copy_with_replacements(op, replacements))
    return _rebuilt_copy(layer, replacements)


def _rebuilt_copy(layer: keras.layers.Layer, replacements: dict) -> keras.layers.Layer:
    """A copy of a layer that rebuilds its own sublayers, from its config, with the original's variables."""
    config = layer.get_config()
    whole = {name: getattr(layer, name) for name in TASK_CHILDREN if name in config and _holds(layer, name)}
    if "backbone" in whole:
        config["backbone"] = copy_with_replacements(whole["backbone"], replacements)
    if "preprocessor" in whole:
        config["preprocessor"] = whole["preprocessor"]  # no weights: the copy may share it
    skipped = {id(inner) for child in whole.values() for inner in [child, *(x for _, _, x in walk(child))]}
    inside = any(id(sublayer) in replacements and id(sublayer) not in skipped for _, _, sublayer in walk(layer))
    cls = with_swapped_layers(type(layer)) if inside else type(layer)
    try:
        copy = cls.from_config(config)
        if layer.built and not copy.built:
            copy.build_from_config(layer.get_build_config())
    except Exception as error:  # noqa: BLE001 (any failure of a foreign class's own round trip)
        raise ValueError(
            f"Cannot copy layer '{layer.name}' ({type(layer).__name__}): it does not rebuild from its own config "
            f"({type(error).__name__}: {error}). Keras's save/load would fail the same way."
        ) from error
    _transfer_state(layer, copy, replacements, skipped, copy)
    return copy


def _holds(layer, name: str) -> bool:
    return isinstance(getattr(layer, name, None), keras.layers.Layer)


def _transfer_state(original, copy, replacements: dict, skipped: set, owner, position: str = "") -> None:
    """Gives `copy` (rebuilt from `original`'s config) the original's variables, and swaps in replacements."""
    _own_variables(original, copy)
    pairs = list(zip(sublayers(original), sublayers(copy), strict=False))
    if len(sublayers(original)) != len(sublayers(copy)) or any(type(o) is not type(c) for o, c in pairs):
        raise ValueError(
            f"Cannot copy layer '{original.name}' ({type(original).__name__}): rebuilt from its config it holds "
            f"{[type(c).__name__ for c in sublayers(copy)]}, not {[type(o).__name__ for o in sublayers(original)]}."
        )
    for index, (old, new) in enumerate(pairs):
        child_position = f"{position}{PATH_SEPARATOR}{index}" if position else str(index)
        if id(old) in skipped:
            continue
        if id(old) in replacements:
            replacement = replacements[id(old)]
            if old.built and not replacement.built:
                replacement.build_from_config(old.get_build_config())
            swap(copy, new, replacement)
            owner.record_swap(child_position)
            continue
        _transfer_state(old, new, replacements, skipped, owner, child_position)


def _own_variables(original, copy) -> None:
    store = {}
    original.save_own_variables(store)
    copy.load_own_variables(store)
