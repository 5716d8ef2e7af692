"""Replays recorded real kube-apiserver exchanges (tests/fixtures/recorded/k8s-openapi-replays)
against the simulator and diffs the response SHAPES: status codes, keys, value types, kinds, list
metadata, watch event sequences and Status bodies. Only values that must differ are ignored:
names and labels of pre-existing objects, UIDs, timestamps, resourceVersion numbers.

Objects that existed in the recorded cluster before the exchange (the kube-system pods and
Deployments of a fresh kind cluster) are seeded into the simulator from the recording itself, so
a list of them can be compared item for item.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubestream.sim.server import SimServer
from kubestream.sim.testing import WatchReader, http

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "k8s-openapi-replays"

MAP_KEYS = frozenset({"labels", "annotations", "matchLabels", "nodeSelector", "fieldsV1", "limits", "requests",
                      "data", "capacity", "allocatable"})
"""Objects whose keys are data (label names, managed-field paths), compared as one opaque map."""
VALUE_KEYS = frozenset({"kind", "apiVersion", "type", "status", "reason", "code", "fieldsType", "operation"})
"""String values that are part of the shape: kinds, event types, Status fields (when a string)."""
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One recorded request and response."""

    version: str
    file: str
    index: int
    method: str
    url: str
    body: str | None
    status: int
    response: str

    @property
    def label(self) -> str:
        return f"{self.file}#{self.index} {self.method} {urlsplit(self.url).path}"


def recorded_files() -> list[Path]:
    """Every recorded replay file of every recorded version."""
    return sorted(RECORDED.glob("v*/*.json"))


def exchanges(path: Path) -> list[Exchange]:
    """The exchanges of one replay file, in order."""
    version = path.parent.name[1:].replace("-", ".")
    return [Exchange(version, path.name, i, x["request_method"], x["request_url"], x["request_body"] or None,
                     int(x["response_status_code"]), x["response_body"])
            for i, x in enumerate(json.loads(path.read_text()))]


# -- shapes ---------------------------------------------------------------------------------------

def shape(value: Any, key: str = "") -> Any:
    """The shape of a JSON value: objects by keys, lists by the merged shape of their items."""
    if isinstance(value, dict):
        if key in MAP_KEYS:
            return "map"
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = _merge(merged, shape(item, key))
        return ["empty"] if merged is None else [merged]
    if isinstance(value, str) and key in VALUE_KEYS:
        return f"={value}"
    return type(value).__name__


def _merge(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out.get(k), v)
        return out
    return a if a == b else f"{a}|{b}" if isinstance(a, str) and isinstance(b, str) else a


def diff(real: Any, ours: Any, path: str = "") -> Iterator[str]:
    """Differences from the real shape to ours, one line each (``path: what``)."""
    if isinstance(real, dict) and isinstance(ours, dict):
        for k in real:
            if k not in ours:
                yield f"{path}.{k}: missing"
            else:
                yield from diff(real[k], ours[k], f"{path}.{k}")
        for k in ours:
            if k not in real:
                yield f"{path}.{k}: extra"
        return
    if isinstance(real, list) and isinstance(ours, list):
        if real == ["empty"] or ours == ["empty"]:
            if real != ours:
                yield f"{path}[]: {'empty' if ours == ['empty'] else 'items'} (real: {'empty' if real == ['empty'] else 'items'})"
            return
        yield from diff(real[0], ours[0], f"{path}[]")
        return
    if real != ours:
        yield f"{path}: {_brief(ours)} (real: {_brief(real)})"


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return str(value)


def body_shape(raw: str, *, watch: bool) -> Any:
    """The shape of a response body; a watch body as its event sequence with object shapes."""
    if not raw:
        return "empty body"
    try:
        events = [json.loads(line) for line in raw.split("\n") if line] if watch else []
        if events and all(isinstance(e, dict) and "type" in e for e in events):
            return {"events": [e["type"] for e in events],
                    "objects": shape([e["object"] for e in events])}
        return shape(json.loads(raw))
    except ValueError:
        return f"text: {raw.strip()}"


