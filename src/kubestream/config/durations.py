"""Human durations ("90s", "15m", "2h", "1d", "1h30m") and the ``events.since`` option.

Kept apart from the loader so the events source can parse ``since`` without pulling in YAML.
"""

from __future__ import annotations

from typing import Literal

from kubestream.errors import ConfigError
from kubestream.util import durations
from kubestream.util.durations import DURATION_HINT, DurationError

__all__ = ["SinceMode", "parse_duration", "parse_since"]

SinceMode = Literal["now", "retained"]


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``kubestream.util.durations.parse_duration``): one or more
    ``<number><unit>`` parts, units ms, s, m, h, d, w; a bare number is rejected. Raises
    ``ConfigError`` (without a key; callers that know the option add it).
    """
    try:
        return durations.parse_duration(text)
    except DurationError as exc:
        raise ConfigError(str(exc)) from None


def parse_since(text: str) -> SinceMode | float:
    """``events.since``: "now", "retained", or a look-back window in seconds."""
    word = text.strip().lower()
    if word == "now":
        return "now"
    if word == "retained":
        return "retained"
    try:
        return parse_duration(word)
    except ConfigError:
        raise ConfigError(f'expected "now", "retained" or {DURATION_HINT} (got {text!r})') from None
