"""Errors of the converters, and turning the TFLite converter's messages into ones that name the fix."""

from __future__ import annotations

import re

FIXES = {
    "SparseSoftmax": "the tf.sparse attention kernel: use implementation='segment' (keras_sparse.exportable does it)",
    "SparseTensorDenseMatMul": "the tf.sparse attention kernel: use implementation='segment'",
    "SQUARED_DIFFERENCE": "16x8 has no int16 SQUARED_DIFFERENCE kernel (variances: keras.ops.var, layer norms the "
    "converter cannot rewrite, such as those inside other composite layers): use int8",
    "SELECT_V2": "16x8 has no SELECT_V2 kernel (tf.where, keras.ops.where): multiply by a 0/1 mask instead, "
    "or use int8",
    "Equal": "the quantizer could not calibrate this comparison (16x8 fails so on LSH attention's buckets): use int8",
    "NEG": "16x8 has no NEG kernel: avoid negations (keras.layers.LayerNormalization, at the top level or in a "
    "SparseTransformerEncoder, is rewritten without one; ks.layers.CenteredLayerNormalization is the same layer "
    "for use inside other composite layers), or use int8",
}


class ConversionError(ValueError):
    """The model cannot become a builtins-only `.tflite` file; nothing was written."""


class VerificationError(RuntimeError):
    """The converted file disagrees with the Keras model beyond the tolerance; nothing was written."""


_NOT_BUILTIN = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_SELECT_OPS = re.compile(r"TF Select ops: ([\w, ]+)")
_UNQUANTIZABLE = re.compile(r"not yet supported for op: '(\w+)'")
_UNCALIBRATED = re.compile(r"Empty min/max for tensor (\S+)")
_FAILED_NODE = re.compile(r"Node number \d+ \((\w+)\) failed to (?:invoke|prepare)")


def _layers_in(node_path: str, layer_names: list[str]) -> set[str]:
    """Layer names among a graph node path's components (Keras name scopes may add a `_N` suffix)."""
    components = node_path.split("/")[:-1]
    return {name for name in layer_names for c in components if re.fullmatch(re.escape(name) + r"(_\d+)?", c)}


def nodes_by_op(graphs) -> dict[str, list[str]]:
    """Op type -> node names over the traced `graphs` (`tf.Graph`s; the names' scopes name the layers)."""
    nodes: dict[str, list[str]] = {}
    for graph in graphs:
        for node in graph.get_operations():
            nodes.setdefault(node.type, []).append(node.name)
    return nodes


def explain_conversion_failure(message: str, graph_nodes: dict[str, list[str]], layer_names: list[str]):
    """A ConversionError naming each op TFLite builtins lack, the layer it came from, and the fix.

    `graph_nodes` maps op types of the traced graph to their node names, whose scopes name the layers.
    """
    found: dict[str, set[str]] = {}
    for pattern in (_NOT_BUILTIN, _UNQUANTIZABLE):
        for match in pattern.finditer(message):
            found.setdefault(match.group(1), set())
    for match in _SELECT_OPS.finditer(message):
        for op in match.group(1).replace(" ", "").split(","):
            found.setdefault(op, set())
    for op in found:
        for node in graph_nodes.get(op, []):
            found[op] |= _layers_in(node, layer_names)
    for match in _UNCALIBRATED.finditer(message):  # names a graph node: its op type and layer
        for op, nodes in graph_nodes.items():
            if match.group(1) in nodes:
                found.setdefault(op, set()).update(_layers_in(match.group(1), layer_names))
    if not found:  # the converter's own errors, without the call stacks its MLIR diagnostics repeat
        errors = dict.fromkeys(
            line.split("error: ", 1)[1].strip() for line in message.splitlines() if "error: " in line
        )
        detail = "\n".join(errors) or message.strip()[-2000:]
        return ConversionError(f"TFLite conversion failed; nothing was written:\n{detail}")
    lines = []
    for op, layers in sorted(found.items()):
        where = f" in layer {', '.join(sorted(layers))}" if layers else ""
        fix = FIXES.get(op, "write the layer with ops that are TFLite builtins (Flex ops are never used)")
        lines.append(f"- {op}{where}: no TFLite builtin kernel for this conversion. Fix: {fix}.")
    return ConversionError("The model needs ops that TFLite builtins lack; nothing was written.\n" + "\n".join(lines))


def explain_runtime_failure(message: str, what: str, hint: str = "") -> ConversionError:
    """A ConversionError for a converted file that a runtime (`what`) refused to prepare or run, naming the op."""
    reason = " ".join(message.split()).rstrip(". ")
    fixes = [f"\n- {op}: {FIXES[op]}." for op in dict.fromkeys(_FAILED_NODE.findall(message)) if op in FIXES]
    return ConversionError(
        f"{what} cannot run the converted file: {reason}. Nothing was written."
        + "".join(fixes)
        + (hint and "\n" + hint)
    )
