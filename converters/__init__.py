"""Keras models to verified `.tflite` files for phones (LiteRT) and bundles for microcontrollers (TFLite Micro).

The names below are imported on first use, so `keras-sparse --help` answers without loading TensorFlow.

Example:

>>> from converters import to_tflite   # to_tflite(model, "model_int8.tflite", quantization="int8", ...)
"""

import importlib

_EXPORTS = {
    "MODES": "converters.quantization",
    "ConversionError": "converters.errors",
    "ConversionResult": "converters.to_tflite",
    "MicroBundle": "converters.to_micro",
    "VerificationError": "converters.errors",
    "predict": "converters.litert",
    "to_micro": "converters.to_micro",
    "to_tflite": "converters.to_tflite",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'converters' has no attribute {name!r}")
    # All at once: importing the submodule converters.to_tflite (as converters.to_micro does) sets this package's
    # attribute `to_tflite` to that module, which would hide the function from later `from converters import`.
    for export, module in _EXPORTS.items():
        globals()[export] = getattr(importlib.import_module(module), export)  # later lookups skip this function
    return globals()[name]


def __dir__():
    return __all__
