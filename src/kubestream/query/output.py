"""Writing result rows: an aligned table (for people), CSV, or JSON lines (for programs).

Times are printed as RFC 3339 UTC with a ``Z`` (what the archive stores); maps and lists as
JSON; NULL as an empty cell (table, CSV) or ``null`` (JSON lines).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, TextIO

import orjson

FORMATS: Final = ("table", "csv", "jsonl")
TABLE_CELL_MAX: Final = 120
"""Table cells are cut here (with "…") so one long message cannot push every row off screen."""


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def cell_text(value: Any) -> str:
    """A value as one line of text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=_json_default).decode()
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _time(value)
    return value


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    """CSV with a header row; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([cell_text(v) for v in row])
        count += 1
    return count


def write_jsonl(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    """One JSON object per row; returns the number of rows."""
    count = 0
    for row in rows:
        item = {name: _json_value(v) for name, v in zip(columns, row, strict=True)}
        out.write(orjson.dumps(item, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
        count += 1
    return count


def _table_cell(value: Any) -> str:
    text = " ".join(cell_text(value).splitlines())
    return text if len(text) <= TABLE_CELL_MAX else text[: TABLE_CELL_MAX - 1] + "…"


def write_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    """Columns aligned under their header (numbers right-aligned); returns the number of rows."""
    raw = list(rows)
    cells = [[_table_cell(v) for v in row] for row in raw]
    numeric = [bool(raw) and all(_is_number(r[i]) or r[i] is None for r in raw) for i in range(len(columns))]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out.write(line(list(columns)) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write(line(r) + "\n")
    out.write(f"({len(cells)} row{'' if len(cells) == 1 else 's'})\n")
    return len(cells)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def write_rows(fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    """Write ``rows`` in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "csv":
        return write_csv(columns, rows, out)
    if fmt == "jsonl":
        return write_jsonl(columns, rows, out)
    return write_table(columns, rows, out)
