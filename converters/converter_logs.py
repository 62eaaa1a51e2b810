"""The TFLite converter's known-harmless log lines, kept off the user's terminal during a conversion.

TensorFlow's converter writes a dozen lines per conversion to stderr (C++ absl logs, Python warnings, absl's
Python logger) that a newcomer reads as errors, though they are routine: "Statistics for quantized inputs were
expected", "input_inference_type: FLOAT32" for int32 token inputs, the `trackable_obj` deprecation (we convert
without it on purpose: FACTS.md). `quiet_converter` captures stderr in its block and writes back every line but
those (and, when the conversion fails, the converter's diagnostics, which the raised error explains); anything
else (a real error, a user's print) still shows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

HARMLESS = re.compile(
    "|".join(
        (
            r"Please consider providing the trackable_obj argument",  # absl, from_concrete_functions without it
            r"Statistics for quantized inputs were expected",  # int8 float inputs: set by inference_input_type
            r"fully_quantize: \d, inference_type: \d+, input_inference_type: \w+, output_inference_type",
            r"^[IW]\d{4} [\d:. ]+\d+ (devices|single_machine|tf_tfl_flatbuffer_helpers|flatbuffer_export)\.cc:",
            r"^I\d{4} [\d:. ]+\d+ (reader|loader|mlir_graph_optimization_pass|dump_mlir_util)\.cc:",  # SavedModels
            r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.",
        )
    )
)
"""Lines known to be routine in a conversion that succeeds (and in one that fails)."""

DIAGNOSTICS = re.compile(
    "|".join(
        (
            r"^loc\(",  # MLIR's location dump of the failing op: a dozen call sites of TF and Keras internals
            r"^error: ",
            r"^Some ops are not supported by the native TFLite runtime",  # advice to use Flex, which we never do
            r"^TF Select ops: ",
            r"^Details:",
            r"^\ttf\.",  # the failing op's signature
            r"^\s*$",  # and the blank line after it
        )
    )
)
"""The converter's diagnostics of a failed conversion: its exception carries them too, and the converters turn
that into an error naming the op, the layer and the fix (`converters.errors`), so stderr need not repeat them."""


class _HarmlessRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not HARMLESS.search(record.getMessage())


@contextlib.contextmanager
def captured_stderr():
    """Captures what is written to file descriptor 2 in the block (C and C++ code too) into the yielded list."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        text = []
        try:
            yield text
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text.append(capture.read().decode(errors="replace"))


@contextlib.contextmanager
def quiet_converter():
    """Keeps the converter's HARMLESS lines off stderr in the block (and its DIAGNOSTICS if the block raises);
    every other line is written back after it.

    Scoped: the warning filters and the absl logger are as before afterwards, even when the block raises.
    """
    absl_logger, records = logging.getLogger("absl"), _HarmlessRecords()
    absl_logger.addFilter(records)
    log: list[str] = []
    hidden = (HARMLESS,)
    try:
        with warnings.catch_warnings(), captured_stderr() as log:
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            yield
    except BaseException:
        hidden = (HARMLESS, DIAGNOSTICS)
        raise
    finally:
        absl_logger.removeFilter(records)
        lines = "".join(log).splitlines(keepends=True)
        sys.stderr.write("".join(line for line in lines if not any(kind.search(line) for kind in hidden)))
        sys.stderr.flush()
