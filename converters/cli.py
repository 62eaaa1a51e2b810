"""The `keras-sparse` command: `convert` a `.keras` model to a verified `.tflite`, or build a TFLite Micro bundle.

    keras-sparse convert MODEL.keras --quantize int8 --seq-len 512 --calibration data.npy --out model_int8.tflite
    keras-sparse micro MODEL.keras --calibration data.npz --out micro/ --name listops

Data files: a .npy holds one array (a batch) for a model with one input; a .npz holds one array per input,
named after the inputs (keras-hub models: token_ids, padding_mask, segment_ids), or unnamed (np.savez's
arr_0, arr_1, ... in the model's input order). float64 arrays are cast to float32 and int64 to int32.

Exit codes: 0 a verified file was written; 1 the file failed verification, or gave NaN or infinite outputs
(nothing written); 2 bad usage or input (arguments, the model file, a data file or its shapes, dtypes and
values); 3 the model cannot be converted: an op without a builtin kernel, a rewrite that changed its numbers,
or a kernel that LiteRT or TFLite Micro cannot run in this mode (nothing written); 4 the output exists (pass
--overwrite), or --out holds files that are not an earlier bundle; 5 the output cannot be written there (its
folder is missing or not writable, a file stands where a folder must be, --out is a folder, a name is too long);
6 an unexpected error, a bug in keras-sparse (please report it with the message); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

EXIT_OK, EXIT_UNVERIFIED, EXIT_USAGE, EXIT_UNCONVERTIBLE, EXIT_EXISTS, EXIT_UNWRITABLE, EXIT_BUG = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-sparse",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub):
        sub.add_argument(
            "model", help="a Keras model saved as .keras (keras_sparse layers load without custom_objects)"
        )
        sub.add_argument(
            "--calibration",
            help="inputs for calibration: .npy (one input) or .npz (one array per input, named or in order)",
        )
        sub.add_argument(
            "--verification", help="held-out inputs to verify on (.npy/.npz); default: the calibration data"
        )
        sub.add_argument("--seq-len", type=int, help="fixed sequence length, when the model's is not fixed")
        sub.add_argument("--max-error", type=float, help="override the mode's max relative error bound")
        sub.add_argument("--min-agreement", type=float, help="override the 0.99 argmax agreement bound (classifiers)")
        sub.add_argument("--overwrite", action="store_true", help="replace existing output files")

    convert = commands.add_parser("convert", help="write a verified, builtins-only .tflite file")
    common(convert)
    convert.add_argument(
        "--quantize",
        default="float32",
        choices=["float32", "float16", "dynamic", "int8", "int16x8"],
        help="quantization mode (default float32); int8 and int16x8 need --calibration",
    )
    convert.add_argument("--sparse-weights", action="store_true", help="encode pruned weights sparsely")
    convert.add_argument("--out", required=True, help="the .tflite file to write")
    micro = commands.add_parser("micro", help="write a TFLite Micro bundle (int8 .tflite, C array, resolver, settings)")
    common(micro)
    micro.add_argument("--out", required=True, help="the folder to write the bundle into")
    micro.add_argument("--name", default="model", help="C name prefix of the generated files (default: model)")
    micro.add_argument(
        "--max-query-blocks",
        type=int,
        help="query blocks per step in sparse attention: fewer can shrink the arena (default: one step per group)",
    )
    return parser


def _load_inputs(path: str | None, flag: str):
    """The arrays of a .npy or .npz file: an array, a dict by input name, or a list (np.savez's arr_0, arr_1, ...)."""
    import numpy as np

    if path is None:
        return None
    try:
        data = np.load(path, allow_pickle=False)
        if not hasattr(data, "files"):
            return data
        with data:
            if all(re.fullmatch(r"arr_\d+", key) for key in data.files):
                return [data[f"arr_{index}"] for index in range(len(data.files))]
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError) as error:  # missing, truncated, pickled or not NumPy's
        raise ValueError(f"Cannot read {flag} {path}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from converters.errors import ConversionError, VerificationError  # TensorFlow loads here, after --help

    try:
        return _run(args)
    except FileExistsError as error:
        return _fail(error, EXIT_EXISTS)
    except VerificationError as error:
        return _fail(error, EXIT_UNVERIFIED)
    except ConversionError as error:
        return _fail(error, EXIT_UNCONVERTIBLE)
    except (ValueError, TypeError) as error:
        return _fail(error, EXIT_USAGE)
    except OSError as error:
        return _fail(error, EXIT_UNWRITABLE)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", EXIT_INTERRUPTED)
    except Exception as error:  # never a traceback: a bug, reported as one
        return _fail(f"unexpected {type(error).__name__} (a bug in keras-sparse: please report it): {error}", EXIT_BUG)


def _run(args) -> int:
    import keras

    import keras_sparse  # noqa: F401  (registers the layers and patterns for loading)
    from converters import to_micro, to_tflite
    from keras_sparse.files import check_output_file, check_output_folder

    if args.command == "convert":
        check_output_file(args.out, args.overwrite, argument="--out")
    else:
        check_output_folder(args.out, args.overwrite, argument="--out")
    try:
        model = keras.saving.load_model(args.model)
    except Exception as error:  # Keras raises ValueError, TypeError or OSError for unloadable files
        raise ValueError(f"cannot load {args.model}: {error}") from None
    calibration, verification = (
        _load_inputs(args.calibration, "--calibration"),
        _load_inputs(args.verification, "--verification"),
    )
    bounds = dict(max_relative_error=args.max_error, min_argmax_agreement=args.min_agreement)
    if args.command == "convert":
        result = to_tflite(
            model,
            args.out,
            quantization=args.quantize,
            representative_data=calibration,
            verification_data=verification,
            seq_len=args.seq_len,
            sparse_weights=args.sparse_weights,
            overwrite=args.overwrite,
            **bounds,
        )
    else:
        if calibration is None:
            raise ValueError("micro needs --calibration: the bundle is int8")
        result = to_micro(
            model,
            args.out,
            calibration,
            name=args.name,
            verification_data=verification,
            seq_len=args.seq_len,
            overwrite=args.overwrite,
            max_query_blocks=args.max_query_blocks,
            **bounds,
        )
    print(result.report())
    return EXIT_OK


def _fail(error, code: int) -> int:
    print(f"keras-sparse: {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
