"""Where the HA events collector's export state lives: in the archive itself.

Replicas of the events collector run on different nodes and share nothing but the API server and
the sink, so the sink is the one place any replica can read. A replica that takes the lease
discards its local state and spool (they may describe a leadership it lost) and rebuilds, from
the archive objects of the last ``rebuild_window_s``, the highest occurrence count exported per
event uid. The events source then relists and exports, per uid, only what exceeds that count.

Why this holds across a crash of the previous leader: an object is either fully in the sink
(atomic rename / single PUT) and counted by the rebuild, or absent and its occurrences are
exported again by the new leader. The dead leader's undelivered spool is never delivered later:
a replica delivers only while it holds the lease, and wipes its spool before exporting again.
See docs/design-ha.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from dataclasses import dataclass

from kubestream.archive.formats import read_records
from kubestream.archive.store import ArchiveStore, FileArchive, read_live
from kubestream.config.settings import Settings, SinkSettings
from kubestream.pipeline.naming import hour_folder, partition_cluster
from kubestream.sinks.base import SinkReader
from kubestream.sinks.file import FileSink
from kubestream.sources.event_state import EventState, Watermark
from kubestream.state.store import StateStore

log = logging.getLogger("kubestream.takeover")

EVENTS_STREAM = "events"
"""The stream the events collector writes (``Pipeline("events", …)`` in agent.runner)."""


@dataclass(frozen=True, slots=True)
class RebuildResult:
    objects: int
    records: int
    events: int
    seconds: float


def hour_prefixes(settings: Settings, now: dt.datetime) -> list[str]:
    """The hour folders of the events stream that may hold objects of the window: the ones this
    agent's batcher writes into (``pipeline.naming``, with the ``cluster=`` level when
    ``cluster.partition`` is on)."""
    start = (now - dt.timedelta(seconds=settings.leader_election.rebuild_window_s)).astimezone(dt.UTC)
    hour = start.replace(minute=0, second=0, microsecond=0)
    cluster = partition_cluster(settings.cluster)
    prefixes = []
    while hour <= now:
        prefixes.append(hour_folder(_archive(settings).prefix, EVENTS_STREAM, hour, cluster))
        hour += dt.timedelta(hours=1)
    return prefixes


def wipe_local_state(settings: Settings) -> None:
    """Forget what this replica knew: the archive is the truth after a takeover."""
    shutil.rmtree(settings.spool_dir, ignore_errors=True)
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (settings.state.dir / name).unlink(missing_ok=True)


async def rebuild_from_archive(settings: Settings, reader: SinkReader, state: StateStore) -> RebuildResult:
    """Seed the events source's state with what the archive already holds.

    Compacted partitions are read like a query reads them (``archive.catalog.live_keys``): the
    compacted files instead of the sources they replace, never both, even while a compactor is
    between writing them and deleting the sources.
    """
    started = time.monotonic()
    # The file sink's own listing walks folders in hash order; the archive's lists a folder's
    # files before its sub-folders, which is what reading beside a compactor needs.
    archive: SinkReader | ArchiveStore = FileArchive(reader) if isinstance(reader, FileSink) else reader
    own = f"{_archive(settings).stream_uid}-"
    marks: dict[str, Watermark] = {}
    objects = records = 0
    for prefix in hour_prefixes(settings, dt.datetime.now(dt.UTC)):
        # Other streams may share the prefix; compacted files are named after their stream too.
        for key, data in await read_live(archive, prefix, keep=lambda k: k.rsplit("/", 1)[-1].startswith(own)):
            objects += 1
            for record in read_records(key, data, protobuf_message=settings.encoding.protobuf_message):
                records += _absorb(record, marks)
    # An empty archive is a genuine first start: the configured `since` policy applies.
    EventState(state).write(baselines=marks, initialized=bool(marks))
    result = RebuildResult(objects, records, len(marks), time.monotonic() - started)
    log.info("rebuilt export state from the archive: %d objects, %d records, %d events in %.2f s",
             result.objects, result.records, result.events, result.seconds)
    return result


def _absorb(record: dict[str, object], marks: dict[str, Watermark]) -> int:
    """Raise the watermark of the record's event; 1 if it was an event record, else 0."""
    event = record.get("event")
    if not isinstance(event, dict):
        return 0
    uid, count, rv = event.get("uid"), event.get("count"), event.get("resource_version")
    if not uid or count is None:
        return 0
    mark = marks.get(uid)
    if mark is None:
        marks[uid] = Watermark(int(count), int(rv or 0))
    else:
        mark.occurrences = max(mark.occurrences, int(count))
        mark.rv = max(mark.rv, int(rv or 0))
    return 1


def _archive(settings: Settings) -> SinkSettings:
    """The destination a takeover reads back (``Settings.archive_destination``)."""
    return settings.archive_destination() or settings.sink
