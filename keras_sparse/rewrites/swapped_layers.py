"""`SwappedLayers`: the config of a layer in which rewrites swapped sublayers its own config cannot describe.

keras-hub's backbones are functional models rebuilt from their arguments (`BertBackbone(vocabulary_size=...,
num_layers=...)`), and its `TransformerEncoder` / `TransformerDecoder` create their attention in `build()`: none
of their configs says which attention class they hold. A copy whose attention `keras_sparse.sparsify` swapped
would therefore come back dense from a `.keras` file. So the copy's class becomes `<Class>WithSwappedLayers`, a
subclass made on demand, whose config adds each swapped sublayer's own config by path, and which swaps them in
again when it is rebuilt (after `__init__` for functional models, after `build()` for layers). Every such class
serializes under one registered name, `keras_sparse>SwappedLayers`, and names its base class in its config: loading
needs `import keras_sparse` only, and keras-hub is imported only when a saved model names one of its classes.
"""

from __future__ import annotations

import functools
import importlib

import keras

from keras_sparse.rewrites.keras_hub_decoder import KERAS_HUB_DECODER, CausalSparseDecoder
from keras_sparse.rewrites.layer_tree import locate, swap

SWAPPED_KEY = "swapped_layers"
"""Config key: the swapped sublayers' serialized configs, by position (see `layer_tree.locate`)."""

BASE_KEY = "swapped_layers_base"
"""Config key: the class the swapped-layers class extends (module, class name, registered name)."""

EXTENSIONS = {KERAS_HUB_DECODER: CausalSparseDecoder}
"""Behaviour a swapped-layers class adds to a base class (named `module.Class`) or its subclasses."""

_IMPORTABLE_PACKAGES = ("keras", "keras_hub", "keras_sparse")
"""Packages whose modules a saved config may name for its base class (Keras's own rule for loading by module)."""


@keras.saving.register_keras_serializable(package="keras_sparse")
class SwappedLayers:
    """Mixed into a layer's class by the rewrites; see the module docstring. Not used directly."""

    def __init__(self, *args, swapped_layers: dict | None = None, **kwargs):
        self._recorded_layers = dict(swapped_layers or {})
        self._swapped_positions = []
        super().__init__(*args, **kwargs)
        if self.built:
            self._swap_recorded_layers()

    def _swap_recorded_layers(self) -> None:
        recorded, self._recorded_layers = self._recorded_layers, {}
        for position, config in recorded.items():
            parent, old = locate(self, position)
            new = keras.saving.deserialize_keras_object(config)
            if not new.built:
                new.build_from_config(old.get_build_config())
            swap(parent, old, new)
            self.record_swap(position)

    def record_swap(self, position: str) -> None:
        """Notes that the sublayer at `position` (`layer_tree.locate`) was swapped, so the config carries it."""
        if position not in self._swapped_positions:
            self._swapped_positions.append(position)

    def get_config(self):
        base = _base_class(type(self))
        return {
            **super().get_config(),
            SWAPPED_KEY: {
                position: keras.saving.serialize_keras_object(locate(self, position)[1])
                for position in self._swapped_positions
            },
            BASE_KEY: {
                "module": base.__module__,
                "class_name": base.__name__,
                "registered_name": keras.saving.get_registered_name(base),
            },
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        reference = config.pop(BASE_KEY, None)  # absent when a rewrite extends a layer's class
        extended = with_swapped_layers(_base_class(cls) if reference is None else _resolve_class(reference))
        return super(SwappedLayers, extended).from_config(config)


def _base_class(cls: type) -> type:
    extensions = (SwappedLayers, *EXTENSIONS.values())
    return next(base for base in cls.__mro__ if not issubclass(base, extensions))


def qualified_names(cls: type) -> set[str]:
    """`module.Class` of `cls` and every class it extends."""
    return {f"{base.__module__}.{base.__qualname__}" for base in cls.__mro__}


@functools.cache
def with_swapped_layers(base: type) -> type:
    """`base` extended by `SwappedLayers` (made once per base class; `base` itself if it already is)."""
    if issubclass(base, SwappedLayers):
        return base

    def build(self, *args, **kwargs):
        base.build(self, *args, **kwargs)
        self._swap_recorded_layers()

    # Keras records a layer's build arguments by the signature of its `build`: keep the base's.
    name = f"{base.__name__}WithSwappedLayers"
    namespace = {"__module__": __name__, "__qualname__": name, "build": functools.update_wrapper(build, base.build)}
    names = qualified_names(base)
    extensions = [extension for extended_name, extension in EXTENSIONS.items() if extended_name in names]
    bases = (SwappedLayers, *extensions, base)
    extended = type(name, bases, namespace)
    # Saved under the one name `keras_sparse>SwappedLayers`; whichever class holds the name on loading, its
    # `from_config` rebuilds the class the config names.
    return keras.saving.register_keras_serializable(package="keras_sparse", name="SwappedLayers")(extended)


def _resolve_class(reference: dict) -> type:
    """The class a `BASE_KEY` entry names: registered with Keras, or imported from a Keras-family package."""
    found = keras.saving.get_registered_object(reference["registered_name"])
    module = reference["module"]
    if found is None and module.split(".")[0] in _IMPORTABLE_PACKAGES:
        try:
            found = vars(importlib.import_module(module)).get(reference["class_name"])
        except ModuleNotFoundError:
            found = None
    if not (isinstance(found, type) and issubclass(found, keras.layers.Layer)):
        raise TypeError(
            f"Could not find the layer class '{reference['class_name']}' (module '{module}') that a saved "
            f"keras-sparse model extends. Install and import the package that defines it. Received: {reference}"
        )
    return found
