"""Property test of the public API: any input gives a valid result or a ValueError / TypeError naming an argument.

Arguments are drawn from what users pass, right or wrong: Python and NumPy numbers, zero, negatives, huge values,
NaN and infinities, booleans, strings, None, lists and arrays. For every call the result is either checked as
valid (shapes, dtypes, finite numbers from finite inputs) or the call raised a ValueError or TypeError whose
message names one of the arguments given. Anything else fails: another exception (TensorFlow's internal errors,
IndexError, ZeroDivisionError, OverflowError, RecursionError), a call that runs past its time limit (a hang), a
NaN or infinity out of finite inputs, or, for the converters, a bad argument that is not refused.

The default profile is derandomized (the same examples on every run, for CI) and small enough for the default
suite; PUBLIC_API_EXAMPLES=10 draws ten times as many examples, randomized.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import itertools
import math
import os
import re
import signal

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_sparse as ks
from converters import MODES, to_micro, to_tflite

SCALE = int(os.environ.get("PUBLIC_API_EXAMPLES", "1"))
PROFILE = settings(
    derandomize=SCALE == 1,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def examples(count: int) -> settings:
    return settings(PROFILE, max_examples=count * SCALE)


TIME_LIMIT = 30.0
"""Seconds one call may take before it counts as a hang (the slowest valid calls here take about 2 s)."""

EXAMPLES = collections.Counter()
"""Examples tried per target, valid and refused (the counts docs/testing.md gives)."""

WRONG = st.sampled_from(
    [None, "8", "no", 2.5, -0.0, math.nan, math.inf, -math.inf, True, False, np.bool_(True), np.float32(math.nan)]
    + [[], (1, 2), np.array([4]), {"a": 1}, -1, 0]
)
"""Values that are wrong for most arguments (some are right for a few: those calls must then succeed). Huge
numbers are not here: for sizes of work (examples, lengths, units) they are requests for huge work."""


def integers(low: int, high: int):
    """Python, NumPy int64 and NumPy int32 integers in [low, high]."""
    values = st.integers(low, high)
    return st.one_of(values, values.map(np.int64), values.map(np.int32))


def floats(low: float, high: float):
    values = st.floats(low, high, allow_nan=False)
    return st.one_of(values, values.map(np.float32), values.map(np.float64))


FLAG = st.one_of(st.booleans(), st.booleans().map(np.bool_))
BLOCKS = st.one_of(integers(1, 40), st.just(2**40))  # pattern sizes: a huge one must not overflow anything
"""The right values of each kind; `draw_arguments` adds the wrong ones."""
SIZE = integers(1, 40)
COUNT = integers(0, 5)


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float = TIME_LIMIT):
    def expire(signum, frame):
        raise Hang(f"no result in {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


REFUSED = object()


def outcome(target: str, call, names):
    """`call()`'s result, or REFUSED if it raised a ValueError or TypeError that names one of `names`."""
    with time_limit():
        try:
            result = call()
        except (ValueError, TypeError) as error:
            message = str(error)
            named = any(re.search(rf"`{name}`|\b{name}=|'{name}'", message) for name in names)
            assert named, f"{type(error).__name__} naming none of {sorted(names)}: {message}"
            assert "Traceback" not in message, message
            EXAMPLES[f"{target} refused"] += 1
            return REFUSED
    EXAMPLES[f"{target} valid"] += 1
    return result


def draw_arguments(draw, strategies: dict, required=()) -> dict:
    """Right values for `required` and a drawn subset of the other arguments (the rest keep their defaults); in
    half the draws, one argument (drawn) takes a value from WRONG instead."""
    arguments = {name: draw(value) for name, value in strategies.items() if name in required or draw(st.booleans())}
    broken = draw(st.one_of(st.none(), st.sampled_from(sorted(strategies))))
    if broken is not None:
        arguments[broken] = draw(WRONG)
    return arguments


def sometimes_wrong(right):
    """A right value two times in three, else a value from WRONG (for calls with one argument)."""
    return st.one_of(right, right, WRONG)


def finite(array) -> bool:
    return bool(np.isfinite(np.asarray(array, dtype=np.float64)).all())


def assert_both_kinds(target: str) -> None:
    """A target whose draws were all valid (or all refused) would not test what it claims."""
    assert EXAMPLES[f"{target} valid"] and EXAMPLES[f"{target} refused"], dict(EXAMPLES)


