"""A deterministic CRI container log file for the log benchmarks.

    python -m bench.gen_cri [path] [bytes]

Lines look like a busy service's: HTTP access lines, structured JSON lines and plain worker lines
(varying IPs, paths, ids, durations), ~191 bytes per physical line on average, 80 % stdout /
20 % stderr, and 2 % of physical lines are ``P`` parts of a message split in two (as containerd
writes lines over 16 KiB). Timestamps step by a few hundred microseconds, written the way Go's
``RFC3339Nano`` writes them (trailing zeros trimmed). Same seed and size → same bytes.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

DEFAULT_BYTES = 1 << 30
ENV_BYTES = "BENCH_LOGS_BYTES"
PARTIAL_EVERY = 50
"""One physical line in 50 is a P part (2 %)."""
_START_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
_PATHS = ("/api/v1/orders", "/api/v1/items", "/api/v1/users", "/healthz", "/checkout", "/cart/add", "/metrics",
          "/login", "/api/v2/search", "/static/app.js")
_AGENTS = ("Go-http-client/1.1", "curl/8.5.0", "kube-probe/1.30", "Mozilla/5.0 (X11; Linux x86_64)", "okhttp/4.12")
_WORDS = ("cache", "worker", "db", "http", "queue", "auth", "scheduler", "grpc", "billing", "inventory")
_LEVELS = ("info", "info", "info", "debug", "warn", "error")


def target_bytes() -> int:
    """The file size to generate: ``$BENCH_LOGS_BYTES`` or 1 GiB."""
    return int(os.environ.get(ENV_BYTES, DEFAULT_BYTES))


def _rfc3339_nano(ns: int) -> str:
    secs, frac = divmod(ns - _START_NS, 1_000_000_000)
    days, rem = divmod(secs, 86400)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    day = 1 + days % 28  # the day of month is not what the benchmark measures
    stamp = f"2026-01-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
    fraction = f"{frac:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def _access(rng: random.Random) -> str:
    ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    path = f"{rng.choice(_PATHS)}/{rng.randint(1, 99999)}"
    return (f'{ip} - - "{rng.choice(("GET", "GET", "POST", "PUT"))} {path} HTTP/1.1" '
            f'{rng.choice((200, 200, 200, 201, 204, 404, 500))} {rng.randint(120, 48000)} '
            f'"https://shop.example.com{rng.choice(_PATHS)}" '
            f'"{rng.choice(_AGENTS)}" rt={rng.random():.3f} upstream=10.0.{rng.randint(0, 9)}.{rng.randint(2, 60)}:8080')


def _json(rng: random.Random) -> str:
    return (f'{{"level":"{rng.choice(_LEVELS)}","logger":"{rng.choice(_WORDS)}","msg":"request served",'
            f'"path":"{rng.choice(_PATHS)}","status":{rng.choice((200, 201, 404, 500))},'
            f'"duration_ms":{rng.random() * 250:.3f},"request_id":"{rng.getrandbits(48):012x}",'
            f'"service":"checkout-api"}}')


def _plain(rng: random.Random) -> str:
    return (f"{rng.choice(_LEVELS).upper():<5} [{rng.choice(_WORDS)}-{rng.randint(0, 15)}] processed batch "
            f"id={rng.randint(1, 10**6)} items={rng.randint(1, 500)} took={rng.randint(1, 2000)}ms "
            f"queue_depth={rng.randint(0, 300)} shard={rng.choice(_WORDS)}-{rng.randint(0, 31)} "
            f"node=ip-10-0-{rng.randint(0, 7)}-{rng.randint(2, 250)}.ec2.internal")


def lines(seed: int = 7):  # type: ignore[no-untyped-def]
    """Physical CRI lines (bytes with their newline), forever."""
    rng = random.Random(seed)
    ns = _START_NS
    n = 0
    makers = (_access, _access, _json, _json, _plain)
    while True:
        ns += rng.randint(50_000, 900_000)
        stamp = _rfc3339_nano(ns)
        stream = "stderr" if rng.random() < 0.2 else "stdout"
        message = rng.choice(makers)(rng)
        n += 1
        if n % PARTIAL_EVERY == 0:
            cut = len(message) // 2
            yield f"{stamp} {stream} P {message[:cut]}\n".encode()
            n += 1
            yield f"{stamp} {stream} F {message[cut:]}\n".encode()
        else:
            yield f"{stamp} {stream} F {message}\n".encode()


def generate(path: Path, size: int, seed: int = 7) -> tuple[int, int]:
    """Write about ``size`` bytes of whole lines; returns (bytes, physical lines)."""
    written = count = 0
    buf: list[bytes] = []
    pending = 0
    with path.open("wb") as f:
        for line in lines(seed):
            buf.append(line)
            pending += len(line)
            count += 1
            if pending >= 1 << 20:
                f.write(b"".join(buf))
                written += pending
                buf, pending = [], 0
                if written >= size:
                    break
            if written + pending >= size and line.split(b" ", 3)[2] == b"F":
                break
        f.write(b"".join(buf))
        written += pending
    return written, count


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("bench-cri.log")
    size = int(argv[1]) if len(argv) > 1 else target_bytes()
    written, count = generate(path, size)
    print(f"{path}: {written} bytes, {count} lines, {written / max(count, 1):.1f} B/line")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
