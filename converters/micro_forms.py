"""Exact rewrites of a `.tflite` file into builtin ops TFLite Micro has kernels for.

LiteRT runs every builtin the converter emits; TFLite Micro (its sources, 2025) lacks two that sparse decoders
and Keras layers produce, and has an exact equivalent of each:
- SELECT and SELECT_V2 (`tf.where`): Micro registers SELECT_V2 only, for int8, int16 and float32 data, while
  TF emits SELECT for three tensors of one shape (`keras.layers.Embedding`'s negative-id wrapping, the ring-buffer
  cache's slot update) and the ring buffer selects int32 positions. A SELECT of three equal shapes is a
  SELECT_V2; an int32 one is `y + int32(condition) * (x - y)` (CAST, SUB, MUL, ADD, which Micro runs on int32,
  with SELECT_V2's broadcasting; exact in int32's wrap-around arithmetic). A SELECT with a rank-1 condition
  choosing rows is left alone.
- STRIDED_SLICE on more than 4 dimensions: Micro's kernel takes at most 4 (`strided_slice_common.cc`, kMaxDim),
  and the decoder's caches `(batch, layers, 2, slots, heads, key_dim)` are sliced in 5-D. With constant begin and
  end, unit strides and no ellipsis or new axis, it is a SLICE (Micro takes up to 5-D, `slice.cc`), followed by
  a RESHAPE dropping the shrunk axes.
- FLOOR_MOD on int32: Micro's kernel takes float32 only; the ring buffer's slot arithmetic is int32 (the position
  modulo the ring's size). It becomes CAST to float32, FLOOR_MOD, CAST back: exact while the operands are integers
  below 2**24 in magnitude (float32 holds them exactly, and FLOOR_MOD is `fmod`, which is exact), that is
  positions up to 16,777,215.
Each rewrite takes the same inputs to the same bytes (tests/converters/test_micro_forms.py runs the files in LiteRT).
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

Op = schema.BuiltinOperator
MICRO_MAX_STRIDED_SLICE_RANK = 4
"""TFLite Micro's STRIDED_SLICE takes at most 4-D inputs; its SLICE takes 5-D."""


def micro_forms(flatbuffer: bytes) -> tuple[bytes, dict[str, int]]:
    """`flatbuffer` with SELECT and >4-D STRIDED_SLICE ops rewritten as above, and how many of each were rewritten.

    Returns the input unchanged (and an empty dict) when there is nothing to rewrite.
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    codes = [flatbuffer_utils.get_builtin_code_from_operator_code(code) for code in model.operatorCodes]
    rewritten = {}
    for graph in model.subgraphs:
        operators = []
        for op in graph.operators:
            code = codes[op.opcodeIndex]
            if code in (Op.SELECT, Op.SELECT_V2) and graph.tensors[op.outputs[0]].type == schema.TensorType.INT32:
                if code == Op.SELECT_V2 or _same_shapes(graph, op.inputs):
                    operators.extend(_as_arithmetic(model, graph, codes, op))
                    _count(rewritten, "int32 SELECT -> CAST, SUB, MUL, ADD")
                    continue
            elif code == Op.SELECT and _same_shapes(graph, op.inputs):
                op.opcodeIndex = _opcode(model, codes, Op.SELECT_V2)
                op.builtinOptionsType, op.builtinOptions = (
                    schema.BuiltinOptions.SelectV2Options,
                    schema.SelectV2OptionsT(),
                )
                _count(rewritten, "SELECT -> SELECT_V2")
            elif code == Op.FLOOR_MOD and graph.tensors[op.outputs[0]].type == schema.TensorType.INT32:
                operators.extend(_in_float32(model, graph, codes, op))
                _count(rewritten, "int32 FLOOR_MOD -> float32 FLOOR_MOD")
                continue
            elif code == Op.STRIDED_SLICE and (replacement := _as_slice(model, graph, codes, op)) is not None:
                operators.extend(replacement)
                _count(rewritten, "STRIDED_SLICE -> SLICE")
                continue
            operators.append(op)
        graph.operators = operators
    if not rewritten:
        return flatbuffer, rewritten
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), rewritten


def _count(rewritten: dict, what: str) -> None:
    rewritten[what] = rewritten.get(what, 0) + 1


def _same_shapes(graph, tensors) -> bool:
    return len({tuple(graph.tensors[i].shape) for i in tensors}) == 1


def _opcode(model, codes: list[int], builtin: int) -> int:
    """The index of `builtin` in the model's operator codes, added if missing."""
    if builtin not in codes:
        model.operatorCodes.append(schema.OperatorCodeT())
        model.operatorCodes[-1].builtinCode = builtin
        model.operatorCodes[-1].deprecatedBuiltinCode = min(
            builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
        )
        codes.append(builtin)
    return codes.index(builtin)


def _constant(model, graph, tensor: int) -> np.ndarray | None:
    data = model.buffers[graph.tensors[tensor].buffer].data
    return None if data is None or len(data) == 0 else np.frombuffer(bytes(data), np.int32)


def _add_constant(model, graph, name: str, values: np.ndarray) -> int:
    buffer = schema.BufferT()
    buffer.data = np.asarray(values, "<i4").tobytes()
    model.buffers.append(buffer)
    tensor = schema.TensorT(shape=[len(values)], type=schema.TensorType.INT32, buffer=len(model.buffers) - 1)
    tensor.name = name
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _operator(model, codes: list[int], builtin: int, inputs: list[int], outputs: list[int], options_type, options):
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, codes, builtin)
    op.inputs, op.outputs = inputs, outputs
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _add_tensor(graph, like: int, name: str, shape, tensor_type: int) -> int:
    tensor = schema.TensorT(shape=[int(n) for n in shape], type=tensor_type)
    tensor.name = f"{_name(graph, like)}/{name}"
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _name(graph, tensor: int) -> str:
    name = graph.tensors[tensor].name
    return name.decode() if isinstance(name, bytes) else name


