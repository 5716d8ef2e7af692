"""Checks made before anything starts, by ``kubestream run`` and ``kubestream validate`` alike.

The loader checks the file (syntax, types, bounds, rules between options). What it cannot see
is checked here: the environment (NODE_NAME, the kubeconfig, the state directory), the rules
that need the sources' parsers (label selectors, multi-line patterns) and the sink's own
construction. ``run`` calls ``preflight`` first thing and ``validate`` calls the very same
function, so a configuration ``validate`` passes is not refused by ``run`` a moment later, and
both name the problem with the same single line (a ``ConfigError``, exit 2).

It also settles ``cluster.name``: unset, it becomes the cluster of the kubeconfig context in use
(the kubeconfig is read here anyway); in a pod there is no such context and the name is
required, so no record is ever written without one.

Nothing here starts a process, opens a connection or leaves a file behind: the kubeconfig is
read, not loaded (no exec credential plugin runs), the sink is built and closed unused, and
directories are probed with a temporary entry that is removed at once.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from kubestream.agent.routing import check_destinations
from kubestream.config.loader import check_settings
from kubestream.config.settings import KubeSettings, Settings, SinkSettings, cluster_name_problem
from kubestream.errors import ConfigError
from kubestream.sources.logs.selection import parse_label_selector

__all__ = ["log_warnings", "preflight"]

log = logging.getLogger("kubestream.preflight")

# The official client's in-cluster rule (kube/client.py): no kubeconfig set, the service host in
# the environment and the service-account token mounted.
_IN_CLUSTER_TOKEN: Final = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_DEFAULT_KUBECONFIG: Final = "~/.kube/config"
_MAX_KUBECONFIG_BYTES: Final = 16 * 1024 * 1024
_KUBECONFIG_FILE_KEYS: Final = ("certificate-authority", "client-certificate", "client-key", "tokenFile")


async def preflight(settings: Settings, *, environ: Mapping[str, str] | None = None,
                    token_path: str = _IN_CLUSTER_TOKEN) -> list[str]:
    """Raise ``ConfigError`` (one line, naming the option) for the first problem found; return
    the warnings (insecure but allowed choices), each one line, for the caller to show once.

    An unset ``cluster.name`` is filled in with the kubeconfig context's cluster (see the module
    docstring), so what ``run`` then writes carries the name ``validate`` reported. ``token_path``:
    the service-account token whose presence (with ``KUBERNETES_SERVICE_HOST``) means "in a pod"."""
    env = os.environ if environ is None else environ
    check_settings(settings)  # settings built in code (the demo, tests) skip the loader
    _check_components(settings, env)
    _check_log_selection(settings)
    check_destinations(settings)
    _check_directories(settings)
    context = _check_kubeconfig(settings.kube, env, token_path)
    settings.cluster.name = _cluster_name(settings, context)
    warnings = context.warnings if context is not None else []
    warnings += _kubelet_warnings(settings)
    warnings += await _check_sink(settings, env)
    return warnings


def log_warnings(warnings: list[str]) -> None:
    """Log each preflight warning once, as a WARNING of ``kubestream.preflight``."""
    for warning in warnings:
        log.warning("%s", warning)


# --- what runs ------------------------------------------------------------------------------


def _check_components(settings: Settings, env: Mapping[str, str]) -> None:
    s = settings
    if not (s.events.enabled or s.logs.enabled):
        raise ConfigError("nothing to do: enable events, logs or both", key="events.enabled")
    if s.leader_election.enabled and s.encoding.format == "protobuf" and s.encoding.protobuf_message == "k8stream":
        raise ConfigError("leader election needs an archive it can read back; the k8stream protobuf "
                          "message drops event uids and counts", key="encoding.protobuf_message")
    if s.leader_election.enabled and s.logs.enabled:
        raise ConfigError("leader election is for the events collector; node agents (logs.enabled) all run",
                          key="leader_election.enabled")
    if s.compaction.interval_s is not None and not s.events.enabled:
        raise ConfigError("periodic compaction is a task of the events collector (one compactor per archive); "
                          "node agents never compact: unset it, or run `kubestream compact`",
                          key="compaction.interval_s")
    if s.compaction.interval_s is not None and s.archive_destination() is None:
        raise ConfigError("periodic compaction needs an archive: none of the destinations is a file or "
                          "object-store sink", key="compaction.interval_s")
    if s.logs.enabled and not (s.logs.node_name or env.get("NODE_NAME")):
        raise ConfigError("the node agent needs its node's name: set logs.node_name or NODE_NAME",
                          key="logs.node_name")


def _check_log_selection(settings: Settings) -> None:
    """Selectors and patterns are checked even with logs disabled: a shared file (the chart's
    ``config:``) must not hide a mistake until the one component that reads it starts."""
    logs = settings.logs
    if logs.label_selector:
        parse_label_selector(logs.label_selector)  # raises ConfigError keyed logs.label_selector
    if not logs.multiline:
        return
    # Imported only when needed: it pulls in the regular-expression engine of the logs source.
    from kubestream.sources.logs.multiline import compile_start_pattern

    for index, rule in enumerate(logs.multiline):
        try:
            compile_start_pattern(rule.start_pattern)
        except ValueError as exc:
            raise ConfigError(_one_line(exc), key=f"logs.multiline[{index}].start_pattern") from None


# --- directories ----------------------------------------------------------------------------


def _check_directories(settings: Settings) -> None:
    _check_writable_dir(settings.state.dir, "state.dir")
    if settings.spool.dir is not None or settings.spool_dir.exists():
        _check_writable_dir(settings.spool_dir, "spool.dir")


def _check_writable_dir(path: Path, key: str) -> None:
    """``path`` is a writable directory, or can be created: probed with a temporary entry (a
    permission check alone misses read-only mounts for root and pseudo file systems)."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        where = f"{path} is not a directory" if existing == path else \
            f"cannot create {path}: {existing} is not a directory"
        raise ConfigError(where, key=key)
    try:
        if existing == path:
            with tempfile.TemporaryFile(dir=path, prefix=".kubestream-probe-"):
                pass
        else:
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".kubestream-probe-"))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = f"{path} is not writable ({reason})" if existing == path else \
            f"cannot create {path} ({existing}: {reason})"
        raise ConfigError(where, key=key) from None


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


