"""Simulator throughput: a 10,000-pod LIST, one watch's event rate, 100 concurrent watchers.

Run with ``.venv/bin/python -m bench.bench_sim``. Targets: list < 1 s, >= 5,000 events/s on one
watch, 100 watchers all served.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson

from kubestream.sim.config import SimConfig
from kubestream.sim.server import SimServer


def _pod(i: int) -> dict[str, object]:
    return {"metadata": {"name": f"pod-{i:05d}", "namespace": "default", "labels": {"app": f"a{i % 50}"}},
            "spec": {"nodeName": f"node-{i % 20}", "containers": [{"name": "app", "image": "registry/app:1.0"}]}}


def bench_list(server: SimServer, n: int = 10_000) -> float:
    started = time.perf_counter()
    for i in range(n):
        server.cluster.create("pods", _pod(i))
    print(f"in-process creates: {n / (time.perf_counter() - started):,.0f} writes/s")

    async def run() -> float:
        async with aiohttp.ClientSession() as session:
            t0 = time.perf_counter()
            async with session.get(server.url + "/api/v1/pods") as resp:
                body = orjson.loads(await resp.read())
            elapsed = time.perf_counter() - t0
            assert len(body["items"]) == n
            return elapsed

    elapsed = asyncio.run(run())
    print(f"LIST {n} pods over HTTP: {elapsed * 1000:.0f} ms (target < 1000 ms)")
    return elapsed


async def _watch_count(url: str, want: int, session: aiohttp.ClientSession) -> int:
    got = 0
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=120)) as resp:
        async for _line in resp.content:
            got += 1
            if got >= want:
                break
    return got


def bench_one_watch(server: SimServer, events: int = 20_000) -> float:
    rv = server.cluster.resource_version

    async def run() -> float:
        async with aiohttp.ClientSession() as session:
            url = f"{server.url}/api/v1/events?watch=1&resourceVersion={rv}"
            task = asyncio.create_task(_watch_count(url, events, session))
            await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            await asyncio.to_thread(_write_events, server, events)
            got = await task
            return got / (time.perf_counter() - t0)

    rate = asyncio.run(run())
    print(f"one watch: {rate:,.0f} events/s delivered (writer included; target >= 5,000)")
    return rate


def _write_events(server: SimServer, n: int) -> None:
    for i in range(n):
        server.cluster.create("events", {"metadata": {"name": f"ev-{i}", "namespace": "default"},
                                         "involvedObject": {"kind": "Pod", "name": f"pod-{i % 100}"},
                                         "reason": "Pulled", "message": "pulled image", "type": "Normal"})


def bench_many_watchers(server: SimServer, watchers: int = 100, events: int = 500) -> float:
    rv = server.cluster.resource_version

    async def run() -> tuple[int, float]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            url = f"{server.url}/apis/coordination.k8s.io/v1/namespaces/default/leases?watch=1&resourceVersion={rv}"
            tasks = [asyncio.create_task(_watch_count(url, events, session)) for _ in range(watchers)]
            # Polls a counter owned by the server thread; there is no event to await across threads.
            while server.requests.open_watches("leases.coordination.k8s.io") < watchers:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            await asyncio.to_thread(_write_leases, server, events)
            counts = await asyncio.gather(*tasks)
            return sum(1 for c in counts if c == events), time.perf_counter() - t0

    served, elapsed = asyncio.run(run())
    print(f"{watchers} concurrent watchers: {served}/{watchers} received all {events} events in {elapsed:.2f} s "
          f"({served * events / elapsed:,.0f} deliveries/s)")
    return served


def _write_leases(server: SimServer, n: int) -> None:
    for i in range(n):
        server.cluster.create("leases", {"metadata": {"name": f"l-{i}", "namespace": "default"}},
                              group="coordination.k8s.io")


def main() -> None:
    """Run all three and print the figures."""
    with SimServer(SimConfig()) as server:
        list_s = bench_list(server)
        rate = bench_one_watch(server)
        served = bench_many_watchers(server)
    ok = list_s < 1.0 and rate >= 5000 and served == 100
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
