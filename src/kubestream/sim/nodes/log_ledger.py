"""The log ledger of truth: every log line the node log writer wrote, keyed by (pod uid,
container, stream, seq), so tests can compare an archive with it."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import asdict, dataclass

import orjson


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line (one sequence id) the node log writer wrote."""

    pod_uid: str
    container: str
    stream: str
    """"stdout" or "stderr"."""
    seq: int
    namespace: str
    pod: str
    kind: str
    """plain, json, stack, long or invalid_utf8."""
    size: int
    """Bytes of the message, without the CRI/JSON framing."""

    @property
    def key(self) -> tuple[str, str, str, int]:
        """(pod uid, container, stream, seq): what identifies a line in an archive."""
        return (self.pod_uid, self.container, self.stream, self.seq)


class LogLedger:
    """Every log line written, keyed by (pod uid, container, stream, seq). Thread-safe."""

    def __init__(self) -> None:
        self._lines: dict[tuple[str, str, str, int], LogLine] = {}
        self._lock = threading.Lock()

    def record(self, line: LogLine) -> None:
        """Note one written line; a sequence id written twice is a bug and raises ValueError."""
        with self._lock:
            if line.key in self._lines:
                raise ValueError(f"sequence id written twice: {line.key}")
            self._lines[line.key] = line

    def lines(self) -> list[LogLine]:
        """Every line, in writing order."""
        with self._lock:
            return list(self._lines.values())

    def keys(self) -> set[tuple[str, str, str, int]]:
        """The ``LogLine.key`` of every line."""
        with self._lock:
            return set(self._lines)

    def seqs(self, pod_uid: str | None = None, container: str | None = None) -> set[int]:
        """Sequence ids, optionally only those of one pod and/or container."""
        with self._lock:
            return {
                line.seq for line in self._lines.values()
                if (pod_uid is None or line.pod_uid == pod_uid)
                and (container is None or line.container == container)
            }

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    def total_bytes(self) -> int:
        """Bytes of all messages (without framing)."""
        with self._lock:
            return sum(line.size for line in self._lines.values())

    def digest(self) -> str:
        """A digest without pod uids (server-assigned), equal for equal seeds and pods."""
        with self._lock:
            rows = sorted(
                (line.namespace, line.pod, line.container, line.stream, line.seq, line.kind, line.size)
                for line in self._lines.values()
            )
        return hashlib.sha256(orjson.dumps(rows)).hexdigest()

    def to_json(self) -> bytes:
        """The lines as a JSON array (``from_json`` reads it back)."""
        with self._lock:
            return orjson.dumps([asdict(line) for line in self._lines.values()])

    @classmethod
    def from_json(cls, data: bytes | str) -> LogLedger:
        """A ledger from ``to_json`` output."""
        ledger = cls()
        for row in orjson.loads(data):
            ledger.record(LogLine(**row))
        return ledger

    def summary(self) -> str:
        """One line for a human: lines, pods, bytes and the mix of kinds."""
        lines = self.lines()
        kinds = Counter(line.kind for line in lines)
        pods = {line.pod_uid for line in lines}
        return (
            f"log lines: {len(lines)} in {len(pods)} pods, {sum(line.size for line in lines)} bytes; "
            + ", ".join(f"{kind}={n}" for kind, n in sorted(kinds.items()))
        )
