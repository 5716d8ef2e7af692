"""Human durations ("90s", "15m", "2h", "1d", "1h30m") and the ``events.since`` option.

Kept apart from the loader so the events source can parse ``since`` without pulling in YAML.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from kubestream.errors import ConfigError

_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
# "ms" must be tried before "m" so "500ms" is not read as 500 minutes followed by garbage.
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")

DURATION_HINT: Final = "a duration like 90s, 15m, 2h, 1d or 1h30m"

SinceMode = Literal["now", "retained"]


def parse_duration(text: str) -> float:
    """Seconds in ``text``: one or more ``<number><unit>`` parts, units ms, s, m, h, d, w.

    A bare number is rejected on purpose: "15" could mean seconds or minutes, and guessing
    wrong silently exports the wrong window. Raises ``ConfigError`` (without a key; callers
    that know the option add it).
    """
    compact = text.strip().lower()
    if not compact or _WHOLE.fullmatch(compact) is None:
        raise ConfigError(f"expected {DURATION_HINT} (got {text!r})")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(compact))


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
