"""Debian's chromium, headless, driven over the DevTools protocol (aiohttp's websocket client):
open a page, collect console errors, uncaught exceptions and network requests, evaluate scripts.

``make setup`` installs chromium (apt-get); missing, the tests fail, never skip: CI must run them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-extensions", "--remote-debugging-port=0")


def chromium_executable() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no chromium: run `make setup` (apt-get install chromium)", pytrace=False)


@dataclass
class PageReport:
    """What happened while a page loaded, and the values of the probes evaluated on it."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


class _Session:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, report: PageReport) -> None:
        self.ws, self.report = ws, report
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.loaded = asyncio.Event()

    async def pump(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
                continue
            self._event(data.get("method", ""), data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.report.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            self.report.exceptions.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.report.console_errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            self.report.requests.append(params["request"]["url"])
        elif method == "Page.loadEventFired":
            self.loaded.set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"probe failed: {result['exceptionDetails']}")
        return result["result"].get("value")


async def _inspect(port: int, url: str, probes: dict[str, str]) -> PageReport:
    report = PageReport()
    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as answer:
            target = await answer.json(content_type=None)
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            session = _Session(ws, report)
            pump = asyncio.create_task(session.pump())
            for domain in ("Runtime", "Log", "Network", "Page"):
                await session.call(f"{domain}.enable")
            await session.call("Page.navigate", url=url)
            await asyncio.wait_for(session.loaded.wait(), 30)
            await asyncio.sleep(0.3)  # late console messages and requests of the page's own script
            for name, expression in probes.items():
                report.values[name] = await session.evaluate(expression)
            pump.cancel()
    return report


def inspect_page(page: Path, probes: dict[str, str]) -> PageReport:
    """Load ``page`` in headless chromium; the report of errors, requests and probe values."""
    with tempfile.TemporaryDirectory(prefix="kubestream-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([chromium_executable(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"chromium did not start (exit {proc.poll()})")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            return asyncio.run(_inspect(port, page.resolve().as_uri(), probes))
        finally:
            proc.kill()
            proc.wait(timeout=10)
