"""The layer tree of a Keras model: sublayers at any depth, found by path and swapped in place.

Keras layers hold their sublayers in many ways: as nodes of a functional graph, in a Sequential's list, as
attributes (keras-hub's `TransformerEncoder` keeps its attention in `_self_attention_layer`, created in
`build()`), in lists of attributes (a backbone's `transformer_layers`). Keras's own tracking sees them all
(`Layer._layers`); this module walks that tree and replaces one sublayer by another everywhere its parent
refers to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras

PATH_SEPARATOR = "/"


def sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layers `layer` holds directly, in Keras's tracking order (the order of its weights)."""
    return layer._flatten_layers(include_self=False, recursive=False)


def walk(layer: keras.layers.Layer, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer, keras.layers.Layer]]:
    """Yields `(path, parent, sublayer)` for every sublayer at any depth, parents before their sublayers.

    `path` joins the layer names from `layer` down with "/" (e.g. "transformer_layer_0/self_attention_layer").
    A sublayer held twice (shared) is visited once.
    """
    seen = set()

    def visit(parent, parent_path):
        for child in sublayers(parent):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{parent_path}{PATH_SEPARATOR}{child.name}" if parent_path else child.name
            yield path, parent, child
            yield from visit(child, path)

    yield from visit(layer, prefix)


def locate(layer: keras.layers.Layer, position: str) -> tuple[keras.layers.Layer, keras.layers.Layer]:
    """`(parent, sublayer)` at `position` below `layer`: indices into `sublayers()` joined by "/" (e.g. "4/0").

    Positions, unlike names, survive a rebuild: sublayers created in `build()` get fresh automatic names.
    """
    parent, current = None, layer
    for index in position.split(PATH_SEPARATOR):
        children = sublayers(current)
        if int(index) >= len(children):
            raise ValueError(
                f"Layer '{layer.name}' has no sublayer at position '{position}': it was rebuilt with another "
                "structure than the one recorded."
            )
        parent, current = current, children[int(index)]
    return parent, current


def swap(parent: keras.layers.Layer, old: keras.layers.Layer, new: keras.layers.Layer) -> None:
    """Makes `parent` hold `new` wherever it held `old`: attributes, lists, dicts, Keras's tracking (at the same
    position, so the weights keep their order) and, in a functional model, the graph nodes `old` computed.

    `new` must be built; the caller gives it its weights.
    """
    tracker = parent._tracker
    if tracker.is_in_store("layers", old):
        tracker.replace_tracked_value("layers", old, new)
    for name, value in list(vars(parent).items()):
        if value is old:
            setattr(parent, name, new)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if item is old:
                    value[index] = new
        elif isinstance(value, dict):
            for key, item in list(value.items()):
                if item is old:
                    value[key] = new
        elif isinstance(value, tuple) and any(item is old for item in value):
            setattr(parent, name, type(value)(new if item is old else item for item in value))
    if hasattr(parent, "_nodes_by_depth"):
        _swap_graph_operation(parent, old, new)


def _swap_graph_operation(model, old, new) -> None:
    """Points the functional graph's nodes that called `old` at `new` (the model then runs `new` there)."""
    for operations in model._operations_by_depth.values():
        operations[:] = [new if operation is old else operation for operation in operations]
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            if node.operation is not old:
                continue
            node.operation = new
            node_index = len(new._inbound_nodes)
            new._inbound_nodes.append(node)
            for tensor_index, tensor in enumerate(node.outputs):
                tensor._keras_history = type(tensor._keras_history)(new, node_index, tensor_index)
