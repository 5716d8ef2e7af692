"""`make demo` installs the base dependencies plus the `sim` extra only: every third-party module
the package imports must come from one of them, and what only the simulator needs stays out of the
agent's base (the image and `pip install .` do not carry it)."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "kubestream"


def _names(requirements: list[str]) -> set[str]:
    out = set()
    for req in requirements:
        match = re.match(r"[A-Za-z0-9._-]+", req)
        assert match, req
        out.add(re.sub(r"[-_.]+", "-", match.group(0)).lower())
    return out


def _closure(names: set[str]) -> set[str]:
    """These distributions and everything they require when installed without extras."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in map(Requirement, importlib.metadata.requires(name) or []):
            # Markers evaluate without an extra: what a plain install of `name` brings here.
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(re.sub(r"[-_.]+", "-", requirement.name).lower())
    return seen


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports of one module."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"kubestream", "__future__"}


@functools.cache
def _installed() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    found = _installed().get(module)
    assert found, f"{module} is imported but installed by no distribution"
    return _names(found)


def test_the_demo_install_provides_every_import_and_the_base_only_the_agents() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = _closure(_names(project["dependencies"]))
    sim = _closure(_names(project["optional-dependencies"]["sim"]))
    for path in sorted(SRC.rglob("*.py")):
        in_sim = path.is_relative_to(SRC / "sim")
        for module in _imports(path):
            dists = _distributions(module)
            allowed = base | sim if in_sim else base
            assert dists & allowed, f"{path.relative_to(ROOT)} imports {module} ({dists}), not in {allowed}"
    simulator_only = sim - base
    assert "cryptography" in simulator_only
    for path in sorted(SRC.rglob("*.py")):
        if not path.is_relative_to(SRC / "sim"):
            assert not {m for m in _imports(path) if _distributions(m) <= simulator_only}, path
