"""Exponential backoff with full jitter that forgets old failures after a period of health.

Same shape as client-go's reflector backoff (800 ms doubling to 30 s, reset after 2 min of
health) but with *full* jitter (a delay drawn uniformly in ``[0, cap]``), which spreads the
retries of many agents that failed at the same instant (an API server restart) the widest.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable


class Backoff:
    """Delays to wait after consecutive failures.

    ``next_delay()`` is called once per failure. When the previous failure is older than
    ``reset_after_s`` the attempt counter starts again, so a watch that ran healthily for a
    while and then broke is retried quickly.
    """

    def __init__(
        self,
        initial_s: float,
        max_s: float,
        reset_after_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._attempt = 0
        self._last_failure: float | None = None

    @property
    def attempt(self) -> int:
        """Consecutive failures counted so far (0 after a reset)."""
        return self._attempt

    def cap(self) -> float:
        """The upper bound of the next delay, without drawing it."""
        return min(self.max_s, math.ldexp(self.initial_s, min(self._attempt, 62)))

    def next_delay(self) -> float:
        """Record one failure and return how long to wait before the next attempt."""
        now = self._clock()
        if self._last_failure is not None and now - self._last_failure >= self.reset_after_s:
            self._attempt = 0
        cap = self.cap()
        self._attempt += 1
        self._last_failure = now
        return self._rng.uniform(0.0, cap)

    def reset(self) -> None:
        """Forget all failures (e.g. after an explicit success that proves recovery)."""
        self._attempt = 0
        self._last_failure = None
