"""``memory`` settings: the Arrow pool chosen before pyarrow loads, freed heap pages given back.

Each case runs in a fresh interpreter: the pool and the arena cap are process-wide, chosen once.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_POOL = """
from kubestream.config.settings import MemorySettings
from kubestream.pipeline import memory
memory.configure(MemorySettings(arrow_pool={pool!r}))
import pyarrow as pa
print(pa.default_memory_pool().backend_name)
"""

_TRIM = """
from pathlib import Path
from kubestream.config.settings import MemorySettings
from kubestream.pipeline import memory

def rss_kib():
    return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))

# ~120 MB of 600-byte blocks (above pymalloc's 512: glibc's heap), every 64th kept: the heap
# cannot shrink past the survivors, so the freed pages stay resident until trimmed.
blocks = [bytes(600) + i.to_bytes(4, "little") for i in range(200_000)]
kept = blocks[::64]
del blocks
before = rss_kib()
memory.release(MemorySettings(trim_after_batch={trim}))
print(before - rss_kib(), len(kept))
"""


def _run(code: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**{k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}, **env})
    return done.stdout.split()[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")
def test_memory_arrow_pool_is_the_configured_one_and_the_environment_wins() -> None:
    assert _run(_POOL.format(pool="system")) == "system"
    assert _run(_POOL.format(pool="jemalloc")) == "jemalloc"
    assert _run(_POOL.format(pool="system"), ARROW_DEFAULT_MEMORY_POOL="jemalloc") == "jemalloc"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_memory_release_returns_freed_heap_pages_only_when_enabled() -> None:
    assert int(_run(_TRIM.format(trim=True))) > 50_000  # KiB given back
    assert int(_run(_TRIM.format(trim=False))) < 10_000
