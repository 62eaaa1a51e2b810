"""The Android app's Kotlin tokenizer and evaluator against the golden vectors, compiled with kotlinc here.

The Android build itself cannot run on this machine (no Android SDK, no Maven); its plain-Kotlin
ListOps.kt can. A generated driver runs it on every golden vector and prints what it computes.
Needs Debian's `kotlin` package (`.ci/run` installs it); without kotlinc the test fails and says so.
"""

import json
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).parents[2]
SOURCE = ROOT / "android_demo/app/src/main/java/dev/kerassparse/listops/ListOps.kt"
ASSETS = ROOT / "android_demo/app/src/main/assets"


def kotlin_string(text: str) -> str:
    return json.dumps(text).replace("$", "\\$")


def test_kotlin_tokenizer_and_evaluator_match_the_golden_vectors(tmp_path):
    kotlinc = shutil.which("kotlinc")
    assert kotlinc, "kotlinc is missing: install Debian's kotlin package (apt-get install kotlin)"
    golden = json.loads((ASSETS / "golden.json").read_text())
    tokens = json.loads((ASSETS / "listops_vocab.json").read_text())["tokens"]
    expressions = ", ".join(kotlin_string(e["expression"]) for e in golden["examples"])
    driver = tmp_path / "Driver.kt"
    driver.write_text(
        "import dev.kerassparse.listops.ListOps\nimport dev.kerassparse.listops.Vocabulary\n"
        "fun main() {\n"
        f"    val vocabulary = Vocabulary(listOf({', '.join(kotlin_string(t) for t in tokens)}))\n"
        f"    for (expression in listOf({expressions})) {{\n"
        f"        val ids = ListOps.encode(expression, vocabulary, {golden['seq_len']})\n"
        '        println("${ListOps.evaluate(expression)} ${ids.joinToString(",")}")\n'
        "    }\n"
        "    val random = kotlin.random.Random(1)\n"
        '    repeat(50) { val e = ListOps.generate(120, random); check(e.split(" ").size <= 120); '
        "check(ListOps.evaluate(e) in 0..9) }\n"
        "}\n"
    )
    jar = tmp_path / "driver.jar"
    compiled = subprocess.run(
        [kotlinc, str(SOURCE), str(driver), "-include-runtime", "-d", str(jar)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    ran = subprocess.run(["java", "-jar", str(jar)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-3000:]
    lines = ran.stdout.strip().splitlines()
    assert len(lines) == len(golden["examples"])
    for line, example in zip(lines, golden["examples"], strict=True):
        answer, ids = line.split(" ")
        assert int(answer) == example["answer"]
        padding = [0] * (golden["seq_len"] - len(example["token_ids"]))
        assert [int(i) for i in ids.split(",")] == example["token_ids"] + padding
