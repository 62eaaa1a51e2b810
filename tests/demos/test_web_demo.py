"""The web demo in headless Chromium: each page's outputs equal LiteRT's in Python, on its golden file.

`index.html` (ListOps): the answers to the golden expressions. `stream.html` (the streaming decoder): the
characters streamed for each golden prompt, token for token.

Needs Node.js, the npm packages of web_demo/ (installed here with `npm ci` if missing) and Debian's
chromium (`apt-get install chromium`; `.ci/run` installs it). If the browser cannot start, the test
fails and says why: it never skips.
"""

import functools
import http.server
import json
import pathlib
import shutil
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).parents[2]
WEB = ROOT / "web_demo"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def node_modules():
    node = shutil.which("node")
    assert node, "Node.js is needed for the web demo tests (Debian: apt-get install nodejs npm)"
    if not (WEB / "node_modules/@litertjs/core").exists() or not (WEB / "node_modules/playwright-core").exists():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, capture_output=True, text=True)
        assert done.returncode == 0, f"npm ci failed in web_demo/: {done.stderr[-2000:]}"
    return node


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(QuietHandler, directory=str(WEB))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm"}

    def log_message(self, *args):
        pass


def run_in_chromium(node: str, script: str, url: str, golden_path: pathlib.Path, screenshot: pathlib.Path) -> dict:
    """Runs a playwright-core script of web_demo/tests/ on `url`; returns the JSON it prints last."""
    assert pathlib.Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
    )
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [node, script, url, str(golden_path), str(screenshot)], cwd=WEB, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"the browser run failed: {done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_javascript_tokenizer_and_evaluator_match_the_golden_vectors(node_modules):
    done = subprocess.run([node_modules, "--test", "tests/"], cwd=WEB, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_page_answers_equal_litert_python(node_modules, server):
    screenshot = ROOT / "artifacts/web_demo/screenshot.png"
    golden_path = WEB / "model/golden.json"
    result = run_in_chromium(node_modules, "tests/e2e.mjs", server + "index.html", golden_path, screenshot)
    golden = json.loads(golden_path.read_text())
    assert result["answers"] == [e["model_answer"] for e in golden["examples"]]
    assert result["truths"] == [e["answer"] for e in golden["examples"]]
    assert result["consoleErrors"] == []
    assert screenshot.stat().st_size > 10_000


def test_streamed_characters_equal_litert_python(node_modules, server):
    screenshot = ROOT / "artifacts/web_demo/stream_screenshot.png"
    golden_path = WEB / "model/streaming_golden.json"
    result = run_in_chromium(node_modules, "tests/stream_e2e.mjs", server + "stream.html", golden_path, screenshot)
    golden = json.loads(golden_path.read_text())
    assert result["tokens"] == [example["new_tokens"] for example in golden["examples"]]
    assert result["consoleErrors"] == []
    # Constant memory: the WebAssembly heap (LiteRT's tensors) at each prompt's last character is the size it had at
    # the first prompt's first character (a page that leaked each step's input tensors grew it by 7 to 11 MiB a prompt).
    first = result["heapBytes"][0][0]
    assert first > 0 and all(heap == [first, first] for heap in result["heapBytes"]), result["heapBytes"]
    assert screenshot.stat().st_size > 10_000
