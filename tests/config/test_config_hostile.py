"""Hostile or absurd configuration files get one line naming the problem: never a traceback,
a RecursionError, a hang or gigabytes of memory."""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from kubestream.config import Settings, load_settings
from kubestream.config.interpolate import MAX_NESTING
from kubestream.config.loader import MAX_CONFIG_BYTES, MAX_DEPTH
from kubestream.config.settings import ServerSettings
from kubestream.errors import ConfigError
from kubestream.obs.metrics import Metrics
from kubestream.obs.server import ObsServer


def _error(tmp_path: Path, name: str, text: str) -> ConfigError:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    return caught.value


def test_deeply_nested_references_are_refused_before_they_recurse(tmp_path: Path) -> None:
    depth = 2000
    text = "${V:-" * depth + "x" + "}" * depth
    error = _error(tmp_path, "c.yaml", f'sink:\n  prefix: "{text}"\n')
    assert error.key == "sink.prefix"
    assert str(error).endswith(f"— references nested more than {MAX_NESTING} deep")
    # Nesting within the bound still resolves.
    shallow = "${V:-" * MAX_NESTING + "x" + "}" * MAX_NESTING
    path = tmp_path / "ok.yaml"
    path.write_text(f'sink:\n  prefix: "{shallow}"\n')
    assert load_settings(path, environ={}).sink.prefix == "x"


@pytest.mark.parametrize(("name", "text", "where"), [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json: "),
    ("deep.yaml", "a: " + "[" * 100_000 + "]" * 100_000 + "\n", "deep.yaml:1:"),
    ("deep-block.yaml", "".join(f"{'  ' * i}k{i}:\n" for i in range(200)), "deep-block.yaml:"),
    ("shallow-but-too-deep.json", "{\"a\": " * 40 + "1" + "}" * 40, "shallow-but-too-deep.json: "),
])
def test_deep_nesting_is_one_line(tmp_path: Path, name: str, text: str, where: str) -> None:
    message = str(_error(tmp_path, name, text))
    assert message.startswith(f"{tmp_path}/{where}")
    assert message.endswith(f"nested deeper than {MAX_DEPTH} levels; a kubestream configuration is only a few "
                            "levels deep")


BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))


def test_billion_laughs_is_refused_at_the_first_anchor(tmp_path: Path) -> None:
    message = str(_error(tmp_path, "laughs.yaml", BILLION_LAUGHS))
    assert message == ("laughs.yaml:1:4: anchors and aliases (&name, *name, <<: *name) are not accepted in a "
                       "kubestream configuration; write the values out").replace("laughs.yaml", str(tmp_path / "laughs.yaml"))


@pytest.mark.parametrize("text", [
    "defaults: &d {max_records: 5}\nbatch: *d\n",
    "batch: &b\n  max_records: 5\n",
    "x: &x {max_records: 5}\nbatch:\n  <<: *x\n",
])
def test_anchors_and_aliases_are_refused(tmp_path: Path, text: str) -> None:
    assert "anchors and aliases" in str(_error(tmp_path, "c.yaml", text))


def test_oversized_file_is_refused_without_parsing(tmp_path: Path) -> None:
    message = str(_error(tmp_path, "big.yaml", "# padding\n" * (MAX_CONFIG_BYTES // 10 + 1)))
    assert message.endswith(f"big.yaml: larger than {MAX_CONFIG_BYTES // 1024} KiB; a kubestream configuration "
                            "is a few KiB")


def _float_options(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], bool]]:
    """Every float option of the settings tree: (key path, is a pair of floats)."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        path = (*prefix, name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _float_options(annotation, path)
        elif typing.get_origin(annotation) is tuple and float in typing.get_args(annotation):
            yield path, True
        elif annotation is float or float in typing.get_args(annotation):
            yield path, False


FLOAT_OPTIONS = list(_float_options(Settings))


def test_the_settings_tree_has_float_options() -> None:
    assert len(FLOAT_OPTIONS) > 20  # the generator below found them (not an empty parametrization)


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
@pytest.mark.parametrize(("path", "pair"), FLOAT_OPTIONS, ids=[".".join(p) for p, _ in FLOAT_OPTIONS])
def test_every_float_option_refuses_infinity_and_nan(tmp_path: Path, path: tuple[str, ...], pair: bool,
                                                     value: str) -> None:
    shown = f"[1.0, {value}]" if pair else value
    text = "".join(f"{'  ' * i}{part}:\n" for i, part in enumerate(path[:-1])) + f"{'  ' * (len(path) - 1)}{path[-1]}: {shown}\n"
    error = _error(tmp_path, "c.yaml", text)
    dotted = ".".join(path) + ("[1]" if pair else "")
    assert str(error).startswith(f"{dotted}: Input should be a finite number"), str(error)


def test_renew_deadline_must_be_below_the_lease_duration(tmp_path: Path) -> None:
    error = _error(tmp_path, "c.yaml", "leader_election:\n  lease_duration_s: 10\n  renew_deadline_s: 10\n")
    assert str(error) == "leader_election.renew_deadline_s: must be below leader_election.lease_duration_s (10)"


def test_observability_server_listens_on_loopback_by_default() -> None:
    async def bound_host() -> str:
        server = ObsServer(ServerSettings(port=0), Metrics(), lambda: (True, "ok"))
        await server.start()
        try:
            runner = server._runner
            assert runner is not None
            return str(runner.addresses[0][0])
        finally:
            await server.stop()

    assert Settings().server.host == "127.0.0.1"
    assert asyncio.run(bound_host()) == "127.0.0.1"
