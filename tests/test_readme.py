"""The front page and the manual cannot rot: the two set-up commands are the ones the project runs, every relative
link and image resolves, and the README's Python blocks run as written."""

import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).parent.parent
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_using_dot_venv():
    commands = readme_commands()
    assert len(commands) == 2
    assert all(c.startswith("python3.11 -m venv .venv && .venv/bin/pip install") for c in commands)
    assert "examples/listops/run.py" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    assert readme_commands()[1] in (ROOT / ".ci/run").read_text().splitlines()


def test_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_bytes()) <= 16 * 1024


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: pathlib.Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def relative_links():
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code is not links
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:", target):
                yield page, target


@pytest.mark.parametrize(
    "page, target", list(relative_links()), ids=lambda v: v.name if isinstance(v, pathlib.Path) else v
)
def test_relative_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{page.relative_to(ROOT)} links to missing {target}"
    if anchor:
        assert resolved.suffix == ".md" and anchor in anchors(resolved), (
            f"{page.relative_to(ROOT)} links to {target}: no such heading in {resolved.name}"
        )


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README has a tour"
    monkeypatch.chdir(tmp_path)  # the tour writes its files into the working folder
    namespace = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert tuple(namespace["y"].shape) == (2, 512, 64)
    assert namespace["small"].count_params() < namespace["model"].count_params()
    assert {"retrieval_int8.tflite", "micro"} <= set(os.listdir(tmp_path))
