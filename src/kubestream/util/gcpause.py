"""Pause the cyclic garbage collector around a synchronous burst of allocations.

Decoding a Kubernetes list page creates hundreds of thousands of dicts and lists that all stay
alive until the page is dropped. Every 700 allocations the GC runs a young collection, and the
older generations' thresholds fire too, so the collector repeatedly walks a graph that contains
no garbage at all. Pausing it for the duration of a *synchronous* block (no ``await`` inside, so
no other task runs meanwhile) removes that cost; refcounting still frees everything as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic GC inside the block (re-entrant; a no-op if it is already disabled)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
