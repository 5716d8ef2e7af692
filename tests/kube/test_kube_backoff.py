"""Exponential backoff with full jitter and reset after health."""

from __future__ import annotations

import random

from kubestream.util.backoff import Backoff


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_caps_double_to_max_and_delays_stay_under_cap() -> None:
    clock = FakeClock()
    b = Backoff(0.8, 30.0, 120.0, clock=clock, rng=random.Random(1))
    caps = []
    for _ in range(8):
        cap = b.cap()
        caps.append(cap)
        delay = b.next_delay()
        assert 0.0 <= delay <= cap
        clock.now += 1
    assert caps == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]


def test_full_jitter_spreads_delays() -> None:
    delays = []
    for seed in range(200):
        b = Backoff(1.0, 30.0, 120.0, rng=random.Random(seed))
        for _ in range(3):
            b.next_delay()
        delays.append(b.next_delay())  # cap 8.0
    assert min(delays) < 1.0 and max(delays) > 7.0


def test_reset_after_healthy_period() -> None:
    clock = FakeClock()
    b = Backoff(0.8, 30.0, 120.0, clock=clock)
    for _ in range(5):
        b.next_delay()
    assert b.cap() == 25.6
    clock.now += 121
    b.next_delay()
    assert b.attempt == 1 and b.cap() == 1.6
