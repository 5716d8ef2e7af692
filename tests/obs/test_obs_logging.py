"""Logging setup: text and JSON lines with ``extra`` fields, idempotent."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest

from kubestream.config.settings import LogSettings
from kubestream.obs.logging import setup_logging

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_obs_logging_json_lines_carry_extra_fields() -> None:
    stream = io.StringIO()
    setup_logging(LogSettings(format="json", level="info"), stream=stream)
    log = logging.getLogger("kubestream.test")
    log.info("batch delivered", extra={"key": "a/b.gz", "records": 512, "level": "clash"})
    log.debug("hidden at info")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = orjson.loads(lines[0])
    assert re.fullmatch(TIME, entry.pop("time"))
    assert entry == {"level": "info", "logger": "kubestream.test", "message": "batch delivered",
                     "key": "a/b.gz", "records": 512, "extra_level": "clash"}


class Opaque:
    """A value orjson cannot serialise; the formatter falls back to str()."""

    def __str__(self) -> str:
        return "opaque-thing"


def test_obs_logging_json_exception_and_unserialisable_values() -> None:
    stream = io.StringIO()
    setup_logging(LogSettings(format="json", level="debug"), stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("kubestream.test").exception("failed", extra={"where": Opaque()})
    entry = orjson.loads(stream.getvalue())
    assert entry["level"] == "error"
    assert "ValueError: boom" in entry["exception"]
    assert entry["where"] == "opaque-thing"


def test_obs_logging_text_format() -> None:
    stream = io.StringIO()
    setup_logging(LogSettings(format="text", level="debug"), stream=stream)
    logging.getLogger("kubestream.sinks").debug("uploaded %d", 3, extra={"key": "a b", "n": 1, "empty": ""})
    line = stream.getvalue().rstrip("\n")
    assert re.fullmatch(rf'{TIME} DEBUG kubestream\.sinks uploaded 3 key="a b" n=1 empty=""', line), line


def test_obs_logging_is_idempotent_and_applies_new_level() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging(LogSettings(format="text", level="info"), stream=first)
    setup_logging(LogSettings(format="json", level="warning"), stream=second)
    log = logging.getLogger("kubestream.test")
    log.info("not at warning")
    log.warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1
    assert orjson.loads(second.getvalue())["message"] == "once"
