"""S3 sink upload throughput against a local moto server, beside a plain boto3 ``put_object``
loop of the same objects measured in the same run.

    .venv/bin/python -m bench.bench_s3 [--quick]

Both sides upload the same spool files one at a time (the delivery worker is in-order, one
attempt in flight), to the same server. moto runs in its own process; at large sizes its own
Python CPU is the bottleneck, so the ratio there says little about a real S3. Prints MB/s, the
client's CPU per MB, and the ratio sink / put_object (goal: >= 1.0).

moto and boto3 live in .venv-s3 (``make setup``; ``$KUBESTREAM_S3_PYTHON`` overrides it), not in
the agent's venv: botocore pins python-dateutil<3, the agent's kubernetes client needs >=3. So
this file plays three parts: the benchmark itself (agent's venv), and, run by .venv-s3's
interpreter, the moto server (``--worker serve``) and the boto3 loop (``--worker put-loop``),
which times each loop inside its own process and reports wall and CPU seconds as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubestream.sinks.s3 import S3Sink

MiB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[1]
S3_PYTHON_ENV = "KUBESTREAM_S3_PYTHON"
REGION = "us-east-1"
BENCH_KEY = "bench"  # any key works: moto's authentication is off


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- run by .venv-s3's interpreter: no kubestream there --------------------------------------

def serve_moto() -> None:
    """moto in server mode on a free port; prints the port, serves until stdin closes."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # also ends if the benchmark dies and our stdin closes


def put_loop(endpoint: str, bucket: str, prefix: str, files: list[Path]) -> None:
    """For every line read on stdin, PUT ``files`` once in order with boto3 and print
    {"seconds", "cpu_s"} of that loop alone (imports and client set-up are not timed)."""
    import boto3
    from botocore.config import Config

    # "when_required": no CRC32 on every request, as the sink (and S3-compatible servers) want.
    config = Config(retries={"total_max_attempts": 1}, request_checksum_calculation="when_required",
                    response_checksum_validation="when_required", s3={"addressing_style": "path"})
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=BENCH_KEY,
                          aws_secret_access_key=BENCH_KEY, config=config)
    for _ in sys.stdin:
        wall, cpu = time.perf_counter(), _cpu()
        for i, path in enumerate(files):
            with open(path, "rb") as body:
                client.put_object(Bucket=bucket, Key=f"{prefix}/{i}", Body=body)
        print(json.dumps({"seconds": time.perf_counter() - wall, "cpu_s": _cpu() - cpu}), flush=True)


# -- run by the agent's interpreter ----------------------------------------------------------

def s3_tools_python() -> Path:
    override = os.environ.get(S3_PYTHON_ENV)
    python = Path(override) if override else REPO_ROOT / ".venv-s3" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} does not exist: run `make setup` (creates .venv-s3 with moto and boto3) "
                         f"or set {S3_PYTHON_ENV}")
    return python


