"""Names, identifiers and timestamps the way Kubernetes components make them, plus the
simulator's logical clock.

Everything random here draws from a caller-supplied ``random.Random`` so a workload seeded
the same way produces the same names in the same order.
"""

from __future__ import annotations

import calendar
import random
import threading
import time
from collections.abc import Callable

KUBE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
"""``k8s.io/apimachinery/pkg/util/rand`` alphabet (no vowels, no 0/1/3): used for
``generateName`` suffixes and, through ``SafeEncodeString``, for ``pod-template-hash``."""

def random_suffix(rng: random.Random, length: int = 5) -> str:
    """A ``generateName``-style suffix, e.g. ``x7k2p``."""
    return "".join(rng.choice(KUBE_ALPHANUMS) for _ in range(length))


def pod_template_hash(rng: random.Random) -> str:
    """A ``pod-template-hash`` label value (ReplicaSet name suffix), e.g. ``5d8f7c9b6``."""
    return random_suffix(rng, rng.choice((9, 10)))


def random_hex(rng: random.Random, length: int) -> str:
    """``length`` lowercase hex digits."""
    return f"{rng.getrandbits(4 * length):0{length}x}" if length else ""


def container_id(rng: random.Random) -> str:
    """The 64-hex id containerd gives a container (without the ``containerd://`` scheme)."""
    return random_hex(rng, 64)


def image_digest(rng: random.Random) -> str:
    """A ``sha256:<64 hex>`` image digest, as in ``imageID``."""
    return f"sha256:{random_hex(rng, 64)}"


def event_name(object_name: str, unix_nano: int) -> str:
    """``<involvedObject.name>.<hex UnixNano>`` (client-go ``util.GenerateEventName``)."""
    return f"{object_name}.{unix_nano:x}"


def rfc3339(ts: float) -> str:
    """``metav1.Time``: RFC 3339 to the second, UTC (``2026-11-21T05:01:02Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def micro_time(ts: float) -> str:
    """``metav1.MicroTime``: always six fractional digits (``2026-11-21T05:01:02.123456Z``)."""
    whole = int(ts)
    micros = round((ts - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return f"{rfc3339(whole)[:-1]}.{micros:06d}Z"


def rfc3339_nano(unix_nano: int) -> str:
    """Go ``time.RFC3339Nano`` as containerd and Docker write it: trailing zeros of the fraction
    are trimmed, and a whole second has no fraction at all."""
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos == 0:
        return f"{base}Z"
    return f"{base}.{f'{nanos:09d}'.rstrip('0')}Z"


def rotation_suffix(ts: float) -> str:
    """kubelet's rotated-log suffix, Go layout ``20060102-150405`` in UTC."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(ts))


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch for an RFC 3339 UTC timestamp with or without a fraction."""
    head, _, frac = value.rstrip("Z").partition(".")
    whole = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    return whole + (float(f"0.{frac}") if frac else 0.0)


class SimClock:
    """The workload's logical clock: ``base + tick * tick_s``, independent of wall time.

    ``unique_ns()`` hands out strictly increasing nanosecond stamps inside the current tick, so
    two events about the same object in one tick still get distinct ``<name>.<hex ns>`` names
    (real recorders rely on the wall clock moving; a logical clock does not move by itself).
    """

    def __init__(self, base: float, tick_s: float) -> None:
        self._base_ns = int(base * 1_000_000_000)
        self._tick_ns = int(tick_s * 1_000_000_000)
        self._tick = 0
        self._last_ns = self._base_ns - 1
        self._lock = threading.Lock()

    @property
    def tick(self) -> int:
        """The current tick."""
        return self._tick

    def set_tick(self, tick: int) -> None:
        """Move to a tick (the workload does this at the start of each step)."""
        with self._lock:
            self._tick = tick

    def now(self) -> float:
        """Seconds since the epoch at the start of the current tick."""
        return (self._base_ns + self._tick * self._tick_ns) / 1_000_000_000

    def unique_ns(self) -> int:
        """A nanosecond stamp within the current tick, larger than every one handed out before."""
        with self._lock:
            stamp = max(self._base_ns + self._tick * self._tick_ns, self._last_ns + 1)
            self._last_ns = stamp
            return stamp


Clock = Callable[[], float]
"""Seconds since the epoch; ``time.time`` or ``SimClock.now``."""


class WallNanos:
    """Nanosecond stamps from a clock, strictly increasing across *every* instance in the process,
    so recorders made without a shared workload clock never mint the same event name (with a
    real clock two stamps practically never collide; with frozen test clocks they would)."""

    _last = 0
    _lock = threading.Lock()

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock

    @classmethod
    def latest(cls) -> float:
        """The newest stamp any instance gave, in seconds (0 before the first): a test clock set
        after it decides the stamps it gets."""
        with cls._lock:
            return cls._last / 1_000_000_000

    def __call__(self) -> int:
        with WallNanos._lock:
            WallNanos._last = max(int(self._clock() * 1_000_000_000), WallNanos._last + 1)
            return WallNanos._last
