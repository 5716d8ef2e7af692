"""Reusable pytest fixture factories for any test folder: ``from kubestream.sim.testing import
sim_server_fixture`` (tests/sim/conftest.py shows the use)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import urllib3

from kubestream.sim.config import SimConfig
from kubestream.sim.server import SimServer

# Test-friendly defaults: short grace and fast bookmarks keep tests quick without changing semantics.
TEST_DEFAULTS: dict[str, Any] = {"pod_grace_s": 0.2, "too_large_rv_wait_s": 0.5}


@contextmanager
def running_sim(**overrides: Any) -> Iterator[SimServer]:
    """A started SimServer on a free 127.0.0.1 port, stopped afterwards."""
    server = SimServer(SimConfig(**{**TEST_DEFAULTS, **overrides}))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def kubeconfig_for(server: SimServer, directory: Path, token: str | None = None) -> Path:
    """Write a kubeconfig for ``server`` into ``directory``."""
    return server.write_kubeconfig(directory / "kubeconfig", token=token)



class HttpReply:
    """A raw HTTP reply: status, headers and the body (parsed as JSON when possible)."""

    def __init__(self, status: int, headers: dict[str, str], raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            self.json = None


def http(server: SimServer, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
         token: str | None = None, timeout: float = 10.0) -> HttpReply:
    """One request to ``server`` with urllib3 (dict/list bodies are sent as JSON)."""
    hdrs = {"Accept": "application/json", **(headers or {})}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    data: bytes | None
    if body is None or isinstance(body, bytes):
        data = body
    else:
        data = orjson.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    ca = str(server.ca_cert_path) if server.ca_cert_path else None
    pool = urllib3.PoolManager(ca_certs=ca) if ca else urllib3.PoolManager()
    resp = pool.request(method, server.url + path, body=data, headers=hdrs, timeout=timeout, retries=False)
    return HttpReply(resp.status, dict(resp.headers), resp.data)


class WatchReader:
    """Reads a watch stream line by line (urllib3, no preloading)."""

    def __init__(self, server: SimServer, path: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        ca = str(server.ca_cert_path) if server.ca_cert_path else None
        pool = urllib3.PoolManager(ca_certs=ca) if ca else urllib3.PoolManager()
        self.response = pool.request("GET", server.url + path, headers=headers, preload_content=False,
                                     timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
        self.status = self.response.status
        self.headers = dict(self.response.headers)
        self._buffer = b""

    def next_line(self) -> bytes | None:
        """The next raw line including its newline, or None at a clean end of stream."""
        while b"\n" not in self._buffer:
            chunk = self.response.read1(65536) if hasattr(self.response, "read1") else self.response.read(1)
            if not chunk:
                rest, self._buffer = self._buffer, b""
                return rest or None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line + b"\n"

    def next_event(self) -> dict[str, Any] | None:
        """The next decoded event, or None at the end of the stream."""
        line = self.next_line()
        return None if line is None else orjson.loads(line)

    def events(self, count: int) -> list[dict[str, Any]]:
        """Exactly ``count`` events (fails if the stream ends first)."""
        out: list[dict[str, Any]] = []
        for _ in range(count):
            event = self.next_event()
            if event is None:
                raise AssertionError(f"stream ended after {len(out)} events: {out}")
            out.append(event)
        return out

    def close(self) -> None:
        """Drop the connection."""
        self.response.release_conn()
        self.response.close()
