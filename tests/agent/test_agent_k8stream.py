"""A k8stream ``config.json`` as its README shows it runs unchanged against the simulator, with the
file sink, and writes what k8stream wrote: gzip-compressed protobuf ``L9Event`` messages."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent.harness import AgentProcess, make_workload

from kubestream.config.settings import EncodingSettings
from kubestream.pipeline.encode import make_encoder
from kubestream.sim.server import SimServer


def test_k8stream_readme_config_runs_unchanged(sim: SimServer, tmp_path: Path) -> None:
    out = tmp_path / "l9k8stream"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "batch_size": 5,
        "batch_interval": 5,
        "uid": "719395d7-4e91-4817-a6ec-9a8ded29bebc",
        "file_sink_dir": str(out),
        "prefix": "local/test-upload",
        "aws_region": "ap-south-1",
        "aws_bucket": "last9-trials",
        "aws_profile": "last9data",
        "aws_access_key": "1",
        "aws_secret_access_key": "2",
        "sink": "file",
        "kubeconfig": str(sim.write_kubeconfig(tmp_path / "kubeconfig")),
    }, indent=4))
    workload = make_workload(sim, seed=51, rate=100, api="core")
    agent = AgentProcess(config, tmp_path).start()
    agent.wait_ready()
    workload.run_for(1.0)
    workload.stop()
    codec = make_encoder(EncodingSettings(format="protobuf", protobuf_message="k8stream", compression="gzip"))
    decoded: list[dict[str, object]] = []
    for _ in range(100):
        files = sorted(out.rglob("*.pb.gz"))
        decoded = [e for f in files for e in codec.decode(f.read_bytes())]
        if len(decoded) >= 5:
            break
        agent.wait_ready()  # still alive
        __import__("time").sleep(0.1)
    assert agent.terminate() == 0, agent.log()
    files = sorted(out.rglob("*.pb.gz"))
    assert files, "no output in file_sink_dir"
    assert all(f.name.startswith("719395d7-4e91-4817-a6ec-9a8ded29bebc-") for f in files), files
    # batch_size 5 means at most five events per object, as k8stream flushed every n events.
    per_file = [len(codec.decode(f.read_bytes())) for f in files]
    assert max(per_file) <= 5
    uids = {str(e["ID"]) for e in decoded}
    assert uids <= set(workload.ledger.per_uid()), "every message is one of the simulator's events"
    assert all(e.get("Reason") and e.get("ReferenceKind") for e in decoded)