# Patterns ------------------------------------------------------------------------------------------------------

PATTERN_ARGUMENTS = {
    ks.patterns.SlidingWindow: dict(
        window_size=BLOCKS,
        global_tokens=st.lists(integers(-1, 50), max_size=3).map(tuple),
        dilation=integers(1, 4),
        block_size=BLOCKS,
    ),
    ks.patterns.BlockLocal: dict(block_size=BLOCKS),
    ks.patterns.Dense: dict(block_size=BLOCKS),
    ks.patterns.BigBird: dict(
        block_size=BLOCKS,
        num_sliding_window_blocks=integers(1, 5),
        num_global_blocks=COUNT,
        num_random_blocks=COUNT,
        seed=COUNT,
    ),
    ks.patterns.Strided: dict(
        stride=BLOCKS,
        heads=st.sampled_from(["shared", "split"]),
        component=st.sampled_from(["both", "local", "strided"]),
        block_size=BLOCKS,
    ),
    ks.patterns.Fixed: dict(
        block_size=BLOCKS,
        summary_size=BLOCKS,
        heads=st.sampled_from(["shared", "split"]),
        component=st.sampled_from(["both", "local", "summary"]),
    ),
    ks.patterns.RandomKeys: dict(num_keys=BLOCKS, seed=COUNT, reweight=FLAG, local_window=COUNT, block_size=BLOCKS),
    ks.patterns.DistanceDecay: dict(
        rate=st.one_of(floats(1e-6, 50.0), st.sampled_from([5e-324, 1e300])),
        threshold=floats(1e-6, 0.999),
        per_head=FLAG,
        block_size=BLOCKS,
    ),
    ks.patterns.LSH: dict(num_buckets=integers(1, 8), num_hashes=integers(1, 3), chunk_size=BLOCKS),
    ks.patterns.Learned: dict(
        layout=st.builds(
            lambda n, seed: np.random.default_rng(seed).random((n, n)) < 0.5, st.integers(0, 6), st.integers(0, 9)
        ),
        block_size=BLOCKS,
    ),
}


def required_arguments(cls) -> tuple[str, ...]:
    parameters = inspect.signature(cls).parameters.values()
    return tuple(p.name for p in parameters if p.default is inspect.Parameter.empty and p.kind != p.VAR_KEYWORD)


@st.composite
def pattern_call(draw):
    """(class, arguments) for one of the patterns, or for a Union / Intersection / PerHead of two."""
    kind = draw(st.sampled_from([*PATTERN_ARGUMENTS, "union", "intersection", "per_head"]))
    if isinstance(kind, str):
        parts = []
        for _ in range(2):
            cls, arguments = draw(
                st.sampled_from(list(PATTERN_ARGUMENTS)).flatmap(
                    lambda c: st.tuples(st.just(c), st.builds(dict, **PATTERN_ARGUMENTS[c]))
                )
            )
            parts.append((cls, arguments))
        return kind, parts
    return kind, draw_arguments(draw, PATTERN_ARGUMENTS[kind], required_arguments(kind))


def make_pattern(kind, arguments):
    if not isinstance(kind, str):
        return kind(**arguments)
    first, second = (cls(**args) for cls, args in arguments)
    combined = {"union": ks.patterns.Union, "intersection": ks.patterns.Intersection}.get(kind)
    return combined(first, second) if combined else ks.patterns.PerHead([first, second])


def check_mask_and_layout(pattern, seq_len: int, names) -> None:
    mask = outcome("patterns", lambda: pattern.mask(seq_len), names)
    if mask is REFUSED:
        return
    heads = () if pattern.num_heads is None else (pattern.num_heads,)
    assert mask.dtype == bool and mask.shape == (*heads, seq_len, seq_len), mask.shape
    layout = outcome("patterns", lambda: pattern.layout(seq_len), names)
    if layout is not REFUSED:
        blocks = math.ceil(seq_len / pattern.resolve_block_size())
        assert layout.dtype == bool and layout.shape == (*heads, blocks, blocks), layout.shape
    bias = pattern.dense_bias(seq_len)
    assert bias is None or finite(bias), "non-finite logit bias"


