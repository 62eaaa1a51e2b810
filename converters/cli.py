"""The `keras-sparse` command: `convert` a `.keras` model to a verified `.tflite`, or build a TFLite Micro bundle.

    keras-sparse convert MODEL.keras --quantize int8 --seq-len 512 --calibration data.npy --out model_int8.tflite
    keras-sparse micro MODEL.keras --calibration data.npy --out micro/ --name listops

Exit codes: 0 a verified file was written; 1 the file failed verification (nothing written); 2 bad usage or
input; 3 the model cannot be converted (an op without a builtin kernel; nothing written); 4 the output exists
(pass --overwrite).
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_UNVERIFIED, EXIT_USAGE, EXIT_UNCONVERTIBLE, EXIT_EXISTS = 0, 1, 2, 3, 4


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
        sub.add_argument("--calibration", help="inputs for calibration: .npy (one input) or .npz (one array per input)")
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


def _load_inputs(path: str | None):
    import numpy as np

    if path is None:
        return None
    data = np.load(path)
    return [data[key] for key in data.files] if hasattr(data, "files") else data


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import keras_sparse  # noqa: F401  (registers the layers and patterns for loading)
    from converters import ConversionError, VerificationError, to_micro, to_tflite

    try:
        model = keras.saving.load_model(args.model)
    except Exception as error:  # Keras raises ValueError, TypeError or OSError for unloadable files
        print(f"keras-sparse: cannot load {args.model}: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        calibration, verification = _load_inputs(args.calibration), _load_inputs(args.verification)
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
    except FileExistsError as error:
        print(f"keras-sparse: {error}", file=sys.stderr)
        return EXIT_EXISTS
    except VerificationError as error:
        print(f"keras-sparse: {error}", file=sys.stderr)
        return EXIT_UNVERIFIED
    except ConversionError as error:
        print(f"keras-sparse: {error}", file=sys.stderr)
        return EXIT_UNCONVERTIBLE
    except (ValueError, OSError) as error:
        print(f"keras-sparse: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(result.report())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
