"""int8 files for LiteRT's CPU: which weightless ops stay float32, and the quantization that leaves them so.

LiteRT runs a file's ops on its XNNPACK delegate where XNNPACK has a kernel for the op and type, else on
TFLite's builtin kernels. XNNPACK has float32 kernels but no int8 ones for BATCH_MATMUL of two activations,
SOFTMAX and SQUARED_DIFFERENCE, and their builtin int8 kernels are slow: in the per-op profile of
docs/benchmarks.md (`converters.op_profile`) int8 BATCH_MATMUL took about 16x the time of the same float32
one, and attention's matmuls and softmax plus layer normalization's SQUARED_DIFFERENCE were over 90% of a
full-int8 BigBird file's time. None of these ops holds weights, so keeping them float costs no file size;
only their activations take 4 bytes instead of 1.

Which ops (`float_nodes`), found by structure in the calibrated float file rather than by layer names:
- Attention cores. Every BATCH_MATMUL whose two operands are computed (not weights) seeds one; a core holds
  the seeds' ancestors and descendants up to the nearest ops that carry weights (FULLY_CONNECTED,
  convolutions, a matmul or gather with a constant table): the reshapes and gathers of queries, keys and
  values after their projections, masks, scores, softmax and the weighted sum up to the output projection.
  That covers Keras's MultiHeadAttention, keras-hub's attention layers and keras-sparse's kernels alike.
- SQUARED_DIFFERENCE (Keras's LayerNormalization takes its variance with it).

TFLite calls this selective quantization: the quantizer (`mlir_quantize`, which `TFLiteConverter.convert()`
calls, given the denylist of `tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=...)`) leaves the
listed ops float with a DEQUANTIZE before and a QUANTIZE after each float region.
"""

from __future__ import annotations

import collections

import tensorflow as tf
from ai_edge_litert.tools import flatbuffer_utils
from tensorflow.lite.python import convert as tflite_convert

WEIGHT_OPS = frozenset(
    {"FULLY_CONNECTED", "CONV_2D", "CONV_3D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "EMBEDDING_LOOKUP"}
)
"""Ops that always carry weights: attention's projections and the model around it."""

FLOAT_OPS = frozenset({"SQUARED_DIFFERENCE"})
"""Weightless ops kept float wherever they are, besides the attention cores."""


def float_nodes(flatbuffer: bytes) -> list[str]:
    """The output tensor names of the ops of a float `.tflite` file that selective quantization keeps float:
    its attention cores and `FLOAT_OPS`, in graph order, over every subgraph (a decoder file has one per
    signature). Empty for a file with neither."""
    model = flatbuffer_utils.read_model_from_bytearray(flatbuffer)
    return [name for graph in model.subgraphs for name in _graph_float_nodes(model, graph)]


def _graph_float_nodes(model, graph) -> list[str]:
    operators = graph.operators
    names = [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) for op in operators]

    def constant(tensor: int) -> bool:
        buffer = model.buffers[graph.tensors[tensor].buffer]
        return (buffer.data is not None and len(buffer.data) > 0) or bool(getattr(buffer, "offset", 0))

    def carries_weights(index: int) -> bool:
        inputs = [t for t in operators[index].inputs if t >= 0]
        if names[index] in WEIGHT_OPS:
            return True
        if names[index] == "BATCH_MATMUL":
            return any(constant(t) for t in inputs)
        return names[index] == "GATHER" and constant(inputs[0])  # an embedding table

    producer, consumers = {}, collections.defaultdict(list)
    for index, op in enumerate(operators):
        producer.update({tensor: index for tensor in op.outputs})
        for tensor in op.inputs:
            consumers[tensor].append(index)

    def closure(seeds: list[int], neighbours) -> set[int]:
        reached, pending = set(seeds), list(seeds)
        while pending:
            for other in neighbours(pending.pop()):
                if other not in reached and not carries_weights(other):
                    reached.add(other)
                    pending.append(other)
        return reached

    seeds = [index for index, name in enumerate(names) if name == "BATCH_MATMUL" and not carries_weights(index)]
    ancestors = closure(seeds, lambda i: [producer[t] for t in operators[i].inputs if t in producer])
    descendants = closure(seeds, lambda i: [c for t in operators[i].outputs for c in consumers[t]])
    listed = {index for index, name in enumerate(names) if name in FLOAT_OPS}
    return [graph.tensors[operators[i].outputs[0]].name.decode() for i in sorted(ancestors | descendants | listed)]


def quantize_selectively(converter: tf.lite.TFLiteConverter) -> bytes:
    """Converts with `converter` (set up for int8) keeping `float_nodes` float; returns the file's bytes.

    The steps `TFLiteConverter.convert()` takes for post-training integer quantization (calibration, MLIR
    quantization to the converter's input and output types, read-only buffer deduplication), with the float
    nodes denylisted. With none to keep, `convert()` itself.
    """
    converter._experimental_calibrate_only = True  # the converter's own calibration, stopped before quantizing
    calibrated = converter.convert()
    converter._experimental_calibrate_only = False
    nodes = float_nodes(calibrated)
    if not nodes:
        return converter.convert()
    quantized = tflite_convert.mlir_quantize(
        calibrated,
        disable_per_channel=converter._experimental_disable_per_channel,
        disable_per_channel_for_dense_layers=converter._experimental_disable_per_channel_quantization_for_dense_layers,
        input_data_type=converter.inference_input_type or tf.float32,
        output_data_type=converter.inference_output_type or tf.float32,
        denylisted_nodes=nodes,
    )
    return tflite_convert.deduplicate_readonly_buffers(quantized)
