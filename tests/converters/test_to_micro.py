"""to_micro: a verified TFLite Micro bundle whose C sources compile and whose arena is measured."""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_sparse as ks
from converters import VerificationError, to_micro
from converters.to_micro import smallest_arena
from keras_sparse.files import MANIFEST
from tests.converters.conftest import build_classifier, dict_input_data, dict_input_model, retrieval_task


@pytest.fixture(scope="module")
def bundle(trained_classifier, held_out, tmp_path_factory):
    calibration, _ = retrieval_task(200, seed=2)
    folder = tmp_path_factory.mktemp("micro")
    return to_micro(trained_classifier, folder, calibration, name="retrieval", verification_data=held_out[0])


def test_bundle_files_ops_and_agreement(bundle):
    assert sorted(p.name for p in bundle.folder.iterdir()) == sorted(bundle.files)
    resolver = (bundle.folder / "retrieval_op_resolver.h").read_text()
    assert f"MicroMutableOpResolver<{len(bundle.ops)}>" in resolver
    registered = re.findall(r"resolver\.(Add\w+)\(\)", resolver)
    assert len(registered) == len(set(registered)) == len(bundle.ops)
    assert "AddBatchMatMul" in registered and "AddGather" in registered
    assert bundle.max_quantization_steps <= 1
    assert bundle.tflite.argmax_agreement >= 0.99
    assert bundle.micro_max_relative_error <= 0.15  # TFLite Micro against Keras, as LiteRT is checked
    assert MANIFEST in bundle.files


def test_arena_is_measured_tight_with_its_margin(bundle):
    flatbuffer = (bundle.folder / "retrieval_int8.tflite").read_bytes()
    probe = [retrieval_task(1, seed=4)[0]]
    measured = smallest_arena(flatbuffer, probe)
    assert measured == bundle.measured_arena_bytes
    assert bundle.arena_bytes >= measured * 1.1 and bundle.arena_bytes % 16 == 0
    settings = (bundle.folder / "retrieval_model_settings.h").read_text()
    assert f"constexpr int kTensorArenaSize = {bundle.arena_bytes};" in settings


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ (present on the project's machines)")
def test_generated_c_compiles_and_the_array_is_the_tflite_file(bundle, tmp_path):
    main = tmp_path / "main.cc"
    main.write_text(
        '#include <cstdio>\n#include "retrieval_model_data.h"\n#include "retrieval_model_settings.h"\n'
        'int main() {\n  static_assert(kTensorArenaSize > 0, "arena");\n'
        '  FILE* out = std::fopen("array.bin", "wb");\n'
        "  std::fwrite(g_retrieval_model_data, 1, g_retrieval_model_data_size, out);\n"
        "  std::fclose(out);\n  return (reinterpret_cast<unsigned long>(g_retrieval_model_data) % 16) != 0;\n}\n"
    )
    binary = tmp_path / "dump"
    subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-I",
            str(bundle.folder),
            str(main),
            str(bundle.folder / "retrieval_model_data.cc"),
            "-o",
            str(binary),
        ],
        check=True,
    )
    subprocess.run([str(binary)], cwd=tmp_path, check=True)  # also checks the array is 16-byte aligned
    assert (tmp_path / "array.bin").read_bytes() == (bundle.folder / "retrieval_int8.tflite").read_bytes()


def test_keras_embedding_runs_on_tflite_micro_its_select_rewritten(tmp_path):
    """Keras's Embedding wraps negative ids with LESS + SELECT (int32, one shape); TFLite Micro has no SELECT
    kernel, so converters.micro_forms computes it with CAST, SUB, MUL and ADD (before: a ConversionError)."""
    import keras

    model = build_classifier(ks.patterns.BigBird(32, num_random_blocks=1), embedding=keras.layers.Embedding)
    calibration, _ = retrieval_task(50, seed=2)
    bundle = to_micro(model, tmp_path / "micro", calibration, name="keras_embedding", min_argmax_agreement=0)
    assert "SELECT" in bundle.tflite.ops and "SELECT" not in bundle.ops  # untrained: near ties, hence agreement 0
    assert bundle.micro_max_relative_error <= 0.15 and bundle.max_quantization_steps <= 8


def test_existing_bundle_is_kept_unless_overwrite(bundle, trained_classifier):
    before = (bundle.folder / "retrieval_model_data.cc").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_micro(trained_classifier, bundle.folder, retrieval_task(20, seed=2)[0], name="retrieval")
    assert (bundle.folder / "retrieval_model_data.cc").read_bytes() == before


@pytest.mark.parametrize("name", ["my model", "modèle"])
def test_name_must_be_an_ascii_c_identifier(trained_classifier, tmp_path, name):
    with pytest.raises(ValueError, match="`name`"):
        to_micro(trained_classifier, tmp_path / "m", np.zeros((2, 128), "int32"), name=name)


def tiny_model(seed: int):
    keras.utils.set_random_seed(seed)
    x = keras.Input((16, 4))
    return keras.Model(x, keras.layers.Dense(2)(x))


TINY_DATA = np.random.default_rng(0).normal(size=(32, 16, 4)).astype("float32")