# --- kubeconfig -----------------------------------------------------------------------------


class _Context:
    """The kubeconfig context the client will use: its cluster's name and the warnings about it."""

    def __init__(self, cluster: str, warnings: list[str]) -> None:
        self.cluster = cluster
        self.warnings = warnings


def _cluster_name(settings: Settings, context: _Context | None) -> str:
    """``cluster.name``, else the kubeconfig context's cluster; ``ConfigError`` in a pod without one."""
    if settings.cluster.name is not None:
        return settings.cluster.name
    if context is None:
        raise ConfigError("required when running in a pod (in-cluster): every record carries it as `cluster`, "
                          "and a pod has no kubeconfig context to take it from", key="cluster.name")
    problem = cluster_name_problem(context.cluster)
    if problem:
        raise ConfigError(f"the kubeconfig context's cluster cannot be used as the default: {problem}; "
                          "set cluster.name", key="cluster.name")
    return context.cluster


def _check_kubeconfig(kube: KubeSettings, env: Mapping[str, str], token_path: str) -> _Context | None:
    """Read the kubeconfig the client will load and check the context it will use; warn when
    that context turns TLS verification off. None in a pod (the service account is used)."""
    if not kube.kubeconfig and "KUBERNETES_SERVICE_HOST" in env and os.path.exists(token_path):
        return None  # in a pod: the service account, nothing to read beforehand
    if kube.kubeconfig:
        spec, origin = kube.kubeconfig, ""
    elif env.get("KUBECONFIG"):
        spec, origin = env["KUBECONFIG"], " (from KUBECONFIG)"
    else:
        spec, origin = _DEFAULT_KUBECONFIG, " (the default: set kube.kubeconfig or KUBECONFIG, or run in a pod)"
    # Like the client's loader (KubeConfigMerger): a list of files; missing ones are skipped.
    paths = [Path(os.path.expanduser(p)) for p in spec.split(os.pathsep) if p]
    existing = [p for p in paths if p.exists()]
    if not existing:
        raise ConfigError(f"{spec}: file does not exist{origin}", key="kube.kubeconfig")
    merged = _merge([(p, _read_kubeconfig(p)) for p in existing])
    return _check_context(merged, kube, spec)


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{path}: not a usable kubeconfig: {problem}", key="kube.kubeconfig")

    if path.is_dir():
        raise fail("is a directory")
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_KUBECONFIG_BYTES + 1)
    except OSError as exc:
        raise fail(exc.strerror or type(exc).__name__) from None
    if len(data) > _MAX_KUBECONFIG_BYTES:
        raise fail(f"larger than {_MAX_KUBECONFIG_BYTES // (1024 * 1024)} MiB")
    try:
        document = yaml.safe_load(data)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise fail(f"YAML syntax error{at}: {exc.problem or exc.context or 'invalid YAML'}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise fail(f"YAML error: {_one_line(exc)}") from None
    if not isinstance(document, dict):
        raise fail("expected a mapping with clusters, contexts and users")
    for section in ("clusters", "contexts", "users"):
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise fail(f"{section} must be a list")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise fail(f"{section}[{index}] has no name")
    return document


class _Merged:
    """The kubeconfig files merged as the client's loader merges them: the first file naming an
    entry wins it; ``current-context`` comes from the last file that sets one."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {
            "clusters": {}, "contexts": {}, "users": {}}
        self.current_context: str | None = None


def _merge(files: list[tuple[Path, dict[str, Any]]]) -> _Merged:
    merged = _Merged()
    for path, document in files:
        for section, entries in merged.sections.items():
            for entry in document.get(section) or []:
                entries.setdefault(entry["name"], (path, entry))
        if document.get("current-context"):
            merged.current_context = str(document["current-context"])
    return merged


def _check_context(merged: _Merged, kube: KubeSettings, spec: str) -> _Context:
    contexts = merged.sections["contexts"]
    known = ", ".join(sorted(contexts)) or "none"
    name = kube.context or merged.current_context
    if not name:
        raise ConfigError(f"{spec} sets no current-context: set kube.context (contexts: {known})",
                          key="kube.context")
    if name not in contexts:
        raise ConfigError(f"no context {name!r} in {spec} (contexts: {known})",
                          key="kube.context" if kube.context else "kube.kubeconfig")
    path, entry = contexts[name]
    body = entry.get("context")
    cluster_name = body.get("cluster") if isinstance(body, dict) else None
    if not isinstance(cluster_name, str) or cluster_name not in merged.sections["clusters"]:
        raise ConfigError(f"context {name!r} names cluster {cluster_name!r}, which {spec} does not define",
                          key="kube.context" if kube.context else "kube.kubeconfig")
    cluster_path, cluster_entry = merged.sections["clusters"][cluster_name]
    cluster = cluster_entry.get("cluster")
    if not isinstance(cluster, dict) or not cluster.get("server"):
        raise ConfigError(f"cluster {cluster_name!r} in {cluster_path} has no server", key="kube.kubeconfig")
    user_name = body.get("user") if isinstance(body, dict) else None
    user_entry = merged.sections["users"].get(str(user_name), (path, {}))[1] if user_name else {}
    user = user_entry.get("user")
    if str(cluster["server"]).startswith("https") and not isinstance(user, dict):
        # The client's loader reads client certificates from the user entry and fails without one.
        raise ConfigError(f"context {name!r} in {path} names no user{'' if not user_name else f' it defines ({user_name!r})'}: "
                          "the Kubernetes client needs one for an https server (`user: {}` will do)",
                          key="kube.kubeconfig")
    _check_referenced_files(cluster, cluster_path)
    if isinstance(user, dict):
        _check_referenced_files(user, merged.sections["users"][str(user_name)][0])
    return _Context(cluster_name, _tls_warnings(cluster, cluster_name, cluster_path))


def _check_referenced_files(section: dict[str, Any], kubeconfig: Path) -> None:
    """Certificate, key and token files a kubeconfig names, relative to the kubeconfig's directory."""
    for key in _KUBECONFIG_FILE_KEYS:
        value = section.get(key)
        if isinstance(value, str) and value and not (kubeconfig.parent / os.path.expanduser(value)).is_file():
            raise ConfigError(f"{kubeconfig}: {key} {value!r} does not exist", key="kube.kubeconfig")


def _tls_warnings(cluster: dict[str, Any], name: str, path: Path) -> list[str]:
    server = str(cluster.get("server"))
    if _plain_http_off_host(server):
        return [f"kube: the Kubernetes API server {server} (cluster {name!r} in {path}) is reached over plain "
                "http: tokens and data cross the network unencrypted; use https"]
    if cluster.get("insecure-skip-tls-verify") in (True, "true"):
        return [f"kube: TLS verification of the Kubernetes API server is off (insecure-skip-tls-verify in "
                f"{path}, cluster {name!r}): anyone on the network path can impersonate the server and "
                "read the credentials; set certificate-authority(-data) instead"]
    return []


# --- the kubelet (logs.metadata_source: kubelet) ----------------------------------------------


def _kubelet_warnings(settings: Settings) -> list[str]:
    """Check the kubelet credentials files of a logs-only node agent in kubelet mode; warn about
    the insecure choice, and about the mode being unused when events run in the same process."""
    logs = settings.logs
    if not logs.enabled or logs.metadata_source != "kubelet":
        return []
    if settings.events.enabled:
        return ["logs: metadata_source kubelet is ignored while events are enabled in the same agent "
                "(the events need every pod, from the API server); run the node agent with events disabled"]
    kubelet = logs.kubelet
    if not kubelet.token_file.is_file():
        raise ConfigError(f"the kubelet bearer token file {kubelet.token_file} does not exist",
                          key="logs.kubelet.token_file")
    if kubelet.insecure_skip_tls_verify:
        return ["logs: TLS verification of the kubelet is off (logs.kubelet.insecure_skip_tls_verify): anyone on "
                "the network path can impersonate it and read the bearer token; set logs.kubelet.ca_file instead"]
    if not kubelet.ca_file.is_file():
        raise ConfigError(f"the kubelet CA file {kubelet.ca_file} does not exist", key="logs.kubelet.ca_file")
    return []


# --- the sink -------------------------------------------------------------------------------


async def _check_sink(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """Build the sink as ``run`` will (its ConfigErrors: endpoint, profile, account...), close it
    unused, and warn when credentials would travel over plain http."""
    # Imported here: the object-store sinks load their client library, the file sink does not.
    from kubestream.sinks.factory import make_destination_sink

    if not settings.sinks:
        sink = make_destination_sink(settings.sink)
        try:
            return _plain_http_warnings(settings.sink, "sink", sink, env)
        finally:
            await sink.close()
    warnings: list[str] = []
    for index, destination in enumerate(settings.sinks):
        try:
            built = make_destination_sink(destination)
        except ConfigError as exc:
            if exc.key is None or not exc.key.startswith("sink."):
                raise
            message = str(exc).removeprefix(f"{exc.key}: ")
            raise ConfigError(message, key=f"sinks[{index}].{exc.key.removeprefix('sink.')}") from None
        try:
            warnings += _plain_http_warnings(destination, f"sinks[{index}]", built, env)
        finally:
            await built.close()
    return warnings


def _plain_http_warnings(settings: SinkSettings, at: str, sink: object, env: Mapping[str, str]) -> list[str]:
    kind = settings.type
    endpoint = getattr(sink, "endpoint", None)
    if kind not in ("s3", "gcs", "azure") or not isinstance(endpoint, str) or not _plain_http_off_host(endpoint):
        return []
    if not _has_credentials(settings, sink, env):
        return []
    return [f"{at}.{kind}.endpoint_url: credentials are used over plain http with {endpoint}: anyone on the "
            "network path can read the data and replay or steal the credentials; use https"]


def _plain_http_off_host(url: str) -> bool:
    """An http:// URL whose host is not this machine (loopback traffic never leaves it)."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _has_credentials(settings: SinkSettings, sink: object, env: Mapping[str, str]) -> bool:
    kind = settings.type
    if kind == "s3":
        credentials = getattr(sink, "credentials", None)
        return getattr(credentials, "provider", None) is not None or bool(
            env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"))
    if kind == "gcs":
        gcs = settings.gcs
        return bool(gcs.service_account_path or gcs.application_credentials_path
                    or env.get("GOOGLE_APPLICATION_CREDENTIALS") or env.get("GOOGLE_SERVICE_ACCOUNT"))
    # azure: the same resolution the sink made (explicit keys, connection string, emulator key).
    from kubestream.sinks.objectstore import resolve_azure

    target = resolve_azure(settings.azure)
    return target.access_key is not None or target.sas_token is not None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
