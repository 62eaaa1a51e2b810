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
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return __all__
