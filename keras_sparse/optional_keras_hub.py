"""keras-hub is optional: its classes are looked up only once the user has imported it.

A model can hold a keras-hub layer only if `keras_hub` was imported to build or load it, so
looking in `sys.modules` finds every such class without importing keras-hub from keras-sparse.
"""

from __future__ import annotations

import sys


def keras_hub_layer_classes(*names: str) -> tuple[type, ...]:
    """The named `keras_hub.layers` classes, or `()` when keras-hub is not imported (for `isinstance`).

    Example:

    >>> import keras
    >>> isinstance(keras.layers.Dense(1), keras_hub_layer_classes("TransformerEncoder"))
    False
    """
    keras_hub = sys.modules.get("keras_hub")
    layers = getattr(keras_hub, "layers", None)
    return tuple(getattr(layers, name) for name in names if hasattr(layers, name))
