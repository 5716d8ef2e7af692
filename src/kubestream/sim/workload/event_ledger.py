"""The event ledger of truth: what the workload wrote, so tests can compare an archive with it.

``EventLedger`` holds, per event uid, the number of occurrences the API now says happened
(``series.count`` if set, else ``count``, else 1 — spec §5 "Avoiding double counting"), taken
from the server's answer to every POST and PATCH. An archive that counts correctly therefore
sums, per uid, exactly ``EventLedger.per_uid()``. Occurrences still pending in a series
recorder's memory are *not* in the ledger until ``flush()`` writes them: the truth is what was
written.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import orjson


def occurrences(event: dict[str, Any]) -> int:
    """Occurrences an event object stands for, in either API's field names (spec §5)."""
    series = event.get("series")
    if isinstance(series, dict) and isinstance(series.get("count"), int):
        return int(series["count"])
    for key in ("count", "deprecatedCount"):
        value = event.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 1


@dataclass(slots=True)
class EventEntry:
    """One event object (one uid) and the occurrences last written to it."""

    uid: str
    namespace: str
    name: str
    reason: str
    type: str
    involved_kind: str
    involved_name: str
    involved_uid: str
    api: str
    """"core/v1" or "events.k8s.io/v1": the API the recorder wrote through."""
    occurrences: int
    writes: int
    """API writes (POST + PATCH) that touched this uid."""


def _involved(event: dict[str, Any]) -> dict[str, Any]:
    ref = event.get("involvedObject") or event.get("regarding") or {}
    return ref if isinstance(ref, dict) else {}


class EventLedger:
    """Per event uid, the occurrences written to the API. Thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[str, EventEntry] = {}
        self._lock = threading.Lock()

    def record(self, written: dict[str, Any], api: str) -> None:
        """Note the server's answer to one event POST or PATCH."""
        meta = written.get("metadata", {})
        uid = str(meta.get("uid", ""))
        if not uid:
            raise ValueError("event written without metadata.uid")
        count = occurrences(written)
        ref = _involved(written)
        with self._lock:
            entry = self._entries.get(uid)
            if entry is None:
                self._entries[uid] = EventEntry(
                    uid=uid,
                    namespace=str(meta.get("namespace", "")),
                    name=str(meta.get("name", "")),
                    reason=str(written.get("reason", "")),
                    type=str(written.get("type", "")),
                    involved_kind=str(ref.get("kind", "")),
                    involved_name=str(ref.get("name", "")),
                    involved_uid=str(ref.get("uid", "")),
                    api=api,
                    occurrences=count,
                    writes=1,
                )
            else:
                # A late answer must never lower the truth (counts only grow per uid).
                entry.occurrences = max(entry.occurrences, count)
                entry.writes += 1

    def per_uid(self) -> dict[str, int]:
        """Event uid → occurrences written."""
        with self._lock:
            return {uid: e.occurrences for uid, e in self._entries.items()}

    def entries(self) -> list[EventEntry]:
        """Copies of every entry."""
        with self._lock:
            return [EventEntry(**asdict(e)) for e in self._entries.values()]

    def get(self, uid: str) -> EventEntry | None:
        """A copy of one uid's entry, if written."""
        with self._lock:
            entry = self._entries.get(uid)
            return EventEntry(**asdict(entry)) if entry else None

    def total(self) -> int:
        """All occurrences written, over every uid."""
        with self._lock:
            return sum(e.occurrences for e in self._entries.values())

    def writes(self) -> int:
        """All event API writes (POST + PATCH) that succeeded."""
        with self._lock:
            return sum(e.writes for e in self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def by_reason(self) -> dict[str, int]:
        """Reason → occurrences."""
        counts: Counter[str] = Counter()
        with self._lock:
            for e in self._entries.values():
                counts[e.reason] += e.occurrences
        return dict(counts)

    def digest(self) -> str:
        """A digest of the ledger without server-assigned uids, equal for equal seeds."""
        with self._lock:
            rows = sorted(
                (e.namespace, e.name, e.reason, e.type, e.involved_kind, e.involved_name, e.api,
                 e.occurrences, e.writes)
                for e in self._entries.values()
            )
        return hashlib.sha256(orjson.dumps(rows)).hexdigest()

    def to_json(self) -> bytes:
        """The entries as a JSON array (``from_json`` reads it back)."""
        with self._lock:
            return orjson.dumps([asdict(e) for e in self._entries.values()])

    @classmethod
    def from_json(cls, data: bytes | str) -> EventLedger:
        """A ledger from ``to_json`` output."""
        ledger = cls()
        for row in orjson.loads(data):
            entry = EventEntry(**row)
            ledger._entries[entry.uid] = entry
        return ledger

    def summary(self, top: int = 10) -> str:
        """A few lines for a human: totals, the API split and the most frequent reasons."""
        entries = self.entries()
        apis = Counter(e.api for e in entries)
        reasons = self.by_reason()
        lines = [
            f"events: {len(entries)} objects, {sum(e.occurrences for e in entries)} occurrences, "
            f"{sum(e.writes for e in entries)} writes",
            "by API: " + ", ".join(f"{api}={n}" for api, n in sorted(apis.items())),
            "top reasons: " + ", ".join(
                f"{reason}={n}" for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
            ),
        ]
        return "\n".join(lines)
