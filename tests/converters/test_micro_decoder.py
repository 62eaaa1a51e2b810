"""to_micro on a SparseCausalLM: the int8 decode step as a TFLite Micro bundle.

References: the Keras model's greedy tokens and logits (checked inside to_micro), and LiteRT running the int8
decoder `to_tflite_decoder` writes for the same model (the tokens TFLite Micro must generate).
"""

import re
import shutil
import subprocess

import keras
import numpy as np
import pytest

import converters
import keras_sparse as ks
from converters.micro_decoder import MicroDecoder
from converters.to_micro import smallest_arena
from keras_sparse.files import MANIFEST
from tests.converters.conftest import language_model, text, train_lm

CALIBRATION = text(16, 64, seed=1)
PROMPT = CALIBRATION[0, :8]
STEPS = 24  # the model was trained on 32 positions; the ring buffer holds 7


@pytest.fixture(scope="module")
def bundle(trained_lm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("micro") / "counter"
    return converters.to_micro_decoder(trained_lm, folder, CALIBRATION, name="counter", verification_steps=STEPS)


def test_tflite_micro_generates_the_litert_decoders_tokens_past_the_window(bundle, trained_lm, tmp_path):
    assert bundle.micro_argmax_agreement == 1.0 and bundle.micro_max_relative_error <= 0.25
    assert bundle.steps == len(PROMPT) + STEPS > 3 * bundle.cache_shape[3]
    converters.to_tflite_decoder(
        trained_lm, tmp_path / "lm_int8.tflite", "int8", representative_data=CALIBRATION, prefill_length=8
    )
    litert = converters.generate_tflite(tmp_path / "lm_int8.tflite", PROMPT, STEPS)
    micro = converters.generate_micro(bundle.folder / "counter_int8.tflite", PROMPT, STEPS)
    np.testing.assert_array_equal(micro, litert)
    np.testing.assert_array_equal(micro, trained_lm.generate(PROMPT, STEPS))


def test_bundle_files_settings_and_arena(bundle):
    assert sorted(p.name for p in bundle.folder.iterdir()) == sorted(bundle.files) and MANIFEST in bundle.files
    flatbuffer = (bundle.folder / "counter_int8.tflite").read_bytes()
    decoder = MicroDecoder(flatbuffer, "litert")
    assert decoder.cache.dtype == np.int8 and decoder.cache_shape == bundle.cache_shape == (1, 2, 2, 7, 2, 8)
    assert decoder.inputs["cache"]["quantization"] == decoder.outputs["cache"]["quantization"]  # bytes carry over
    probe = [np.zeros((1, 1), np.int32), np.zeros((1,), np.int32), decoder.cache]
    assert smallest_arena(flatbuffer, probe) == bundle.measured_arena_bytes
    settings = (bundle.folder / "counter_model_settings.h").read_text()
    for constant in (f"kTensorArenaSize = {bundle.arena_bytes};", "kCacheBytes = 448;", "kVocabSize = 12;"):
        assert f"constexpr int {constant}" in settings
    resolver = (bundle.folder / "counter_op_resolver.h").read_text()
    assert len(re.findall(r"resolver\.Add\w+\(\)", resolver)) == len(bundle.ops)
    assert {"SELECT", "SELECT_V2"}.isdisjoint(bundle.ops) and "SLICE" in bundle.ops
    assert f"{bundle.measured_arena_bytes} bytes measured" in bundle.report()


STUB_HEADERS = {
    "tensorflow/lite/micro/micro_interpreter.h": """#pragma once
#include <cstddef>
#include <cstdint>
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
struct TfLiteTensor { union { int32_t* i32; int8_t* int8; float* f; } data; };
namespace tflite {
struct Model;
class MicroResourceVariables;
class MicroProfilerInterface;
class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, uint8_t* tensor_arena,
                   size_t tensor_arena_size, MicroResourceVariables* resource_variables = nullptr,
                   MicroProfilerInterface* profiler = nullptr, bool preserve_all_tensors = false);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
};
}  // namespace tflite
""",
    "tensorflow/lite/schema/schema_generated.h": """#pragma once
namespace tflite { struct Model; const Model* GetModel(const void* buf); }
""",
}


def stub_resolver(methods) -> str:
    """TFLite Micro's resolver class with exactly `methods`: a call to any other method does not compile."""
    declarations = "".join(f"  TfLiteStatus {method}();\n" for method in methods)
    return (
        "#pragma once\ntypedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;\nnamespace tflite {\n"
        "class MicroOpResolver {};\ntemplate <unsigned int tOpCount>\n"
        f"class MicroMutableOpResolver : public MicroOpResolver {{\n public:\n{declarations}}};\n}}\n"
    )


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ (present on the project's machines)")
def test_readme_decode_loop_compiles_against_the_bundle_and_tflite_micros_api(bundle, tmp_path):
    """TFLite Micro's headers are not installed here: stubs declare the API the loop uses, with its signatures
    (micro_interpreter.h, schema_generated.h) and only the resolver methods the bundle registers."""
    readme = (bundle.folder / "README.md").read_text()
    (code,) = re.findall(r"```cpp\n(.*?)```", readme, re.S)
    registered = re.findall(r"resolver\.(Add\w+)\(\)", (bundle.folder / "counter_op_resolver.h").read_text())
    headers = {**STUB_HEADERS, "tensorflow/lite/micro/micro_mutable_op_resolver.h": stub_resolver(registered)}
    for path, text_ in headers.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text_)
    (tmp_path / "loop.cc").write_text(code)
    command = ["g++", "-std=c++17", "-Wall", "-Werror", "-fsyntax-only", "-I", str(tmp_path)]
    compiled = subprocess.run([*command, "-I", str(bundle.folder), str(tmp_path / "loop.cc")], capture_output=True)
    assert compiled.returncode == 0, compiled.stderr.decode()[-2000:]
    assert "kTokenIdsInput" in code and "kCacheOutput" in code and "memmove" in code


def test_a_pattern_that_cannot_be_bounded_is_refused_naming_the_model_and_the_fix(tmp_path):
    lm = language_model(ks.patterns.Dense())
    with pytest.raises(ValueError, match=r"argument `model`.*bounded.*SlidingWindow\(window_size, global_tokens\)"):
        converters.to_micro(lm, tmp_path / "micro", CALIBRATION)
    assert not (tmp_path / "micro").exists()


def test_arguments_that_do_not_apply_to_a_decoder_are_refused(tmp_path):
    lm = language_model()
    with pytest.raises(ValueError, match="argument `seq_len`"):
        converters.to_micro(lm, tmp_path / "micro", CALIBRATION, seq_len=16)
    with pytest.raises(ValueError, match="argument `representative_data`"):
        converters.to_micro(lm, tmp_path / "micro", np.ones((4, 8)))
    with pytest.raises(ValueError, match=r"argument `representative_data`.*ids from"):
        converters.to_micro(lm, tmp_path / "micro", CALIBRATION + 1000)
    with pytest.raises(IsADirectoryError, match="`model` .* is a folder"):
        converters.generate_micro(tmp_path, [1, 2], 4)
    with pytest.raises(ValueError, match="argument `model`.*float32"):
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            mixed = language_model()
        finally:
            keras.mixed_precision.set_global_policy("float32")
        converters.to_micro(mixed, tmp_path / "micro", CALIBRATION)
    with pytest.raises(TypeError, match="quantization"):  # to_micro is int8 only, for every model
        converters.to_micro(lm, tmp_path / "micro", CALIBRATION, quantization="float32")
    assert not (tmp_path / "micro").exists()


@pytest.mark.slow
@pytest.mark.parametrize("position_encoding", ["rotary", "alibi"])
def test_rotary_and_alibi_decode_steps_run_on_tflite_micro(position_encoding, tmp_path):
    lm = train_lm(language_model(position_encoding=position_encoding))
    bundle = converters.to_micro_decoder(lm, tmp_path / "lm", CALIBRATION, name="lm", verification_steps=STEPS)
    assert bundle.micro_argmax_agreement == 1.0 and bundle.micro_max_relative_error <= 0.25
    converters.to_tflite_decoder(lm, tmp_path / "lm.tflite", "int8", representative_data=CALIBRATION, prefill_length=8)
    micro = converters.generate_micro(tmp_path / "lm/lm_int8.tflite", PROMPT, STEPS)
    np.testing.assert_array_equal(micro, converters.generate_tflite(tmp_path / "lm.tflite", PROMPT, STEPS))
