"""ObjectStore: UID keys, delayed deletion, relist diffs, indexes, metrics."""

from __future__ import annotations

from kube_factories import raw_pod

from kubestream.kube.objects import Decoders, PodInfo
from kubestream.kube.reflector import EventType, ReflectorEvent
from kubestream.kube.store import ObjectStore
from kubestream.obs.metrics import Metrics

DECODE = Decoders().pod


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, uid: str, ns: str = "default", rv: int = 1, **kw: object) -> PodInfo:
    decoded = DECODE(raw_pod(name, ns, uid=uid, rv=rv, **kw))  # type: ignore[arg-type]
    assert decoded is not None
    return decoded


def ev(kind: EventType, obj: PodInfo | None, rv: int = 1) -> ReflectorEvent[PodInfo]:
    return ReflectorEvent(kind, obj, rv)


async def test_delayed_deletion_keeps_then_drops() -> None:
    clock = FakeClock()
    metrics = Metrics()
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=60, metrics=metrics, clock=clock)
    p = pod("web-1", "u1")
    await store.handle(ev(EventType.ADDED, p))
    await store.handle(ev(EventType.DELETED, p, 5))
    assert len(store) == 0 and store.retained == 1
    assert store.get("u1") is p and store.is_deleted("u1")
    assert store.get_by_name("default", "web-1") is p
    assert list(store.items()) == []
    assert metrics.cached_objects.labels(kind="Pod")._value.get() == 1
    clock.now += 59
    assert store.get("u1") is p
    clock.now += 2
    assert store.get("u1") is None and store.get_by_name("default", "web-1") is None
    assert not store.is_deleted("u1") and store.retained == 0
    assert metrics.cached_objects.labels(kind="Pod")._value.get() == 0


async def test_name_reuse_with_new_uid_stays_separate() -> None:
    clock = FakeClock()
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=60, clock=clock)
    old = pod("web-0", "old", labels={"gen": "1"})
    new = pod("web-0", "new", labels={"gen": "2"})
    await store.handle(ev(EventType.ADDED, old))
    await store.handle(ev(EventType.DELETED, old))
    assert store.get_by_name("default", "web-0") is old  # only the deleted one is known
    await store.handle(ev(EventType.ADDED, new))
    assert store.get_by_name("default", "web-0") is new  # live wins
    assert store.get("old") is old and store.get("new") is new
    assert store.is_deleted("old") and not store.is_deleted("new")
    clock.now += 61
    assert store.get("old") is None and store.get_by_name("default", "web-0") is new


async def test_synced_retains_objects_missing_from_the_relist() -> None:
    clock = FakeClock()
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=30, clock=clock)
    a, b, c = pod("a", "ua"), pod("b", "ub"), pod("c", "uc")
    for p in (a, b):
        await store.handle(ev(EventType.LISTED, p, 10))
    await store.handle(ev(EventType.SYNCED, None, 10))
    # The watch broke; meanwhile b was deleted and c created. The relist shows a and c.
    await store.handle(ev(EventType.LISTED, a, 20))
    await store.handle(ev(EventType.LISTED, c, 20))
    await store.handle(ev(EventType.SYNCED, None, 20))
    assert {p.uid for p in store.items()} == {"ua", "uc"}
    assert store.is_deleted("ub") and store.get("ub") is b
    clock.now += 31
    assert store.get("ub") is None


async def test_a_broken_off_list_does_not_count() -> None:
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=30)
    a, b = pod("a", "ua"), pod("b", "ub")
    await store.handle(ev(EventType.LISTED, a, 10))
    await store.handle(ev(EventType.LISTED, b, 10))
    await store.handle(ev(EventType.SYNCED, None, 10))
    # A relist at RV 20 saw b and then broke; the retry at RV 30 sees only a (b was deleted).
    await store.handle(ev(EventType.LISTED, b, 20))
    await store.handle(ev(EventType.LISTED, a, 30))
    await store.handle(ev(EventType.SYNCED, None, 30))
    assert [p.uid for p in store.items()] == ["ua"] and store.is_deleted("ub")


async def test_modified_replaces_and_reindexes() -> None:
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=30)
    store.add_index("app", lambda p: [p.labels["app"]] if "app" in p.labels else [])
    await store.handle(ev(EventType.ADDED, pod("a", "ua", labels={"app": "web"})))
    await store.handle(ev(EventType.ADDED, pod("b", "ub", labels={"app": "web"})))
    assert {p.name for p in store.by_index("app", "web")} == {"a", "b"}
    await store.handle(ev(EventType.MODIFIED, pod("a", "ua", labels={"app": "db"})))
    assert [p.name for p in store.by_index("app", "web")] == ["b"]
    assert [p.name for p in store.by_index("app", "db")] == ["a"]
    await store.handle(ev(EventType.DELETED, pod("b", "ub", labels={"app": "web"})))
    assert store.by_index("app", "web") == []


async def test_zero_delay_forgets_at_once_and_unknown_deletes_are_retained() -> None:
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=0)
    p = pod("a", "ua")
    await store.handle(ev(EventType.ADDED, p))
    await store.handle(ev(EventType.DELETED, p))
    assert store.get("ua") is None and "ua" not in store
    kept: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=10)
    await kept.handle(ev(EventType.DELETED, pod("x", "ux")))  # never seen alive
    assert kept.get("ux") is not None and kept.is_deleted("ux")


async def test_expiry_is_lazy_and_ordered() -> None:
    clock = FakeClock()
    store: ObjectStore[PodInfo] = ObjectStore("Pod", delete_delay_s=10, clock=clock)
    for i in range(5):
        p = pod(f"p{i}", f"u{i}")
        await store.handle(ev(EventType.ADDED, p))
        await store.handle(ev(EventType.DELETED, p))
        clock.now += 3
    # Deleted at t=0,3,6,9,12 (+1000); now t=15: the first two (expiring at 10 and 13) are gone,
    # the first already dropped by the handle() at t=12, the second by this sweep.
    assert store.expire() == 1
    assert [f"u{i}" in store for i in range(5)] == [False, False, True, True, True]
