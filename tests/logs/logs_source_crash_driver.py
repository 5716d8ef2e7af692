"""kill -9 driver: the real LogsSource → Pipeline → Spool → Delivery → FileSink over a node's log
directory, run until killed.

    python logs_source_crash_driver.py TMP_DIR

Uses ``logs_source_support.make_settings(TMP_DIR)`` with tiny, timer-closed batches so batch
boundaries differ from run to run. Prints ``started`` once the first scan is done.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from logs_source_support import Rig, make_settings


async def run(tmp: Path) -> None:
    settings = make_settings(tmp, batch=7, sweep_interval_s=0.2, read_chunk_bytes=16 * 1024)
    rig = Rig(tmp, settings)
    await rig.start()
    print("started", flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1])))
