"""``query`` and ``timeline`` on an Azure Blob archive (Azurite), by URL and by ``--config``: the
same rows as the directory the objects came from, the window pruned as on the other stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import obstore
import pytest
import yaml
from bench.gen_archive import Ledger, write_events, write_logs
from tests.query.conftest import run_cli
from tests.sinks._azurite import AzuriteServer, azurite_executable

from kubestream.sinks.objectstore import EMULATOR_ACCOUNT, EMULATOR_ACCOUNT_KEY

START = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
WINDOW = ("--since", "2024-05-01T11:10:00Z", "--until", "2024-05-01T12:00:00Z")
EVENTS_SQL = "select event_uid, time, reason from events order by event_uid"


@pytest.fixture(scope="module")
def azurite() -> Iterator[AzuriteServer]:
    server = AzuriteServer(azurite_executable())
    yield server
    server.stop()


def test_azure_archive_reads_like_the_directory(azurite: AzuriteServer, tmp_path: Path) -> None:
    local = tmp_path / "archive"
    ledger = Ledger()
    write_events(local, ledger, start=START, hours=3, objects_per_hour=4, records_per_object=5)
    write_logs(local, ledger, start=START, hours=3, objects_per_hour=4, lines_per_object=8)
    container = azurite.create_container()
    store = azurite.store(container)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        obstore.put(store, f"prod/{path.relative_to(local).as_posix()}", path.read_bytes())
    expected = run_cli("query", "-a", str(local), *WINDOW, "-o", "csv", EVENTS_SQL)
    assert expected.returncode == 0 and len(expected.stdout.splitlines()) == 1 + 3 * 5, expected.stderr

    connection = (f"DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};AccountKey={EMULATOR_ACCOUNT_KEY};"
                  f"BlobEndpoint={azurite.endpoint};")
    env = {"AZURE_STORAGE_CONNECTION_STRING": connection, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    by_url = run_cli("query", "-a", f"az://{container}/prod", "--endpoint", azurite.endpoint, *WINDOW, "--explain",
                     "-o", "csv", EVENTS_SQL, env=env)
    assert by_url.returncode == 0, by_url.stderr
    assert by_url.stdout == expected.stdout
    assert "events: 1 prefixes listed, 4 objects listed, 4 read" in by_url.stderr, by_url.stderr

    config = tmp_path / "kubestream.yaml"
    config.write_text(yaml.safe_dump({"sink": {"type": "azure", "prefix": "prod", "azure": {
        "container": container, "use_emulator": True, "endpoint_url": azurite.endpoint}}}))
    timeline = run_cli("timeline", "deploy/checkout", "-n", "shop", "--config", str(config), *WINDOW, "-o", "csv",
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    local_timeline = run_cli("timeline", "deploy/checkout", "-n", "shop", "-a", str(local), *WINDOW, "-o", "csv")
    assert timeline.returncode == 0, timeline.stderr
    assert timeline.stdout == local_timeline.stdout and len(timeline.stdout.splitlines()) == 1 + 3 * 8
