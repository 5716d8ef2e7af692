"""Object keys: content range, date/hour partition in UTC, optional prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from kubestream.pipeline.naming import batch_key, batch_time, sort_key_time


def test_key_layout_with_prefix() -> None:
    key = batch_key(prefix="prod/eu-1/", stream="events", stream_uid="c1", extension="ndjson.gz",
                    timestamp=datetime(2024, 3, 9, 7, 59, 59, tzinfo=UTC), first_position=10, last_position=42)
    assert key == "prod/eu-1/events/dt=2024-03-09/hour=07/c1-10-42.ndjson.gz"


def test_empty_prefix_has_no_leading_slash() -> None:
    key = batch_key(prefix="", stream="logs", stream_uid="c1", extension="pb",
                    timestamp=datetime(2024, 3, 9, 0, 0, tzinfo=UTC), first_position=1, last_position=1)
    assert key == "logs/dt=2024-03-09/hour=00/c1-1-1.pb"


def test_partition_is_the_utc_time_of_the_first_record() -> None:
    plus_two = timezone(timedelta(hours=2))
    key = batch_key(prefix="p", stream="events", stream_uid="u", extension="ndjson",
                    timestamp=datetime(2024, 1, 1, 1, 30, tzinfo=plus_two), first_position=5, last_position=9)
    assert "/dt=2023-12-31/hour=23/" in key


def test_sort_keys_convert_to_utc_times() -> None:
    assert sort_key_time("2024-05-01T23:59:58.123456789Z") == datetime(2024, 5, 1, 23, 59, 58, 123456, tzinfo=UTC)
    assert sort_key_time(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert sort_key_time("not a time") is None
    assert sort_key_time(True) is None
    assert batch_time(None).tzinfo is UTC  # falls back to now; stored with the batch
