"""docs/operations.md documents every collector of obs/metrics.py with its type and labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from kubestream.obs.metrics import Metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ROW = re.compile(r"^\| `(kubestream_[a-z_]+)` \| (\w+) \| ([^|]+) \| ([^|]+) \|$", re.MULTILINE)


def test_obs_docs_metrics_reference_is_complete() -> None:
    rows = {match.group(1): match for match in ROW.finditer(DOC.read_text())}
    metrics = Metrics()
    collectors = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    assert len(collectors) >= 20
    for collector in collectors:
        family = collector.describe()[0]
        # prometheus_client strips "_total" from a counter's family name; the docs use the exposed name.
        name = family.name + ("_total" if family.type == "counter" else "")
        assert name in rows, f"{name} is not documented"
        assert rows[name].group(2) == family.type, name
        labels = re.findall(r"`(\w+)`", rows[name].group(3))
        if labels:
            # prometheus_client raises ValueError unless these are exactly the collector's label names.
            collector.labels(**{label: "x" for label in labels})
        else:
            # Only an unlabelled collector exposes a sample before any labels() call.
            assert any(f.samples for f in collector.collect()), f"{name} has labels the docs do not list"
    assert len(rows) == len(collectors), "the docs list a metric obs/metrics.py does not have"
