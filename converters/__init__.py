"""Keras models to verified `.tflite` files for phones (LiteRT) and bundles for microcontrollers (TFLite Micro).

Example:

>>> from converters import to_tflite   # to_tflite(model, "model_int8.tflite", quantization="int8", ...)
"""

from converters.errors import ConversionError, VerificationError
from converters.litert import predict
from converters.micro_decoder import MicroDecoderBundle, generate_micro, to_micro_decoder
from converters.quantization import MODES
from converters.tflite_decoder import DecoderConversionResult, LiteRTDecoder, generate_tflite, to_tflite_decoder
from converters.to_micro import MicroBundle, to_micro
from converters.to_tflite import ConversionResult, to_tflite

__all__ = [
    "MODES",
    "ConversionError",
    "ConversionResult",
    "DecoderConversionResult",
    "LiteRTDecoder",
    "MicroBundle",
    "MicroDecoderBundle",
    "VerificationError",
    "generate_micro",
    "generate_tflite",
    "predict",
    "to_micro",
    "to_micro_decoder",
    "to_tflite",
    "to_tflite_decoder",
]
