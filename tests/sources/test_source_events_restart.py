"""Crashes and restarts: nothing exported twice, nothing lost, pruning never re-exports."""

from __future__ import annotations

from source_events_support import Harness, core_event

from kubestream.kube.reflector import EventType


async def test_restart_from_committed_state_exports_nothing_twice_and_catches_up(harness: Harness) -> None:
    await harness.listing([core_event("a", 10, count=2)], list_rv=11)
    await harness.feed(EventType.MODIFIED, core_event("a", 12, count=3))
    await harness.feed(EventType.ADDED, core_event("b", 13, count=1))
    harness.sink.commit()

    assert harness.restart() == []
    assert harness.source.resume_rv == 13
    # The resumed watch replays nothing new for "a" and "b"; a relist (410) neither.
    await harness.feed(EventType.MODIFIED, core_event("b", 13, count=1))
    await harness.listing([core_event("a", 12, count=3), core_event("b", 13, count=1)], list_rv=14)
    assert harness.sink.all() == []
    # Increments since the crash are caught up exactly.
    await harness.feed(EventType.MODIFIED, core_event("a", 15, count=5))
    assert harness.sink.deltas() == [("a", 2)]


async def test_uncommitted_increments_are_exported_again_after_a_crash(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("a", 10, count=1))
    harness.sink.commit()
    await harness.feed(EventType.MODIFIED, core_event("a", 11, count=2))
    await harness.feed(EventType.MODIFIED, core_event("a", 12, count=4))

    lost = harness.restart()
    assert [r.data["event"]["count_delta"] for r in lost] == [1, 2]
    assert harness.source.resume_rv == 10
    # The watch resumes after RV 10 and replays what the lost batch held.
    await harness.feed(EventType.MODIFIED, core_event("a", 11, count=2))
    await harness.feed(EventType.MODIFIED, core_event("a", 12, count=4))
    assert harness.sink.deltas() == [("a", 1), ("a", 2)]


async def test_list_records_do_not_advance_the_watch_position(harness: Harness) -> None:
    # List items come in name order, not RV order: committing one must not let a restart skip
    # the others. Only the completed list (or a later watch record) moves the position.
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("x", 6))
    harness.sink.commit()
    await harness.feed(EventType.LISTED, core_event("a", 30), 40)
    harness.sink.commit()
    await harness.feed(EventType.LISTED, core_event("b", 20), 40)

    harness.restart()
    assert harness.source.resume_rv == 6


async def test_bookmark_moves_the_position_only_when_the_pipeline_is_idle(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("a", 10))
    await harness.feed(EventType.BOOKMARK, None, 50)
    assert harness.source.resume_rv is None and harness.restart() != []
    assert harness.source.resume_rv == 5

    await harness.feed(EventType.ADDED, core_event("a", 10))
    harness.sink.commit()
    await harness.feed(EventType.BOOKMARK, None, 60)
    harness.restart()
    assert harness.source.resume_rv == 60


async def test_deleted_rows_are_pruned_only_once_the_watch_position_passed_them(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("a", 10, count=1))
    await harness.feed(EventType.MODIFIED, core_event("a", 11, count=2))
    harness.sink.commit()
    # A record in flight: the pipeline is not idle, so the deletion cannot be committed directly.
    await harness.feed(EventType.ADDED, core_event("w", 19))
    await harness.feed(EventType.DELETED, core_event("a", 20, count=2))
    await harness.feed(EventType.ADDED, core_event("b", 21))
    # The deletion rides on b's checkpoint: not committed yet, so the row must stay.
    assert harness.rows()["a"] == (2, None)

    harness.restart()
    # Crash: the watch resumes after RV 11, replays a's deletion; a is never counted again.
    await harness.feed(EventType.MODIFIED, core_event("a", 11, count=2))
    await harness.feed(EventType.DELETED, core_event("a", 20, count=2))
    await harness.feed(EventType.ADDED, core_event("b", 21))
    assert harness.sink.deltas() == [("b", 1)]
    harness.sink.commit()
    assert "a" not in harness.rows()

    # And after the prune a further restart resumes past the deletion: nothing comes back.
    harness.restart()
    assert harness.source.resume_rv == 21


