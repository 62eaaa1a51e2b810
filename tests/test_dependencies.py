"""keras_sparse's parts depend on each other in one direction only, and never on converters or keras-hub.

The order: patterns -> kernels -> layers -> models / rewrites / pruning / summary / positions; datasets
stands alone; validation (argument checks) comes first, under every part; `converters` (a top-level package)
may use all of keras_sparse, never the reverse.
"""

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

import keras_sparse

PACKAGE = pathlib.Path(keras_sparse.__file__).parent

DIRECT = {
    "files": set(),
    "validation": set(),
    "optional_keras_hub": set(),
    "model_rebuilding": set(),
    "patterns": {"files", "validation"},
    "kernels": {"patterns"},
    "layers": {"kernels"},
    "models": {"layers"},
    "rewrites": {"layers", "model_rebuilding"},
    "pruning": {"rewrites", "model_rebuilding", "optional_keras_hub"},
    "attention_summary": {"layers", "rewrites"},
    "positions": {"layers", "model_rebuilding", "optional_keras_hub"},
    "datasets": {"files", "validation"},
}
"""Each part of keras_sparse (subpackage or top-level module) and the parts it may import directly."""


def allowed(part: str) -> set[str]:
    """The parts `part` may import, directly or through others."""
    found, todo = set(), list(DIRECT[part])
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(DIRECT[name])
    return found


def part_of(path: pathlib.Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_parts(path: pathlib.Path) -> set[str]:
    """The keras_sparse parts (and "converters") a file imports anywhere, function bodies included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module] if node.module != "keras_sparse" else [f"keras_sparse.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            top, *rest = name.split(".")
            if top == "converters":
                found.add("converters")
            elif top == "keras_sparse" and rest:
                found.add(rest[0])
    return found - {part_of(path)}


def test_every_part_is_in_the_dependency_table():
    parts = {part_of(path) for path in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts == set(DIRECT), "add new parts of keras_sparse to DIRECT with the parts they may use"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_follow_the_dependency_order(path):
    if path == PACKAGE / "__init__.py":
        return
    forbidden = imported_parts(path) - allowed(part_of(path))
    assert not forbidden, f"{path.relative_to(PACKAGE)} imports {sorted(forbidden)}, outside {part_of(path)}'s order"


SUBPACKAGES = ("patterns", "kernels", "layers", "models", "rewrites", "pruning", "datasets")

IMPORT_EACH_ALONE = """
import importlib, importlib.util, json, sys, types
location = importlib.util.find_spec("keras_sparse").submodule_search_locations
loaded = {}
for module in sys.argv[1:]:
    for name in [name for name in sys.modules if name.split(".")[0] == "keras_sparse"]:
        del sys.modules[name]
    if module != "keras_sparse":  # keras_sparse/__init__ imports every part: leave it out
        package = types.ModuleType("keras_sparse")
        package.__path__ = location
        sys.modules["keras_sparse"] = package
    importlib.import_module(module)
    loaded[module] = sorted(
        {name.split(".")[1] for name in sys.modules if name.startswith("keras_sparse.")}
        | {name for name in sys.modules if name in ("converters", "keras_hub")}
    )
print(json.dumps(loaded))
"""
"""One fresh interpreter imports each module alone: keras_sparse's modules are dropped from sys.modules
between imports (Keras and TensorFlow stay loaded, so each import costs milliseconds, not seconds)."""


@pytest.fixture(scope="module")
def loaded_alone() -> dict[str, set[str]]:
    """For each subpackage and keras_sparse itself: the keras_sparse parts, converters and keras_hub in
    sys.modules after importing it alone."""
    modules = [f"keras_sparse.{part}" for part in SUBPACKAGES] + ["keras_sparse"]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_ALONE, *modules], capture_output=True, text=True, env=env, check=True
    )
    return {module: set(parts) for module, parts in json.loads(result.stdout).items()}


@pytest.mark.parametrize("part", SUBPACKAGES)
def test_a_subpackage_imported_alone_loads_only_the_parts_before_it(part, loaded_alone):
    loaded = loaded_alone[f"keras_sparse.{part}"] - {part}
    assert loaded <= allowed(part), f"keras_sparse.{part} loads {sorted(loaded - allowed(part))}"


def test_importing_keras_sparse_loads_neither_keras_hub_nor_converters(loaded_alone):
    assert not loaded_alone["keras_sparse"] & {"keras_hub", "converters"}
