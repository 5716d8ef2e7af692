"""Process-wide logging on stderr: human text or JSON lines.

Structured fields travel in ``extra``::

    log.info("batch delivered", extra={"key": key, "records": 512})

text:  ``2024-05-01T12:00:00.123Z INFO  kubestream.sinks batch delivered key=a/b.gz records=512``
json:  ``{"time":"2024-05-01T12:00:00.123Z","level":"info","logger":"kubestream.sinks",
"message":"batch delivered","key":"a/b.gz","records":512}``
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Final, TextIO

import orjson

from kubestream.config.settings import LogSettings

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_HANDLER_MARK: Final = "_kubestream_handler"


def setup_logging(settings: LogSettings, *, stream: TextIO | None = None) -> None:
    """Send all logging to ``stream`` (stderr) in the configured format and level.

    Idempotent: calling it again replaces kubestream's handler instead of adding a second one,
    so the CLI can configure early (defaults) and again once the configuration is loaded.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(_LEVELS[settings.level])


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a call passed through ``extra``."""
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}


def utc_timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds, the form log pipelines parse without configuration."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...`` with tracebacks on following lines."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [utc_timestamp(record.created), f"{record.levelname:<5}", record.name, record.getMessage()]
        parts.extend(f"{key}={_text_value(value)}" for key, value in extra_fields(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ``extra`` fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": utc_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            # A field named like a fixed one must not overwrite it.
            entry[key if key not in entry else f"extra_{key}"] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _text_value(value: object) -> str:
    text = str(value)
    # Quote only when needed, so the common case stays greppable: key=value.
    if not text or any(char.isspace() or char in '"=' for char in text):
        return orjson.dumps(text).decode()
    return text