async def test_a_row_marked_deleted_survives_until_the_position_reaches_its_deletion(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("a", 10, count=3))
    harness.sink.commit()
    await harness.feed(EventType.ADDED, core_event("b", 12))
    await harness.feed(EventType.DELETED, core_event("a", 13, count=3))
    await harness.feed(EventType.ADDED, core_event("c", 14))
    harness.sink.commit()
    assert "a" not in harness.rows()

    # Same, but the deletion is only known from a relist that no longer lists the event.
    await harness.feed(EventType.ADDED, core_event("d", 15, count=2))
    harness.sink.commit()
    await harness.listing([core_event("b", 12), core_event("c", 14)], list_rv=40)
    # The pipeline is idle: the relist RV is committed directly and "d" is pruned with it.
    assert "d" not in harness.rows()
    harness.restart()
    assert harness.source.resume_rv == 40


async def test_relist_deletion_waits_for_records_in_flight(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("d", 15, count=2))
    harness.sink.commit()
    await harness.listing([core_event("e", 30)], list_rv=40)  # exports e: pipeline not idle
    assert harness.rows()["d"] == (2, None)

    harness.restart()
    # The crash lost e's record and the relist's verdict on d: the next relist redoes both.
    await harness.listing([core_event("e", 30)], list_rv=41)
    assert harness.sink.deltas() == [("e", 1)]
    harness.sink.commit()
    await harness.feed(EventType.BOOKMARK, None, 45)
    assert set(harness.rows()) == {"e"}


async def test_a_deletion_committed_with_list_records_does_not_prune_before_the_position(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("x", 10, count=3))
    harness.sink.commit()
    # A record in flight: the pipeline is not idle, so the deletion cannot be committed directly.
    await harness.feed(EventType.ADDED, core_event("w", 17))
    # A change that is not an occurrence (same count) exports nothing and so moves nothing.
    await harness.feed(EventType.MODIFIED, core_event("x", 18, count=3))
    await harness.feed(EventType.DELETED, core_event("x", 20, count=3))
    # A 410 relist: its first record carries x's deletion but, being a list record, no position.
    await harness.feed(EventType.LISTED, core_event("z", 25), 30)
    harness.sink.commit()
    assert harness.rows()["x"] == (3, 20)

    harness.restart()
    assert harness.source.resume_rv == 17
    # The resumed watch replays x's non-occurrence change: x must still be known, not new.
    await harness.feed(EventType.MODIFIED, core_event("x", 18, count=3))
    await harness.feed(EventType.DELETED, core_event("x", 20, count=3))
    await harness.feed(EventType.MODIFIED, core_event("z", 31, count=2))
    assert harness.sink.deltas() == [("z", 1)]
    harness.sink.commit()
    assert set(harness.rows()) == {"w", "z"}


async def test_a_lagging_list_does_not_declare_newer_events_gone(harness: Harness) -> None:
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("n", 50, count=2))
    harness.sink.commit()
    # A list served from a lagging cache (resourceVersion=0) at RV 40 cannot know "n" (RV 50).
    await harness.listing([], list_rv=40)
    assert harness.rows()["n"] == (2, None)
    await harness.feed(EventType.MODIFIED, core_event("n", 51, count=3))
    assert harness.sink.deltas() == [("n", 2), ("n", 1)]


async def test_a_deletion_on_a_quiet_stream_is_committed_at_once(harness: Harness) -> None:
    # Events watches get no bookmarks: with no later record to carry it, an expired event's
    # deletion must still reach the table, or its row would stay as a live one for ever.
    await harness.listing([], list_rv=5)
    await harness.feed(EventType.ADDED, core_event("q", 10, count=2))
    harness.sink.commit()
    await harness.feed(EventType.DELETED, core_event("q", 30, count=2))
    assert "q" not in harness.rows()
    harness.restart()
    assert harness.source.resume_rv == 30
