"""Quantization modes: how each one sets up the TFLite converter, and the tolerance its file must meet."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

OpsSet = tf.lite.OpsSet


@dataclasses.dataclass(frozen=True)
class Mode:
    """One quantization mode.

    Attributes:
        name: the mode's name.
        needs_representative_data: calibration data is required.
        max_relative_error: verification bound on max |tflite - keras| / max |keras|.
        min_argmax_agreement: for classifiers (rank-2 outputs), the share of equal argmaxes required.
    """

    name: str
    needs_representative_data: bool
    max_relative_error: float
    min_argmax_agreement: float

    def configure(
        self,
        converter: tf.lite.TFLiteConverter,
        representative_dataset,
        sparse_weights: bool,
        float_inputs: bool,
        float_outputs: bool = False,
    ) -> None:
        """Sets supported ops (builtins only: never SELECT_TF_OPS), optimizations and types.

        With int8, float inputs become int8 (full-integer I/O); integer inputs (token ids) stay as they are;
        outputs are int8 unless `float_outputs` (an int8 body with float32 outputs, e.g. for LiteRT.js).
        """
        converter.target_spec.supported_ops = [OpsSet.TFLITE_BUILTINS]
        optimizations = [] if self.name == "float32" else [tf.lite.Optimize.DEFAULT]
        if sparse_weights:
            optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
        converter.optimizations = optimizations
        if self.name == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if self.needs_representative_data:
            converter.representative_dataset = representative_dataset
        if self.name == "int8":
            converter.target_spec.supported_ops = [OpsSet.TFLITE_BUILTINS_INT8]
            if float_inputs:
                converter.inference_input_type = tf.int8
            if not float_outputs:
                converter.inference_output_type = tf.int8
        if self.name == "int16x8":
            converter.target_spec.supported_ops = [OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


MODES = {
    mode.name: mode
    for mode in (
        Mode("float32", False, max_relative_error=1e-4, min_argmax_agreement=1.0),
        Mode("float16", False, max_relative_error=1e-2, min_argmax_agreement=0.99),
        Mode("dynamic", False, max_relative_error=0.05, min_argmax_agreement=0.99),
        Mode("int8", True, max_relative_error=0.15, min_argmax_agreement=0.99),
        Mode("int16x8", True, max_relative_error=0.02, min_argmax_agreement=0.99),
    )
}
"""The modes, with their default verification bounds (overridable per conversion)."""