def contents(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_a_users_own_file_is_never_touched_even_with_overwrite(tmp_path):
    folder = tmp_path / "micro"
    folder.mkdir()
    (folder / "tiny_op_resolver.h").write_text("// my own resolver")
    with pytest.raises(FileExistsError, match="did not write.*tiny_op_resolver.h.*never replaced"):
        to_micro(tiny_model(0), folder, TINY_DATA, name="tiny", overwrite=True)
    assert contents(folder) == {"tiny_op_resolver.h": b"// my own resolver"}
    assert sorted(os.listdir(tmp_path)) == ["micro"]


def test_overwrite_replaces_the_whole_earlier_bundle(tmp_path):
    first = to_micro(tiny_model(0), tmp_path / "micro", TINY_DATA, name="first")
    second = to_micro(tiny_model(1), tmp_path / "micro", TINY_DATA, name="second", overwrite=True)
    assert sorted(os.listdir(second.folder)) == sorted(second.files) and first.folder == second.folder


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda tmp: tmp / "missing" / "micro", FileNotFoundError),
        (lambda tmp: (tmp / "file").write_bytes(b"") or tmp / "file", NotADirectoryError),
    ],
)
def test_the_folder_is_checked_before_the_work(tmp_path, monkeypatch, make, error):
    monkeypatch.setattr(
        sys.modules["converters.to_micro"], "convert_verified", lambda *a, **k: pytest.fail("converted")
    )
    with pytest.raises(error, match="Cannot write `folder`"):
        to_micro(tiny_model(0), make(tmp_path), TINY_DATA)


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    import keras, numpy as np
    from converters import to_micro
    from keras_sparse import files

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if sys.argv[2] == "converting":
        sys.modules["converters.to_micro"].smallest_arena = die
    else:
        write_new_file = files._write_new_file
        def dying(path, data, mode=None):
            if path.name.endswith("_op_resolver.h"):
                die()
            write_new_file(path, data, mode)
        files._write_new_file = dying
    keras.utils.set_random_seed(1)
    x = keras.Input((16, 4))
    model = keras.Model(x, keras.layers.Dense(2)(x))
    data = np.random.default_rng(0).normal(size=(32, 16, 4)).astype("float32")
    to_micro(model, sys.argv[1], data, name="tiny", overwrite=True)
    """
)


@pytest.mark.parametrize("stage", ["converting", pytest.param("writing", marks=pytest.mark.slow)])
def test_a_process_killed_midway_leaves_the_old_bundle(tmp_path, stage):
    old = to_micro(tiny_model(0), tmp_path / "micro", TINY_DATA, name="tiny")
    before = contents(old.folder)
    killed = subprocess.run([sys.executable, "-c", KILLED, str(old.folder), stage], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert contents(old.folder) == before
    left = sorted(set(os.listdir(tmp_path)) - {"micro"})
    if stage == "converting":
        assert left == []  # nothing is written before the bundle is complete
    else:
        assert len(left) == 1 and left[0].startswith(".keras-sparse-")  # the half-written bundle, beside
        to_micro(tiny_model(2), tmp_path / "next", TINY_DATA, name="tiny")  # the next bundle written beside
        assert sorted(os.listdir(tmp_path)) == ["micro", "next"]  # removes it


def test_tflite_micro_is_held_to_the_keras_bounds_and_steps_only_when_asked(tmp_path, monkeypatch):
    to_micro_module = sys.modules["converters.to_micro"]  # the package's `to_micro` is the function
    real = to_micro_module._run_micro

    def off_by_one_step(flatbuffer, litert, samples):  # what a TFLite Micro kernel that rounds otherwise gives
        outputs, worst = real(flatbuffer, litert, samples)
        return outputs, worst + 1

    monkeypatch.setattr(to_micro_module, "_run_micro", off_by_one_step)
    with pytest.raises(VerificationError, match="max_quantization_steps=0"):
        to_micro(tiny_model(0), tmp_path / "strict", TINY_DATA, name="tiny", max_quantization_steps=0)
    assert not (tmp_path / "strict").exists()
    assert to_micro(tiny_model(0), tmp_path / "default", TINY_DATA, name="tiny").max_quantization_steps >= 1

    def wrong(flatbuffer, litert, samples):  # outputs far from Keras's, however close in steps to LiteRT's
        outputs, _ = real(flatbuffer, litert, samples)
        return [[2 * array + 1 for array in sample] for sample in outputs], 0

    monkeypatch.setattr(to_micro_module, "_run_micro", wrong)
    with pytest.raises(VerificationError, match="TFLite Micro"):
        to_micro(tiny_model(0), tmp_path / "wrong", TINY_DATA, name="tiny")
    assert not (tmp_path / "wrong").exists()


def test_a_model_taking_a_dict_becomes_a_bundle_with_numbered_inputs(tmp_path):
    model = dict_input_model()
    bundle = to_micro(
        model, tmp_path / "micro", dict_input_data(64, seed=0), name="hub", min_argmax_agreement=0.9
    )  # untrained: near ties
    settings = (bundle.folder / "hub_model_settings.h").read_text()
    assert "kInput2Dim1 = 128" in settings and "kInputDim0" not in settings
    assert bundle.max_quantization_steps <= 8


def test_fewer_query_blocks_per_step_shrink_the_arena_with_the_same_outputs(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((256, 32))
    pattern = ks.patterns.BigBird(32, num_global_blocks=1, num_random_blocks=1)
    h = ks.layers.SparseMultiHeadAttention(num_heads=4, key_dim=8, pattern=pattern)(x, x)
    model = keras.Model(x, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(x + h)))
    data = np.random.default_rng(0).normal(size=(32, 256, 32)).astype("float32")
    bundles = {
        steps: to_micro(
            model, tmp_path / str(steps), data, max_query_blocks=steps, min_argmax_agreement=0.9
        )  # untrained: near ties
        for steps in (None, 2)
    }
    assert bundles[2].measured_arena_bytes < 0.9 * bundles[None].measured_arena_bytes
    assert bundles[2].tflite.max_relative_error < 0.15
