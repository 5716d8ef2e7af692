"""Done-means #1 of issue 13: every recorded exchange of every recorded version, replayed against
the simulator set to that version, gives the recorded response SHAPE, except the differences
listed (with their reasons) in docs/simulator.md. The list is asserted exactly: a new difference
fails this test, and so does a fixed one until it is taken off the list."""

from __future__ import annotations

import re
from pathlib import Path

from replay_support import differences, exchanges, known_key, recorded_files, seed

from kubestream.sim.testing import running_sim

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


def documented_differences() -> set[str]:
    """The lines of the ```replay-differences blocks of docs/simulator.md."""
    blocks = re.findall(r"```replay-differences\n(.*?)```", DOC.read_text(), flags=re.S)
    return {line.strip() for block in blocks for line in block.splitlines() if line.strip()}


def observed_differences() -> set[str]:
    """Replay everything; one line per difference: ``<versions> <file> <METHOD>: <path>: <what>``."""
    seen: dict[str, set[str]] = {}
    files = recorded_files()
    assert {p.parent.name for p in files} == {"v1-32", "v1-34", "v1-35"} and len(files) == 18
    for path in files:
        file_exchanges = exchanges(path)
        with running_sim(kube_version=file_exchanges[0].version) as server:
            seed(server, file_exchanges)
            for exchange in file_exchanges:
                for line in differences(server, exchange):
                    seen.setdefault(known_key(line), set()).add(exchange.version)
    return {f"{','.join(sorted(versions))} {key}" for key, versions in seen.items()}


def test_replays_differ_only_as_documented() -> None:
    documented, observed = documented_differences(), observed_differences()
    assert documented, "docs/simulator.md lists no replay differences"
    new = sorted(observed - documented)
    fixed = sorted(documented - observed)
    assert not new and not fixed, f"new differences (fix or document): {new}\nno longer seen (drop from the doc): {fixed}"
