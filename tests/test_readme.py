"""The README's two set-up commands are the ones the project runs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).parent.parent


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_using_dot_venv():
    commands = readme_commands()
    assert len(commands) == 2
    assert all(c.startswith("python3.11 -m venv .venv && .venv/bin/pip install") for c in commands)


def test_ci_runs_the_readme_test_command():
    assert readme_commands()[1] in (ROOT / ".ci/run").read_text().splitlines()