def test_patterns():
    @examples(200)
    @given(call=pattern_call(), seq_len=sometimes_wrong(integers(1, 70)), num_heads=sometimes_wrong(integers(1, 4)))
    def run(call, seq_len, num_heads):
        kind, arguments = call
        names = set(arguments if isinstance(kind, type) else itertools.chain(*(a for _, a in arguments)))
        names |= {"seq_len", "pattern", "patterns", "first", "second", "block_size"}
        pattern = outcome("patterns", lambda: make_pattern(kind, arguments), names)
        if pattern is REFUSED:
            return
        assert isinstance(pattern, ks.patterns.Pattern)
        assert type(pattern).from_config(pattern.get_config()) == pattern or isinstance(pattern, ks.patterns.Learned)
        expanded = outcome("patterns", lambda: pattern.for_heads(num_heads), names | {"num_heads"})
        huge = isinstance(seq_len, (int, np.integer)) and seq_len > 10**5  # a (T, T) mask: NumPy's MemoryError
        if expanded is not REFUSED and not pattern.dynamic and not huge:
            check_mask_and_layout(expanded, seq_len, names)

    run()
    assert_both_kinds("patterns")


# Layers and the classifier -------------------------------------------------------------------------------------

PATTERN_POOL = [
    ks.patterns.SlidingWindow(4),
    ks.patterns.SlidingWindow(6, global_tokens=(0,), block_size=8),
    ks.patterns.BlockLocal(8),
    ks.patterns.BigBird(8, num_global_blocks=1, num_random_blocks=1),
    ks.patterns.Strided(3, heads="split"),
    ks.patterns.Fixed(8, 2),
    ks.patterns.RandomKeys(3, local_window=2),
    ks.patterns.DistanceDecay(0.5),
    ks.patterns.DistanceDecay(1e30, threshold=0.5),
    ks.patterns.Dense(block_size=8),
    ks.patterns.LSH(4, chunk_size=8),
    ks.patterns.PerHead([ks.patterns.SlidingWindow(4), ks.patterns.BlockLocal(8)]),
]
ATTENTION_ARGUMENTS = dict(
    num_heads=integers(1, 3),
    key_dim=integers(1, 6),
    pattern=st.sampled_from(PATTERN_POOL),
    implementation=st.sampled_from(["auto", "blocked", "sparse", "segment", "dense"]),
    value_dim=integers(1, 6),
    dropout=floats(0.0, 0.9),
    use_bias=FLAG,
    output_shape=integers(1, 6),
    sliding_window=integers(1, 12),
    use_gate=FLAG,
    max_query_blocks=integers(1, 4),
    blockwise_softmax=FLAG,
)
CALL_NAMES = {"query", "value", "key", "seq_len", "attention_mask", "use_causal_mask"}


def inputs(batch: int, seq_len: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, seq_len, dim)).astype("float32")


def test_attention_layer():
    @examples(60)
    @given(
        data=st.data(),
        shape=st.tuples(st.integers(1, 2), st.integers(1, 40), st.integers(1, 6)),
        causal=st.booleans(),
        training=st.booleans(),
    )
    def run(data, shape, causal, training):
        arguments = draw_arguments(data.draw, ATTENTION_ARGUMENTS, ("num_heads", "key_dim"))
        names = set(arguments) | {"pattern"}
        layer = outcome("attention", lambda: ks.layers.SparseMultiHeadAttention(**arguments), names)
        if layer is REFUSED:
            return
        x = inputs(*shape, seed=shape[1])
        y = outcome("attention", lambda: layer(x, x, use_causal_mask=causal, training=training), names | CALL_NAMES)
        if y is REFUSED:
            return
        width = arguments.get("output_shape", shape[2])
        assert tuple(y.shape) == (shape[0], shape[1], int(width)), y.shape
        assert finite(y), "non-finite attention output from finite inputs"

    run()
    assert_both_kinds("attention")


