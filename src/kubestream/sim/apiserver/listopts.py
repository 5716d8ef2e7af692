"""LIST/WATCH query parameters: parsing and validation exactly as spec §1-§2 describe
(apimachinery ``pkg/apis/meta/internalversion/validation/validation.go``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubestream.sim.apiserver.requestinfo import is_true
from kubestream.sim.storage import status as st

EXACT = "Exact"
NOT_OLDER_THAN = "NotOlderThan"


@dataclass(slots=True)
class ListOptions:
    """Parsed ListOptions."""

    resource_version: str | None
    rv: int | None
    """The parsed resourceVersion; None when unset or empty."""
    match: str
    limit: int | None
    continue_token: str
    send_initial_events: bool | None
    """None when the parameter is absent (Go: nil pointer)."""
    allow_bookmarks: bool
    timeout_s: float | None
    label_selector: str | None
    field_selector: str | None

    @property
    def exact(self) -> bool:
        """spec §1 table: Exact when match=Exact, or RV="N" with limit and no match."""
        if not self.rv:
            return False
        return self.match == EXACT or (not self.match and bool(self.limit))

    @property
    def rv_is_zero(self) -> bool:
        """RV "0": any (possibly stale) state; the cacher ignores limit (spec §1, 1.32)."""
        return self.rv == 0


def _int(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise st.bad_request(f'{name}: Invalid value: "{raw}": strconv.ParseInt: parsing "{raw}": invalid syntax') from None


def parse_options(query: Mapping[str, str], *, watch: bool) -> ListOptions:
    """Parse and validate; raises 400 for malformed values and 422 for invalid combinations."""
    rv_raw = query.get("resourceVersion")
    rv: int | None = None
    if rv_raw:
        try:
            rv = int(rv_raw)
            if rv < 0:
                raise ValueError
        except ValueError:
            raise st.bad_request(
                f'resourceVersion: Invalid value: "{rv_raw}": strconv.ParseUint: parsing "{rv_raw}": invalid syntax'
            ) from None
    limit = _int("limit", query.get("limit"))
    timeout = _int("timeoutSeconds", query.get("timeoutSeconds"))
    opts = ListOptions(
        resource_version=rv_raw or None,
        rv=rv,
        match=query.get("resourceVersionMatch", ""),
        limit=limit if limit and limit > 0 else None,
        continue_token=query.get("continue", ""),
        send_initial_events=is_true(query["sendInitialEvents"]) if "sendInitialEvents" in query else None,
        allow_bookmarks=is_true(query.get("allowWatchBookmarks")),
        timeout_s=float(timeout) if timeout and timeout > 0 else None,
        label_selector=query.get("labelSelector"),
        field_selector=query.get("fieldSelector"),
    )
    causes = _watch_causes(opts) if watch else _list_causes(opts)
    if causes:
        raise st.list_options_invalid(causes)
    if not watch and opts.continue_token and opts.resource_version and opts.resource_version != "0":
        # spec §1: storage/interfaces.go — RV together with continue is a 400.
        raise st.bad_request("specifying resource version is not allowed when using continue")
    return opts


def _list_causes(o: ListOptions) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    if o.match:
        if not o.resource_version:
            causes.append(st.field_error("Forbidden", "resourceVersionMatch",
                                         "resourceVersionMatch is forbidden unless resourceVersion is provided"))
        if o.continue_token:
            causes.append(st.field_error("Forbidden", "resourceVersionMatch",
                                         "resourceVersionMatch is forbidden when continue is provided"))
        if o.match not in (EXACT, NOT_OLDER_THAN):
            causes.append(st.field_error("NotSupported", "resourceVersionMatch",
                                         'supported values: "Exact", "NotOlderThan", ""', f'"{o.match}"'))
        if o.match == EXACT and o.resource_version == "0":
            causes.append(st.field_error("Forbidden", "resourceVersionMatch",
                                         'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    if o.send_initial_events is not None:
        causes.append(st.field_error("Forbidden", "sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return causes


def _watch_causes(o: ListOptions) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    if o.send_initial_events is not None and o.match != NOT_OLDER_THAN:
        causes.append(st.field_error("Forbidden", "resourceVersionMatch",
                                     f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}"))
    if o.match:
        if o.send_initial_events is None:
            causes.append(st.field_error("Forbidden", "resourceVersionMatch",
                                         "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
        if o.match != NOT_OLDER_THAN:
            causes.append(st.field_error("NotSupported", "resourceVersionMatch",
                                         'supported values: "NotOlderThan"', f'"{o.match}"'))
        if o.continue_token:
            causes.append(st.field_error("Forbidden", "resourceVersionMatch",
                                         "resourceVersionMatch is forbidden when continue is provided"))
    return causes
