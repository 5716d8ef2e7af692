"""Kubernetes access: slim decoded pods vs the official client's models (and its informer).

Run: ``.venv/bin/python -m bench.bench_kube [pods]`` (default 20,000 pods).

Measures, for realistic ~4.7 KB pods (bench/kube_pods.py):
1. decode time per pod: orjson + slim ``PodInfo`` into an ``ObjectStore`` (our hot path), vs the
   official client's ``ApiClient.deserialize(..., "V1PodList")`` (its list/informer path);
2. resident memory per cached pod (tracemalloc, after the raw JSON is freed): slim store vs
   ``V1Pod`` models (the baseline runs on a 2,000-pod sample to keep memory sane; per-pod);
3. time to sync N pods from the simulated API server with our Reflector (paged list → SYNCED),
   vs the official ``SharedInformer`` filling its cache from the same server (2,000-pod sample).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import multiprocessing
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.kube_pods import realistic_pod
from kubestream.kube.client import decode_json
from kubestream.kube.objects import Decoders, PodInfo
from kubestream.kube.reflector import EventType, ReflectorEvent
from kubestream.kube.store import ObjectStore
from kubestream.util.gcpause import gc_paused

PAGE = 500
BASELINE_SAMPLE = 2_000


def _pages(pods: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "99999"},
                          "items": pods[i:i + PAGE]}) for i in range(0, len(pods), PAGE)]


def _slim_load(pages: list[bytes]) -> ObjectStore[PodInfo]:
    decode = Decoders().pod
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=600)
    for page in pages:
        # The reflector's path: decode_json (GC paused for big bodies), slim the page at once.
        items = decode_json(page)["items"]
        with gc_paused():
            objects = [obj for raw in items if (obj := decode(raw)) is not None]
        del items
        for obj in objects:
            store.apply(ReflectorEvent(EventType.LISTED, obj, 99999))
    store.apply(ReflectorEvent(EventType.SYNCED, None, 99999))
    return store


def _model_load(pages: list[bytes]) -> list[Any]:
    from kubernetes.client import ApiClient

    api = ApiClient()
    items: list[Any] = []
    for page in pages:
        items.extend(api.deserialize(page.decode(), "V1PodList", "application/json").items)
    return items


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _traced_bytes(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated by ``fn``'s result once its temporaries are gone."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    out = fn()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, out


def offline(n: int) -> dict[str, float]:
    pods = [realistic_pod(i) for i in range(n)]
    avg_json = sum(len(orjson.dumps(p)) for p in pods[:1000]) / min(n, 1000)
    pages = _pages(pods)
    sample_pages = _pages(pods[:BASELINE_SAMPLE])
    del pods
    slim_s, store = _timed(lambda: _slim_load(pages))
    del store
    slim_bytes, store = _traced_bytes(lambda: _slim_load(pages))
    assert len(store) == n
    del store
    model_s, models = _timed(lambda: _model_load(sample_pages))
    del models
    model_bytes, models = _traced_bytes(lambda: _model_load(sample_pages))
    sample = len(models)
    del models
    return {
        "pods": n, "json_bytes_per_pod": avg_json,
        "slim_us_per_pod": slim_s / n * 1e6, "slim_bytes_per_pod": slim_bytes / n,
        "model_us_per_pod": model_s / sample * 1e6, "model_bytes_per_pod": model_bytes / sample,
    }


# -- sync from the simulator ---------------------------------------------------------------------


def _sim_available() -> bool:
    try:
        import kubestream.sim.testing  # noqa: F401
    except ImportError:
        return False
    return True


def _fill(server: Any, n: int) -> None:
    namespaces = {realistic_pod(i)["metadata"]["namespace"] for i in range(min(n, 5000))}
    for ns in sorted(namespaces):
        server.cluster.create("namespaces", {"metadata": {"name": ns}})
    for i in range(n):
        server.cluster.create("pods", realistic_pod(i))


async def _sync_ours(kubeconfig: Path) -> dict[str, float]:
    from kubestream.config.settings import KubeSettings
    from kubestream.kube.client import KubeClient
    from kubestream.kube.reflector import Reflector, ResourceRef
    from kubestream.obs.metrics import Metrics

    settings = KubeSettings(kubeconfig=str(kubeconfig))
    metrics = Metrics()
    client = await KubeClient.create(settings, metrics=metrics)
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=600)
    reflector = Reflector(client, ResourceRef("", "v1", "pods"), Decoders().pod, store.handle, settings=settings)
    t0 = time.perf_counter()
    task = asyncio.create_task(reflector.run())
    await reflector.synced.wait()
    elapsed = time.perf_counter() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    return {"ours_sync_s": elapsed, "ours_cached": len(store),
            "ours_list_requests": metrics.api_requests.labels(verb="list", code="200")._value.get()}


def _sync_informer(kubeconfig: Path, n: int) -> dict[str, float]:
    """The official SharedInformer filling its cache (threaded, sync client, unpaged list)."""
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.informer.informer import SharedInformer

    api = k8s_config.new_client_from_config(config_file=str(kubeconfig))
    informer = SharedInformer(k8s_client.CoreV1Api(api).list_pod_for_all_namespaces)
    done = threading.Event()
    informer.add_event_handler("ADDED", lambda _obj: done.set() if len(informer.cache.list_keys()) >= n else None)
    t0 = time.perf_counter()
    informer.start()
    done.wait(timeout=600)
    elapsed = time.perf_counter() - t0
    cached = len(informer.cache.list_keys())
    # Its watch thread blocks until the server ends the stream; do not join it, and silence the
    # connection errors it logs once the simulator is gone.
    logging.getLogger("kubernetes.informer").setLevel(logging.CRITICAL)
    informer._stop_event.set()
    return {"informer_sync_s": elapsed, "informer_cached": cached}


def _serve_filled(n: int, kubeconfig: str, ready: Any, stop: Any) -> None:
    """Child process: a simulator holding ``n`` pods, so the API server has its own core and GIL
    (as a real one would) instead of competing with the client being measured."""
    from kubestream.sim.testing import running_sim

    with running_sim() as server:
        _fill(server, n)
        server.write_kubeconfig(kubeconfig)
        ready.set()
        stop.wait()


def _with_sim(n: int, measure: Callable[[Path], dict[str, float]]) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        child = ctx.Process(target=_serve_filled, args=(n, str(kubeconfig), ready, stop), daemon=True)
        child.start()
        try:
            if not ready.wait(timeout=600):
                raise RuntimeError("simulator did not start")
            return measure(kubeconfig)
        finally:
            stop.set()
            child.join(timeout=30)


def sync_from_sim(n: int) -> dict[str, float]:
    out = _with_sim(n, lambda kc: asyncio.run(_sync_ours(kc)))
    sample = min(n, BASELINE_SAMPLE)
    out["ours_sample_sync_s"] = _with_sim(sample, lambda kc: asyncio.run(_sync_ours(kc)))["ours_sync_s"]
    out.update(_with_sim(sample, lambda kc: _sync_informer(kc, sample)))
    out["sample"] = sample
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    r = offline(n)
    print(f"pods: {n:,}  (avg JSON {r['json_bytes_per_pod']:.0f} B/pod; baseline sample {BASELINE_SAMPLE:,})")
    print(f"decode   slim PodInfo+store : {r['slim_us_per_pod']:7.1f} us/pod")
    print(f"decode   official V1Pod     : {r['model_us_per_pod']:7.1f} us/pod   "
          f"ratio {r['model_us_per_pod'] / r['slim_us_per_pod']:.1f}x slower")
    print(f"memory   slim PodInfo+store : {r['slim_bytes_per_pod']:7.0f} B/pod   (target <= 4096)")
    print(f"memory   official V1Pod     : {r['model_bytes_per_pod']:7.0f} B/pod   "
          f"ratio {r['model_bytes_per_pod'] / r['slim_bytes_per_pod']:.1f}x larger")
    if not _sim_available():
        print("sync from simulator: skipped (kubestream.sim.testing not available)")
        return
    s = sync_from_sim(n)
    print(f"sync     Reflector (list)   : {s['ours_sync_s']:7.2f} s for {int(s['ours_cached']):,} pods "
          f"({int(s['ours_list_requests'])} list requests)   (target < 3 s)")
    print(f"sync     {int(s['sample']):,}-pod sample   : Reflector {s['ours_sample_sync_s']:.2f} s, official "
          f"SharedInformer {s['informer_sync_s']:.2f} s ({int(s['informer_cached']):,} cached)   "
          f"ratio {s['informer_sync_s'] / s['ours_sample_sync_s']:.1f}x slower")
    print(json.dumps({**r, **s}))


if __name__ == "__main__":
    main()
