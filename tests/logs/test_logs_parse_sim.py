"""Parsing files written by the simulator's node log writer: every ledger line exactly once."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Literal

import pytest

from kubestream.config.settings import LogsSettings
from kubestream.model import ParsedBlock
from kubestream.sim.nodes.logfiles import NodeLogConfig, NodeLogWriter, extract_seqs
from kubestream.sources.logs.detect import detect_format
from kubestream.sources.logs.parser import FileParser

STACK_START = re.compile(rb"(?!\s)(?!Caused by)(?!\.\.\.)")
"""A start line is any line not indented (Java/Python frames are): a real-world rule."""


def pod(name: str, containers: tuple[str, ...] = ("app", "sidecar")) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
            "spec": {"nodeName": "node-a", "containers": [{"name": c, "image": "img"} for c in containers]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": c, "restartCount": 0, "containerID": f"containerd://{c}{name}"} for c in containers]}}


def write_node(tmp_path: Path, fmt: Literal["cri", "docker"]) -> NodeLogWriter:
    config = NodeLogConfig(root=tmp_path / "pods", containers_dir=tmp_path / "containers", node="node-a",
                           seed=3, format=fmt, rotate_bytes=1 << 30)
    writer = NodeLogWriter(config)
    writer.follow([pod("web-1"), pod("api-1", ("app",))])
    writer.write_burst(400)
    writer.write_burst(2, kinds=["long"])
    writer.write_burst(6, kinds=["invalid_utf8", "stack", "json"])
    writer.write_burst(200)
    writer.stop()
    return writer


def parse_file(path: Path, settings: LogsSettings, seed: int, multiline: re.Pattern[bytes] | None = None,
               ) -> list[ParsedBlock]:
    data = path.read_bytes()
    fmt = detect_format(data[:4096])
    assert fmt is not None
    parser = FileParser(fmt, settings, multiline=multiline)
    rng = random.Random(seed)
    blocks, at = [], 0
    while at < len(data):
        size = rng.choice((1, 17, 4096, 65536, 1 << 20))
        blocks.append(parser.feed(data[at:at + size], at))
        at += size
        if rng.random() < 0.1:
            blocks.append(parser.flush_pending())
    blocks.append(parser.finish())
    assert blocks[-1].resume_offset == len(data)
    return blocks


@pytest.mark.parametrize("fmt", ["cri", "docker"])
@pytest.mark.parametrize("multiline", [False, True])
def test_every_line_of_the_ledger_comes_out_once(tmp_path: Path, fmt: Literal["cri", "docker"],
                                                  multiline: bool) -> None:
    writer = write_node(tmp_path, fmt)
    by_key = {line.key: line for line in writer.ledger.lines()}
    seen: list[tuple[str, str, str, int]] = []
    settings = LogsSettings(invalid_utf8="lossless")
    for uid, container, path in [(c[0], c[1], c[2]) for c in _files(writer)]:
        pattern = STACK_START if multiline else None
        for i, block in enumerate(parse_file(path, settings, seed=len(seen), multiline=pattern)):
            assert block.malformed == 0 and block.truncated == 0, i
            for row, (stream, message) in enumerate(zip(block.streams, block.messages, strict=True)):
                seqs = extract_seqs(message)
                assert seqs and (multiline or len(seqs) == 1)
                for seq in seqs:
                    key = (uid, container, stream.decode(), seq)
                    seen.append(key)
                    line = by_key[key]
                    if line.kind == "long" and not multiline:
                        assert len(message) == line.size  # 64+ P parts (or docker splits) merged back
                    if line.kind == "invalid_utf8" and fmt == "cri" and not multiline:
                        assert len(block.raw_messages[row]) == line.size and b"\xef\xbf\xbd" in message
    assert len(seen) == len(set(seen)) == len(writer.ledger)
    assert set(seen) == writer.ledger.keys()


def _files(writer: NodeLogWriter) -> list[tuple[str, str, Path]]:
    root = writer.config.root
    out = []
    for path in sorted(root.rglob("*.log")):
        uid = path.parent.parent.name.rsplit("_", 1)[1]
        out.append((uid, path.parent.name, path))
    return out