def _as_arithmetic(model, graph, codes: list[int], op) -> list:
    """`[CAST, SUB, MUL, ADD]` computing the int32 select `op`: `y + int32(condition) * (x - y)`."""
    condition, x, y = op.inputs
    output = op.outputs[0]
    shape = lambda tensor: tuple(graph.tensors[tensor].shape)  # noqa: E731
    int32 = schema.TensorType.INT32
    mask = _add_tensor(graph, output, "micro_select_mask", shape(condition), int32)
    difference = _add_tensor(graph, output, "micro_select_difference", np.broadcast_shapes(shape(x), shape(y)), int32)
    chosen = _add_tensor(graph, output, "micro_select_chosen", shape(output), int32)
    cast_options = schema.CastOptionsT()
    cast_options.inDataType, cast_options.outDataType = schema.TensorType.BOOL, int32
    options = schema.BuiltinOptions
    return [
        _operator(model, codes, Op.CAST, [condition], [mask], options.CastOptions, cast_options),
        _operator(model, codes, Op.SUB, [x, y], [difference], options.SubOptions, schema.SubOptionsT()),
        _operator(model, codes, Op.MUL, [mask, difference], [chosen], options.MulOptions, schema.MulOptionsT()),
        _operator(model, codes, Op.ADD, [y, chosen], [output], options.AddOptions, schema.AddOptionsT()),
    ]


def _cast(model, graph, codes: list[int], source: int, target: int):
    options = schema.CastOptionsT()
    options.inDataType, options.outDataType = graph.tensors[source].type, graph.tensors[target].type
    return _operator(model, codes, Op.CAST, [source], [target], schema.BuiltinOptions.CastOptions, options)


def _in_float32(model, graph, codes: list[int], op) -> list:
    """`[CAST, CAST, FLOOR_MOD, CAST]`: the int32 FLOOR_MOD `op` computed on float32 copies of its operands."""
    float32 = schema.TensorType.FLOAT32
    inputs = [_add_tensor(graph, t, "micro_float32", graph.tensors[t].shape, float32) for t in op.inputs]
    output = op.outputs[0]
    result = _add_tensor(graph, output, "micro_float32", graph.tensors[output].shape, float32)
    floor_mod = _operator(model, codes, Op.FLOOR_MOD, inputs, [result], op.builtinOptionsType, op.builtinOptions)
    casts = [_cast(model, graph, codes, t, f) for t, f in zip(op.inputs, inputs, strict=True)]
    return [*casts, floor_mod, _cast(model, graph, codes, result, output)]


def _as_slice(model, graph, codes: list[int], op) -> list | None:
    """`[SLICE]` or `[SLICE, RESHAPE]` computing what the >4-D STRIDED_SLICE `op` computes, or None."""
    source, begin_tensor, end_tensor, strides_tensor = op.inputs
    shape = list(graph.tensors[source].shape)
    options = op.builtinOptions
    begin, end, strides = (_constant(model, graph, t) for t in (begin_tensor, end_tensor, strides_tensor))
    if (
        len(shape) <= MICRO_MAX_STRIDED_SLICE_RANK
        or begin is None
        or end is None
        or strides is None
        or (strides != 1).any()
        or options.ellipsisMask
        or options.newAxisMask
        or getattr(options, "offset", False)
    ):
        return None
    starts, sizes = [], []
    for axis, dim in enumerate(shape):
        start = 0 if options.beginMask >> axis & 1 else int(begin[axis]) + (dim if begin[axis] < 0 else 0)
        if options.shrinkAxisMask >> axis & 1:
            stop = start + 1
        else:
            stop = dim if options.endMask >> axis & 1 else int(end[axis]) + (dim if end[axis] < 0 else 0)
        start, stop = min(max(start, 0), dim), min(max(stop, 0), dim)
        starts.append(start)
        sizes.append(max(stop - start, 0))
    name = graph.tensors[op.outputs[0]].name
    name = name.decode() if isinstance(name, bytes) else name
    slice_op = schema.OperatorT()
    slice_op.opcodeIndex = _opcode(model, codes, Op.SLICE)
    slice_op.builtinOptionsType, slice_op.builtinOptions = schema.BuiltinOptions.SliceOptions, schema.SliceOptionsT()
    slice_op.inputs = [
        source,
        _add_constant(model, graph, f"{name}/micro_slice_begin", np.array(starts)),
        _add_constant(model, graph, f"{name}/micro_slice_size", np.array(sizes)),
    ]
    output = graph.tensors[op.outputs[0]]
    if list(output.shape) == sizes:
        slice_op.outputs = list(op.outputs)
        return [slice_op]
    unshrunk = schema.TensorT(shape=sizes, type=output.type, quantization=output.quantization)
    unshrunk.name = f"{name}/micro_slice"
    graph.tensors.append(unshrunk)
    slice_op.outputs = [len(graph.tensors) - 1]
    reshape = schema.OperatorT()
    reshape.opcodeIndex = _opcode(model, codes, Op.RESHAPE)
    reshape.builtinOptionsType, reshape.builtinOptions = schema.BuiltinOptions.ReshapeOptions, schema.ReshapeOptionsT()
    reshape.builtinOptions.newShape = list(output.shape)
    new_shape = _add_constant(model, graph, f"{name}/micro_shape", np.array(output.shape))
    reshape.inputs, reshape.outputs = [slice_op.outputs[0], new_shape], list(op.outputs)
    return [slice_op, reshape]
