"""The committed *_pb2.py/.pyi are what protoc generates from the shipped .proto files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kubestream.pipeline.proto as proto_package

PROTO_DIR = Path(proto_package.__file__).parent
PROTOS = ["kubestream.proto", "k8stream.proto"]


@pytest.mark.parametrize("proto", PROTOS)
def test_regenerating_gives_the_committed_modules(tmp_path: Path, proto: str) -> None:
    shutil.copy(PROTO_DIR / proto, tmp_path / proto)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.", "--pyi_out=.", proto],
        cwd=tmp_path, check=True,
    )
    stem = proto.removesuffix(".proto")
    for suffix in ("_pb2.py", "_pb2.pyi"):
        generated = (tmp_path / f"{stem}{suffix}").read_text()
        committed = (PROTO_DIR / f"{stem}{suffix}").read_text()
        assert generated == committed, f"{stem}{suffix} is stale: regenerate it (see proto/__init__.py)"


def test_proto_files_ship_with_the_package() -> None:
    for proto in PROTOS:
        assert "syntax = \"proto3\";" in (PROTO_DIR / proto).read_text()
