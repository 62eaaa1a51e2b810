"""A keras-hub text classifier with Longformer's sparse attention, trained, exported to int8 and run in LiteRT.

The task is `ks.datasets.far_retrieval`: which digit is marked in the last eighth of a long sequence, read at
position 0. A `BertBackbone` (random weights) is sparsified with `SlidingWindow(window, global_tokens=(0,))`:
the window alone cannot see that far, the global token 0 can. keras-hub's `BertTextClassifier` trains it, and
`converters.to_tflite` exports it to int8 from its dict inputs (`token_ids`, `segment_ids`, `padding_mask`),
verified against the classifier; LiteRT then classifies the test set.

    .venv/bin/python examples/keras_hub_classifier.py                  # the numbers in docs/keras-hub.md
    .venv/bin/python examples/keras_hub_classifier.py --seq-len 128 --train 64 --epochs 1   # a quick run
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=5)
    return parser.parse_args(argv)


def bert_inputs(token_ids):
    """keras-hub's dict inputs for token ids whose id 0 is padding."""
    import numpy as np

    return {
        "token_ids": token_ids.astype("int32"),
        "segment_ids": np.zeros_like(token_ids, "int32"),
        "padding_mask": (token_ids != 0).astype("int32"),
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    import keras
    import keras_hub

    import keras_sparse as ks
    from converters import predict, to_tflite

    keras.utils.set_random_seed(0)
    train = ks.datasets.far_retrieval(args.train, seq_len=args.seq_len, seed=0)
    test = ks.datasets.far_retrieval(args.test, seq_len=args.seq_len, seed=1)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(train.vocabulary),
        num_layers=2,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=128,
        dropout=0.0,
        max_sequence_length=args.seq_len,
    )
    sparse = ks.sparsify(backbone, ks.patterns.SlidingWindow(args.window, global_tokens=(0,)))
    classifier = keras_hub.models.BertTextClassifier(
        backbone=sparse, num_classes=train.num_classes, preprocessor=None, dropout=0.0
    )
    classifier.compile(  # keras-hub's classifiers give logits
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(bert_inputs(train.inputs), train.labels, epochs=args.epochs, batch_size=32, verbose=2)
    test_inputs = bert_inputs(test.inputs)
    keras_accuracy = float((classifier.predict(test_inputs, verbose=0).argmax(-1) == test.labels).mean())
    path = pathlib.Path(tempfile.mkdtemp()) / "classifier_int8.tflite"
    result = to_tflite(
        classifier,
        path,
        quantization="int8",
        representative_data=bert_inputs(train.inputs[:200]),
        verification_data=bert_inputs(test.inputs[:50]),
        seq_len=args.seq_len,  # keras-hub backbones take any length; a .tflite file has one
    )
    print(result.report())
    litert_accuracy = float((predict(path, test_inputs).argmax(-1) == test.labels).mean())
    summary = {
        "keras_accuracy": keras_accuracy,
        "litert_int8_accuracy": litert_accuracy,
        "file_kib": result.size_bytes / 1024,
        "litert_latency_ms": result.latency_ms,
    }
    print(summary)
    return summary


if __name__ == "__main__":
    main()
