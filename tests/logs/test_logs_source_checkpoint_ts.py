"""The logs checkpoint holds the file offset and the parser's last valid timestamp there; a line
without a valid time of its own gets the empty timestamp (the encoders stamp ingestion time and
``timestamp_invalid``), never a neighbour's and never 1970, and a restart just before it gives the
same records as an uninterrupted read (issue 9 item 8 replaced the borrowed timestamp)."""

from __future__ import annotations

from pathlib import Path

from kubestream.config.settings import LogsSettings
from kubestream.sources.logs import checkpoint
from kubestream.sources.logs.formats import LogFormat
from kubestream.sources.logs.parser import FileParser
from kubestream.state.store import StateStore

DATA = (b"2026-01-01T00:00:00.0Z stdout F first\n"
        b"2026-01-01T00:00:01.1Z stdout F second\n"
        b"not a cri line\n"
        b"2026-01-01T00:00:02.2Z stdout F third\n")
CUT = DATA.index(b"not a cri line")


def test_restart_gives_a_line_without_time_the_empty_timestamp_as_a_run_through_does(tmp_path: Path) -> None:
    whole = FileParser(LogFormat.CRI, LogsSettings()).feed(DATA, 0)
    state = StateStore(tmp_path / "state.db")
    state.register_schema(checkpoint.SCHEMA)
    head = FileParser(LogFormat.CRI, LogsSettings()).feed(DATA[:CUT], 0)
    assert head.resume_offset == CUT and head.resume_timestamp == b"2026-01-01T00:00:01.1Z"
    with state.transaction() as conn:
        checkpoint.FileCheckpoint(fingerprint="fp", offset=head.resume_offset, path="/x/0.log", dev=1, ino=2,
                                  pod_uid="u", container="c", last_line=1,
                                  last_timestamp=head.resume_timestamp).apply(conn)
    saved = checkpoint.load(state)
    resumed = FileParser(LogFormat.CRI, LogsSettings(), last_timestamp=saved.timestamps["fp"]).feed(
        DATA[saved.offsets["fp"]:], saved.offsets["fp"])
    assert head.timestamps + resumed.timestamps == whole.timestamps
    assert resumed.timestamps[0] == b""  # not the epoch, not borrowed
    assert whole.timestamps == [b"2026-01-01T00:00:00.0Z", b"2026-01-01T00:00:01.1Z", b"", b"2026-01-01T00:00:02.2Z"]
    state.close()
