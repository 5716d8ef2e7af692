"""Every command of docs/querying.md, the README's quick query and the demo's ``next:`` hints run,
as printed, against the archive ``kubestream demo`` made (in the folder the demo ran in)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from tests.query.conftest import run_cli

from kubestream.query.shape import VIEWS

ROOT = Path(__file__).resolve().parents[2]
QUERYING = ROOT / "docs" / "querying.md"


def doc_commands(text: str) -> list[str]:
    """The ``kubestream …`` commands of the ```sh blocks (backslash continuations joined)."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("kubestream "):
                commands.append(line.strip())
    return commands


def _run_documented(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[0] == "kubestream", command
    return run_cli(*argv[1:], cwd=cwd)


def test_querying_page_has_the_questions() -> None:
    commands = doc_commands(QUERYING.read_text())
    assert len(commands) >= 12
    assert any(" timeline " in f" {c} " and "--html" in c for c in commands)


@pytest.mark.parametrize("command", doc_commands(QUERYING.read_text()))
def test_documented_command_runs_on_the_demo_archive(command: str, demo_dir: Path) -> None:
    done = _run_documented(command, demo_dir)
    assert done.returncode == 0, f"{command}\n{done.stderr}"
    assert "Traceback" not in done.stderr and done.stdout.strip(), command
    if " timeline " in f" {command} " and ("logs" not in command):
        assert len(done.stdout.splitlines()) > 2, f"{command}: the demo's workload should have rows\n{done.stdout}"
    if "--html" in command:
        page = demo_dir / shlex.split(command)[shlex.split(command).index("--html") + 1]
        assert page.read_text().startswith("<!DOCTYPE html>")


def test_readme_quick_queries_run(demo_dir: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"`(kubestream (?:query|timeline) [^`]+)`", readme)
    assert len(commands) >= 2
    for command in commands:
        done = _run_documented(command, demo_dir)
        assert done.returncode == 0 and len(done.stdout.splitlines()) > 2, f"{command}\n{done.stderr}"
    assert "event.count_delta" not in readme and "duckdb -c" not in readme


def test_demo_next_hints_run_as_printed(demo_dir: Path) -> None:
    output = (demo_dir / "demo-output.txt").read_text()
    hints = output.split("next:\n", 1)[1].splitlines()
    runnable = [h.split("   #", 1)[0].strip() for h in hints if " query " in h or " timeline " in h or "zcat" in h]
    assert len(runnable) >= 4, output
    for hint in runnable:
        # Full paths: they run from anywhere, here from the filesystem root.
        done = subprocess.run(hint, shell=True, capture_output=True, text=True, timeout=120, cwd="/")
        assert done.returncode == 0 and done.stdout.strip(), f"{hint}\n{done.stderr}"
    assert str(Path(sys.executable).parent) in output


def test_views_columns_are_documented() -> None:
    text = QUERYING.read_text()
    for view, columns in VIEWS.items():
        section = text.split(f"### `{view}`", 1)[1].split("###", 1)[0]
        documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
        assert documented == [c.name for c in columns], view