# -- seeding and replaying ------------------------------------------------------------------------

def _plural_path(url: str) -> tuple[str, str, str] | None:
    """(group, plural, namespace) of a namespaced collection URL."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if "namespaces" not in parts:
        return None
    i = parts.index("namespaces")
    if len(parts) != i + 3:
        return None
    group = "" if parts[0] == "api" else parts[1]
    return group, parts[i + 2], parts[i + 1]


def _seed_objects(exchange: Exchange) -> list[dict[str, Any]]:
    if exchange.method != "GET" or exchange.status != 200:
        return []
    if "watch=true" in exchange.url:
        return [json.loads(line)["object"] for line in exchange.response.split("\n")
                if line and json.loads(line)["type"] == "ADDED"]
    doc = json.loads(exchange.response)
    return list(doc.get("items") or []) if doc.get("kind", "").endswith("List") else []


def seed(server: SimServer, file_exchanges: list[Exchange]) -> None:
    """Create the objects a list or watch of a pre-existing collection shows (first exchange only:
    later lists show objects the replay itself created)."""
    first = file_exchanges[0]
    where = _plural_path(first.url)
    if where is None:
        return
    group, plural, namespace = where
    for obj in _seed_objects(first):
        meta = {k: v for k, v in obj["metadata"].items() if k not in SERVER_FIELDS}
        body = {**{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}, "metadata": meta}
        body["metadata"]["namespace"] = namespace
        server.cluster.create(plural, body, group=group)


def replay(server: SimServer, exchange: Exchange) -> tuple[int, str]:
    """Send one recorded request; returns (status, body). Watches read as many events as were
    recorded (the recording client stopped there), then hang up."""
    path = exchange.url.replace("?&", "?")
    if "watch=true" in exchange.url:
        wanted = sum(1 for line in exchange.response.split("\n") if line)
        reader = WatchReader(server, path + "&timeoutSeconds=5")
        lines = []
        while len(lines) < wanted and (line := reader.next_line()) is not None:
            lines.append(line.decode())
        reader.close()
        return reader.status, "".join(lines)
    headers = {"Content-Type": _content_type(exchange)} if exchange.body else None
    reply = http(server, exchange.method, path, exchange.body.encode() if exchange.body else None, headers=headers)
    return reply.status, reply.raw.decode(errors="replace")


def _content_type(exchange: Exchange) -> str:
    if exchange.method != "PATCH" or exchange.body is None:
        return "application/json"
    if exchange.body.lstrip().startswith("["):
        return "application/json-patch+json"
    # k8s-openapi sends merge then strategic-merge patches of the same body (patch-deployment.rs).
    return "application/merge-patch+json" if exchange.index == 2 else "application/strategic-merge-patch+json"


def differences(server: SimServer, exchange: Exchange) -> list[str]:
    """Replay one exchange and list how its response shape differs from the recorded one."""
    status, body = replay(server, exchange)
    watch = "watch=true" in exchange.url
    real_shape, our_shape = body_shape(exchange.response, watch=watch), body_shape(body, watch=watch)
    if status != exchange.status:
        out = [f"status: {status} (real: {exchange.status})"]  # a different answer: its body differs too
    elif isinstance(real_shape, dict) and isinstance(our_shape, dict) and real_shape.get("kind") != our_shape.get("kind"):
        out = [f".kind: {our_shape.get('kind')} (real: {real_shape.get('kind')})"]  # e.g. a Status for an object
    else:
        out = list(diff(real_shape, our_shape))
    return [f"{exchange.label}: {line}" for line in out]


def known_key(line: str) -> str:
    """A difference without the request index: ``file METHOD: path: what``, the unit the
    documented list is kept in (the same difference on several requests of a file is one)."""
    file, rest = line.split("#", 1)
    _, method, _, what = rest.split(" ", 3)
    return f"{file} {method}: {what}"