class Worker:
    """This file run by the S3 tools' interpreter in one ``--worker`` part, talking over pipes."""

    def __init__(self, python: Path, *args: str, quiet: bool = False) -> None:
        self._proc = subprocess.Popen([str(python), __file__, "--worker", *args], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL if quiet else None,
                                      text=True)

    def ask(self, line: str | None = None) -> str:
        """Send ``line`` (if any) and return the worker's next line of output."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        if line is not None:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            raise SystemExit(f"bench worker {self._proc.args[3:5]} ended (exit {self._proc.wait()})")
        return answer

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()


def _create_bucket(endpoint: str, bucket: str) -> None:
    # Unsigned: moto accepts it while its authentication is off; no S3 client needed.
    request = urllib.request.Request(f"{endpoint}/{bucket}", data=b"", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def _make_sink(endpoint: str, bucket: str) -> S3Sink:
    # Imported here, not at the top: the .venv-s3 parts of this file run without kubestream.
    from pydantic import SecretStr

    from kubestream.config.settings import S3SinkSettings
    from kubestream.sinks.s3 import S3Sink

    return S3Sink(S3SinkSettings(bucket=bucket, endpoint_url=endpoint, region=REGION,
                                 access_key_id=SecretStr(BENCH_KEY), secret_access_key=SecretStr(BENCH_KEY)))


def _sink_loop(sink: S3Sink, label: str, files: list[Path], size: int) -> tuple[float, float]:
    """(seconds, CPU seconds) of one in-order upload of ``files`` through the sink."""
    async def upload() -> None:
        for i, path in enumerate(files):
            await sink.put(f"sink/{label}/{i}", path, size)

    wall, cpu = time.perf_counter(), _cpu()
    asyncio.run(upload())
    return time.perf_counter() - wall, _cpu() - cpu


def _scenarios(quick: bool) -> list[tuple[str, int, int]]:
    """(label, object size, count)."""
    if quick:
        return [("64 KiB", 64 * 1024, 50), ("1 MiB", MiB, 8), ("8 MiB", 8 * MiB, 2)]
    return [("4 KiB", 4096, 300), ("64 KiB", 64 * 1024, 200), ("1 MiB", MiB, 32),
            ("8 MiB", 8 * MiB, 6), ("64 MiB (multipart)", 64 * MiB, 1)]


def run_scenario(python: Path, endpoint: str, bucket: str, workdir: Path, label: str, size: int,
                 count: int) -> float:
    files = []
    for i in range(count):
        path = workdir / f"{label.split()[0]}-{i}.batch"
        path.write_bytes(os.urandom(size))
        files.append(path)
    total_mb = size * count / MiB
    sink = _make_sink(endpoint, bucket)
    plain_loop = Worker(python, "put-loop", endpoint, bucket, f"plain/{label}", *map(str, files))
    try:
        def plain() -> tuple[float, float]:
            result: dict[str, Any] = json.loads(plain_loop.ask("run"))
            return result["seconds"], result["cpu_s"]

        # Alternate the sides so drift in moto's state hits both; best of two each, the first
        # run of each side also warming its connection pool.
        runs = [plain(), _sink_loop(sink, label, files, size), plain(), _sink_loop(sink, label, files, size)]
    finally:
        plain_loop.close()
        asyncio.run(sink.close())
    plain_rate = total_mb / min(runs[0][0], runs[2][0])
    sink_rate = total_mb / min(runs[1][0], runs[3][0])
    plain_cpu = min(runs[0][1], runs[2][1]) * 1000 / total_mb
    sink_cpu = min(runs[1][1], runs[3][1]) * 1000 / total_mb
    ratio = sink_rate / plain_rate
    print(f"{label:>20} x{count:<4} put_object {plain_rate:7.1f} MB/s ({plain_cpu:6.1f} ms CPU/MB)   "
          f"S3Sink {sink_rate:7.1f} MB/s ({sink_cpu:6.1f} ms CPU/MB)   ratio {ratio:4.2f}x", flush=True)
    for path in files:
        path.unlink()
    return ratio


def run_benchmark(quick: bool) -> None:
    python = s3_tools_python()
    moto = Worker(python, "serve", quiet=True)  # quiet: moto logs every request on stderr
    try:
        endpoint = f"http://127.0.0.1:{int(moto.ask())}"
        bucket = "bench"
        _create_bucket(endpoint, bucket)
        print(f"moto server at {endpoint} (separate process); one upload in flight on each side; "
              f"put_object in its own process ({python})", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-s3-") as workdir:
            ratios = [run_scenario(python, endpoint, bucket, Path(workdir), *scenario)
                      for scenario in _scenarios(quick)]
        print(f"worst ratio S3Sink / put_object: {min(ratios):.2f}x (goal >= 1.0x)")
    finally:
        moto.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small objects only (a few seconds)")
    # Internal: the parts run by .venv-s3's interpreter (see the module docstring).
    parser.add_argument("--worker", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is None:
        run_benchmark(args.quick)
    elif args.worker[0] == "serve":
        serve_moto()
    elif args.worker[0] == "put-loop":
        endpoint, bucket, prefix, *files = args.worker[1:]
        put_loop(endpoint, bucket, prefix, [Path(f) for f in files])
    else:
        parser.error(f"unknown worker {args.worker[0]!r}")


if __name__ == "__main__":
    main()