ENCODER_ARGUMENTS = dict(
    num_heads=integers(1, 4),
    intermediate_dim=SIZE,
    pattern=st.sampled_from([None, *PATTERN_POOL[:4]]),
    dropout=floats(0.0, 0.9),
    activation=st.sampled_from(["relu", "gelu_tanh", "gelu"]),
    layer_norm_epsilon=floats(1e-9, 1e-2),
    normalize_first=FLAG,
    implementation=st.sampled_from(["auto", "blocked", "segment"]),
    key_dim=integers(1, 4),
    centered_layer_norm=FLAG,
)
CLASSIFIER_ARGUMENTS = dict(
    vocab_size=integers(2, 30),
    seq_len=integers(1, 40),
    num_layers=integers(1, 2),
    hidden_dim=integers(2, 8),
    num_heads=integers(1, 2),
    intermediate_dim=SIZE,
    pattern=st.sampled_from([None, *PATTERN_POOL[:4]]),
    num_classes=integers(1, 5),
    dropout=floats(0.0, 0.9),
    position=st.sampled_from(["learned", "sinusoidal"]),
    pooling=st.sampled_from(["cls", "mean"]),
    normalize_first=FLAG,
)


def test_encoder_and_classifier():
    @examples(40)
    @given(data=st.data(), seq_len=st.integers(1, 40), hidden=st.integers(1, 8), classifier=st.booleans())
    def run(data, seq_len, hidden, classifier):
        if classifier:
            arguments = draw_arguments(data.draw, CLASSIFIER_ARGUMENTS, [*CLASSIFIER_ARGUMENTS][:8])
            names = set(arguments) | {"sequence_length", "input_dim", "output_dim", "units", "kind", "rate"}
            model = outcome("encoder", lambda: ks.models.SparseTransformerClassifier(**arguments), names)
            if model is REFUSED:
                return
            tokens = np.random.default_rng(0).integers(0, int(arguments["vocab_size"]), (2, int(arguments["seq_len"])))
            logits = outcome("encoder", lambda: model(tokens), names | CALL_NAMES)
            assert logits is not REFUSED and logits.shape == (2, int(arguments["num_classes"]))
            assert finite(logits), "non-finite logits"
            return
        arguments = draw_arguments(data.draw, ENCODER_ARGUMENTS, ("num_heads", "intermediate_dim"))
        names = set(arguments) | {"inputs"}
        encoder = outcome("encoder", lambda: ks.layers.SparseTransformerEncoder(**arguments), names)
        if encoder is REFUSED:
            return
        y = outcome("encoder", lambda: encoder(inputs(1, seq_len, hidden, seed=seq_len)), names | CALL_NAMES)
        if y is not REFUSED:
            assert y.shape == (1, seq_len, hidden) and finite(y), "non-finite encoder output"

    run()
    assert_both_kinds("encoder")


# Datasets ------------------------------------------------------------------------------------------------------

LISTOPS_ARGUMENTS = dict(
    num_examples=integers(0, 3),
    max_length=integers(2, 100),
    seed=COUNT,
    min_length=st.one_of(st.none(), integers(1, 100)),
    max_depth=integers(1, 12),
    max_args=integers(2, 10),
    branch_probability=floats(0.0, 1.0),
)
TOKENS = ["[MAX", "[MIN", "[MED", "[SM", "]", *"0123456789", "x", "<cls>", ""]


def test_datasets():
    @examples(150)
    @given(data=st.data(), task=st.sampled_from(["listops", "far_retrieval", "evaluate", "vocabulary"]))
    def run(data, task):
        if task == "listops":
            arguments = draw_arguments(data.draw, LISTOPS_ARGUMENTS, ("num_examples",))
            result = outcome("datasets", lambda: ks.datasets.listops(**arguments), set(arguments))
            if result is not REFUSED:
                max_length = int(arguments.get("max_length", 512))
                assert result.inputs.shape == (int(arguments["num_examples"]), max_length)
                assert result.labels.tolist() == [ks.datasets.evaluate(text) for text in result.texts]
                assert all(len(text.split()) < max_length for text in result.texts)
        elif task == "far_retrieval":
            arguments = draw_arguments(
                data.draw, dict(num_examples=integers(0, 3), seq_len=integers(20, 80)), ("num_examples",)
            )
            result = outcome("datasets", lambda: ks.datasets.far_retrieval(**arguments), set(arguments))
            if result is not REFUSED:
                assert result.inputs.shape == (int(arguments["num_examples"]), int(arguments.get("seq_len", 1024)))
        elif task == "evaluate":
            text = data.draw(sometimes_wrong(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join)))
            value = outcome("datasets", lambda: ks.datasets.evaluate(text), {"text"})
            assert value is REFUSED or value in range(10)
        else:
            tokens = data.draw(sometimes_wrong(st.lists(st.sampled_from(TOKENS + [7, None]), max_size=5)))
            vocabulary = outcome("datasets", lambda: ks.datasets.Vocabulary(tokens), {"tokens"})
            if vocabulary is REFUSED:
                return
            text = data.draw(sometimes_wrong(st.lists(st.sampled_from(TOKENS), max_size=6).map(" ".join)))
            seq_len = data.draw(sometimes_wrong(integers(1, 8)))
            ids = outcome("datasets", lambda: vocabulary.encode(text, seq_len), {"text", "seq_len"})
            if ids is not REFUSED:
                assert ids.shape == (int(seq_len),) and vocabulary.decode(ids) == " ".join(text.split())
            wrong_ids = data.draw(sometimes_wrong(st.lists(integers(-2, 30), max_size=4)))
            decoded = outcome("datasets", lambda: vocabulary.decode(wrong_ids), {"ids"})
            assert decoded is REFUSED or isinstance(decoded, str)

    run()
    assert_both_kinds("datasets")


