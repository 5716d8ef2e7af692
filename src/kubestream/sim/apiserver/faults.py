"""Fault injection, scriptable in-process and over ``POST /_sim/faults``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class ErrorStorm:
    """Answer matching requests with ``status`` until ``until`` (monotonic)."""

    status: int
    until: float
    retry_after: int | None
    resource: str | None
    verbs: frozenset[str] | None
    as_status: bool = False
    """429 only: a JSON Status (the watch cache's "not ready" 429) instead of flow control's
    plain text."""

    def matches(self, resource: str, verb: str, now: float) -> bool:
        """Whether a request is hit by this storm."""
        return (now < self.until and (self.resource is None or self.resource == resource)
                and (self.verbs is None or verb in self.verbs))


class Faults:
    """The fault switchboard. Counters are consumed by the server as requests arrive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._storms: list[ErrorStorm] = []
        self._expire: list[str | None] = []
        self._cut_mid_object = 0
        self._slow_delay = 0.0
        self._slow_until = 0.0
        self._drop_hook: Callable[[str | None], int] | None = None
        self._compact_hook: Callable[[int | None], None] | None = None

    def bind(self, drop: Callable[[str | None], int], compact: Callable[[int | None], None]) -> None:
        """Connect the actions that need the server (called by SimServer)."""
        self._drop_hook = drop
        self._compact_hook = compact

    # -- actions --------------------------------------------------------------------------------

    def drop_watches(self, resource: str | None = None) -> int:
        """Cut open watch streams now, without the terminating chunk; returns how many."""
        return self._drop_hook(resource) if self._drop_hook else 0

    def expire_next_watches(self, n: int = 1, resource: str | None = None) -> None:
        """The next ``n`` watches (of ``resource``) get HTTP 200 + an in-stream ERROR 410."""
        with self._lock:
            self._expire.extend([resource] * n)

    def compact(self, rv: int | None = None) -> None:
        """Compact history up to ``rv`` (default: now)."""
        if self._compact_hook:
            self._compact_hook(rv)

    def error_storm(self, status: int, seconds: float, retry_after: int | None = None,
                    resource: str | None = None, verbs: list[str] | None = None, as_status: bool = False) -> None:
        """Answer requests with ``status`` (5xx or 429) for ``seconds``.

        A 429 has the shape API Priority and Fairness gives it, as almost every real 429 is:
        ``text/plain`` "Too many requests, please try again later." with Retry-After (default 1).
        ``as_status=True`` sends a JSON Status with ``retryAfterSeconds`` instead.
        """
        with self._lock:
            self._storms.append(ErrorStorm(status, time.monotonic() + seconds, retry_after, resource,
                                           frozenset(verbs) if verbs else None, as_status))

    def slow(self, delay_s: float, seconds: float) -> None:
        """Delay every request by ``delay_s`` for the next ``seconds``."""
        with self._lock:
            self._slow_delay = delay_s
            self._slow_until = time.monotonic() + seconds

    def cut_next_watch_mid_object(self, n: int = 1) -> None:
        """The next ``n`` watches write half a JSON event, then the connection is cut."""
        with self._lock:
            self._cut_mid_object += n

    def clear(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._storms.clear()
            self._expire.clear()
            self._cut_mid_object = 0
            self._slow_delay = 0.0
            self._slow_until = 0.0

    def apply_json(self, spec: dict[str, Any]) -> Any:
        """Run ``{"action": name, ...kwargs}`` (the admin endpoint's body)."""
        actions: dict[str, Callable[..., Any]] = {
            "drop_watches": self.drop_watches, "expire_next_watches": self.expire_next_watches,
            "compact": self.compact, "error_storm": self.error_storm, "slow": self.slow,
            "cut_next_watch_mid_object": self.cut_next_watch_mid_object, "clear": self.clear,
        }
        args = dict(spec)
        name = args.pop("action", None)
        if name not in actions:
            raise ValueError(f"unknown fault action {name!r}; known: {sorted(actions)}")
        return actions[name](**args)

    # -- queries used by the server -------------------------------------------------------------

    def storm_for(self, resource: str, verb: str) -> ErrorStorm | None:
        """The active storm hitting this request, if any."""
        now = time.monotonic()
        with self._lock:
            self._storms = [s for s in self._storms if s.until > now]
            return next((s for s in self._storms if s.matches(resource, verb, now)), None)

    def delay(self) -> float:
        """Seconds to delay the current request."""
        with self._lock:
            return self._slow_delay if time.monotonic() < self._slow_until else 0.0

    def take_expire(self, resource: str) -> bool:
        """Consume one pending 'expire next watch' matching ``resource``."""
        with self._lock:
            for i, wanted in enumerate(self._expire):
                if wanted is None or wanted == resource:
                    del self._expire[i]
                    return True
            return False

    def take_cut_mid_object(self) -> bool:
        """Consume one pending 'cut mid object'."""
        with self._lock:
            if self._cut_mid_object > 0:
                self._cut_mid_object -= 1
                return True
            return False
