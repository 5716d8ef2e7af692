"""Keeping the agent's resident memory bounded by its batch settings, not by allocator habits.

Profiled on the node agent (``bench_node``, 200 pods' files, memray at the high-water mark): the
live heap at peak was ~83 MB while the resident set reached 257-294 MB. The difference is memory
that was freed but never given back:

- glibc malloc gives each thread that allocates its own arena (up to 8 per core); the batches
  are encoded in ``asyncio.to_thread`` workers, so every worker's arena keeps the high-water
  mark of the batches it encoded. ``malloc_arena_max`` caps the arenas (``mallopt(M_ARENA_MAX)``).
- glibc raises its mmap threshold each time a large block is freed, so later large buffers
  (reads, Arrow buffers) come from the heap, where a small live block above them keeps the
  freed ones resident. ``malloc_trim`` after each batch returns those pages.
- Arrow's default pool (mimalloc) keeps freed pages for reuse; the pool is chosen by setting
  (``arrow_pool``) and asked to release unused memory after each batch.

Everything here is best effort: on a libc without ``mallopt``/``malloc_trim`` (musl, macOS) it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import cache
from typing import Any

from kubestream.config.settings import MemorySettings

_M_ARENA_MAX = -8
"""``mallopt`` parameter number of glibc's ``M_ARENA_MAX`` (malloc.h)."""


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def configure(settings: MemorySettings) -> None:
    """Apply ``settings`` to the process: call once at start, before the worker threads exist."""
    libc = _libc()
    if libc is not None and settings.malloc_arena_max is not None:
        libc.mallopt(_M_ARENA_MAX, settings.malloc_arena_max)
    if settings.arrow_pool != "default":
        # Read by pyarrow when it first allocates: an NDJSON agent never imports pyarrow (~35 MB),
        # so the pool is named here rather than created. An explicit environment setting wins.
        os.environ.setdefault(_ARROW_POOL_ENV, settings.arrow_pool)


_ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
_arrow_tuned = ""


def _tune_arrow() -> Any:
    """pyarrow's pool once pyarrow is loaded (jemalloc: freed pages returned at once); else None."""
    global _arrow_tuned
    if "pyarrow" not in sys.modules:
        return None
    import pyarrow as pa

    pool = pa.default_memory_pool()
    if _arrow_tuned != pool.backend_name:
        _arrow_tuned = pool.backend_name
        if pool.backend_name == "jemalloc":
            # jemalloc's default decay keeps freed pages for 10 s: the next batch would find
            # them, but so does the peak.
            pa.jemalloc_set_decay_ms(0)
    return pool


def release(settings: MemorySettings) -> None:
    """Give memory freed by a batch back to the system (``memory.trim_after_batch``)."""
    if not settings.trim_after_batch:
        return
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
    pool = _tune_arrow()
    if pool is not None:
        pool.release_unused()