def test_vocabulary_files(tmp_path):
    """Whatever bytes a vocabulary file holds, `load` returns a vocabulary or a ValueError naming the file."""

    @examples(50)
    @given(content=st.one_of(st.binary(max_size=40), st.sampled_from([b"", b"{}", b'{"tokens": []}', b"[1]"])))
    def run(content):
        path = tmp_path / "vocab.json"
        path.write_bytes(content)
        with time_limit():
            try:
                vocabulary = ks.datasets.Vocabulary.load(path)
            except ValueError as error:
                assert str(path) in str(error), error
                EXAMPLES["vocabulary files refused"] += 1
                return
        EXAMPLES["vocabulary files valid"] += 1
        assert isinstance(vocabulary, ks.datasets.Vocabulary)

    run()
    assert EXAMPLES["vocabulary files refused"]


# Pruning -------------------------------------------------------------------------------------------------------

SCHEDULE_ARGUMENTS = dict(
    initial_sparsity=floats(0.0, 0.99),
    final_sparsity=floats(0.0, 0.99),
    target_sparsity=floats(0.0, 0.99),
    begin_step=integers(0, 50),
    end_step=integers(-1, 100),
    power=st.one_of(floats(0.1, 5.0), integers(0, 4)),
    frequency=integers(1, 20),
)
CALLBACK_ARGUMENTS = dict(
    structure=st.sampled_from(ks.pruning.STRUCTURES),
    layers=st.sampled_from([None, ["dense"], lambda layer: True]),
    n_m=st.tuples(integers(0, 5), integers(0, 8)),
    block_shape=st.tuples(integers(0, 4), integers(0, 4)),
    verbose=integers(0, 2),
)


def test_pruning_schedules_and_callbacks():
    @examples(150)
    @given(data=st.data(), polynomial=st.booleans(), steps=st.lists(integers(0, 200), max_size=4))
    def run(data, polynomial, steps):
        cls = ks.pruning.PolynomialDecay if polynomial else ks.pruning.ConstantSparsity
        required = required_arguments(cls)
        arguments = draw_arguments(
            data.draw, {k: v for k, v in SCHEDULE_ARGUMENTS.items() if k in inspect.signature(cls).parameters}, required
        )
        schedule = outcome("pruning", lambda: cls(**arguments), set(arguments))
        if schedule is not REFUSED:
            for step in [*steps, schedule.begin_step, schedule.final_sparsity_step]:
                should_prune, sparsity = schedule(step)
                assert isinstance(should_prune, bool) and 0 <= sparsity < 1 and math.isfinite(sparsity)
            assert schedule(schedule.final_sparsity_step)[1] == pytest.approx(schedule.final_sparsity)
        callback_arguments = draw_arguments(data.draw, CALLBACK_ARGUMENTS, ("structure",))
        callback_arguments["schedule"] = schedule if schedule is not REFUSED else data.draw(WRONG)
        callback = outcome(
            "pruning", lambda: ks.pruning.StructuredPruning(**callback_arguments), set(callback_arguments)
        )
        assert callback is REFUSED or isinstance(callback, keras.callbacks.Callback)
        update_freq = data.draw(sometimes_wrong(st.one_of(st.just("epoch"), integers(1, 9))))
        logger = outcome("pruning", lambda: ks.pruning.PruningLogger("unused", update_freq), {"update_freq"})
        assert logger is REFUSED or isinstance(logger, keras.callbacks.Callback)

    run()
    assert_both_kinds("pruning")


