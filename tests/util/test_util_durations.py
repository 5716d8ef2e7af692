"""The shared duration parser and printer."""

from __future__ import annotations

import pytest

from kubestream.util.durations import DurationError, human_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0), ("1w", 604800.0), ("1h30m", 5400.0),
    ("500ms", 0.5), ("1.5h", 5400.0), (" 2H ", 7200.0),
])
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "1x", "1h 30m", "-1s"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DurationError, match=r"expected a duration like 90s, 15m, 2h, 1d or 1h30m \(got "):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-0.5, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (302, "5m2s"), (600, "10m"),
    (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (7 * 3600 + 60, "7h1m"), (47 * 3600, "47h"),
    (3 * 86400 + 4 * 3600, "3d4h"), (30 * 86400, "30d"), (3 * 365 * 86400 + 86400, "3y1d"),
    (9 * 365 * 86400, "9y"),
])
def test_human(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
