"""The Dockerfile, checked by parsing it: no Docker engine (nor hadolint) is available here, so
the image itself is not built by the tests. What is asserted: multi-stage with a wheel built in
the builder, the runtime stage copies only the virtualenv, installs nothing with a compiler or
pip cache, runs as a non-root user, pins its base image (no `latest`), declares a health check
and a working directory for relative state, and the build context excludes the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.deploy.deploy_support import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Stage:
    """One FROM ... AS name block: its base and its instructions (keyword, argument text)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [text for kw, text in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
            assert match, line
            stages.append(Stage(match.group(1), match.group(2) or str(len(stages))))
        elif not stages and keyword == "ARG":
            name, _, default = rest.partition("=")
            global_args[name.strip()] = default.strip()
        else:
            assert stages, f"instruction before FROM: {line}"
            stages[-1].instructions.append((keyword, rest.strip()))
    return global_args, stages


ARGS, STAGES = parse_dockerfile(DOCKERFILE.read_text())
BUILDER, RUNTIME = STAGES[0], STAGES[-1]


def _resolve(image: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: ARGS[m.group(1)], image)


def test_is_multi_stage_with_a_wheel_built_in_the_builder() -> None:
    assert len(STAGES) >= 2
    assert any("pip wheel" in run for run in BUILDER.args("RUN"))
    copies = RUNTIME.args("COPY")
    assert [c for c in copies if c.startswith("--from=")] == [f"--from={BUILDER.name} /opt/kubestream /opt/kubestream"]
    # Nothing but the builder's virtualenv enters the runtime stage: no source tree, no wheels.
    assert all(c.startswith("--from=") for c in copies)


def test_base_images_are_pinned_slim_python_311() -> None:
    for stage in STAGES:
        image = _resolve(stage.base)
        repository, _, tag = image.partition(":")
        assert tag and tag != "latest", image
        assert repository == "python" and tag.startswith("3.11") and "slim" in tag


def test_runtime_stage_has_no_build_tools_or_caches() -> None:
    runs = " ".join(RUNTIME.args("RUN"))
    for forbidden in ("apt-get install", "gcc", "build-essential", "pip install", "pip wheel"):
        assert forbidden not in runs
    assert "pip uninstall" in runs  # the base image's installer is removed too
    env = " ".join(RUNTIME.args("ENV")) + " ".join(BUILDER.args("ENV"))
    assert "PIP_NO_CACHE_DIR=1" in env and "PYTHONDONTWRITEBYTECODE=1" in env


def test_runs_as_a_non_root_user_with_probes_and_entrypoint() -> None:
    users = RUNTIME.args("USER")
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert RUNTIME.args("WORKDIR") == ["/var/lib/kubestream"]
    healthcheck = " ".join(RUNTIME.args("HEALTHCHECK"))
    assert "/healthz" in healthcheck and "9102" in healthcheck
    assert RUNTIME.args("EXPOSE") == ["9102"]
    assert RUNTIME.args("ENTRYPOINT") == ['["kubestream"]']


def test_build_context_is_only_what_the_wheel_needs() -> None:
    lines = [line for line in DOCKERIGNORE.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!src/"} <= set(lines)
    for copied in ("pyproject.toml", "README.md", "src"):
        assert (REPO / copied).exists()