# Converters' argument checks -----------------------------------------------------------------------------------

CONVERTER_WRONG = dict(
    quantization=st.sampled_from(["int4", "INT8", None, 8, ["int8"]]),
    seq_len=st.sampled_from(["8", 2.5, -1, 0, True, math.nan, 9]),
    max_relative_error=st.sampled_from([math.nan, -0.1, 1.5, math.inf, "0.1", True]),
    min_argmax_agreement=st.sampled_from([math.nan, -0.5, 2.0, "1", False]),
    overwrite=st.sampled_from(["no", "yes", 0, 1, None]),
    sparse_weights=st.sampled_from(["no", 1, None]),
    float_outputs=st.sampled_from(["yes", 0]),
    representative_data=st.sampled_from(
        [np.zeros((0, 8, 4), "float32"), [], "data", np.zeros((4, 9, 4), "float32"), np.full((4, 8, 4), np.nan)]
    ),
    verification_data=st.sampled_from([np.zeros((0, 8, 4), "float32"), np.ones((2, 8), "float32"), "x"]),
)
CONVERTER_RIGHT = dict(
    quantization=st.sampled_from(list(MODES)),
    seq_len=st.sampled_from([None, 8, np.int64(8)]),
    max_relative_error=st.sampled_from([None, 0.5, np.float32(0.5)]),
    min_argmax_agreement=st.sampled_from([None, 0.0, np.float64(0.5)]),
    overwrite=st.sampled_from([False, True, np.bool_(True)]),
    sparse_weights=st.sampled_from([False, np.bool_(False)]),
    float_outputs=st.sampled_from([False, True]),
    representative_data=st.just(np.random.default_rng(0).normal(size=(16, 8, 4)).astype("float32")),
    verification_data=st.sampled_from([None, np.random.default_rng(1).normal(size=(4, 8, 4)).astype("float32")]),
)
MICRO_WRONG = dict(
    name=st.sampled_from(["1model", "my-model", "modèle", "", None, 5, "a b"]),
    max_quantization_steps=st.sampled_from([-1, 2.5, "8", math.nan, None]),
    max_query_blocks=st.sampled_from([0, -2, 1.5, "2"]),
    seq_len=CONVERTER_WRONG["seq_len"],
)


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 4))
    return keras.Model(x, keras.layers.Dense(3)(x))


def test_converters_refuse_every_bad_argument(tmp_path, tiny_model):
    """One argument is wrong, the others right: the call must be refused, naming an argument, before any work."""
    counter = itertools.count()

    @examples(60)
    @given(data=st.data(), micro=st.booleans())
    def run(data, micro):
        wrong_set = MICRO_WRONG if micro else CONVERTER_WRONG
        wrong = data.draw(st.sampled_from(sorted(wrong_set)))
        arguments = {name: data.draw(CONVERTER_RIGHT[name]) for name in CONVERTER_RIGHT if data.draw(st.booleans())}
        arguments[wrong] = data.draw(wrong_set[wrong])
        if micro:
            for name in ("quantization", "sparse_weights", "float_outputs"):
                arguments.pop(name, None)
            arguments.setdefault("representative_data", data.draw(CONVERTER_RIGHT["representative_data"]))
            target = tmp_path / f"bundle_{next(counter)}"
            call = lambda: to_micro(tiny_model, target, **arguments)  # noqa: E731
        else:
            if arguments.get("quantization") in ("int8", "int16x8"):
                arguments.setdefault("representative_data", data.draw(CONVERTER_RIGHT["representative_data"]))
            target = tmp_path / f"model_{next(counter)}.tflite"
            call = lambda: to_tflite(tiny_model, target, **arguments)  # noqa: E731
        result = outcome("converters", call, set(arguments) | {"path", "folder", "model"})
        assert result is REFUSED, f"accepted {wrong}={arguments[wrong]!r} and converted"
        assert not target.exists(), "refused, yet wrote"

    run()
    assert EXAMPLES["converters refused"]
