"""metav1.Status bodies exactly as kube-apiserver writes them (spec §6, apimachinery
``pkg/api/errors/errors.go``), and the exception that carries one through the simulator."""

from __future__ import annotations

from typing import Any

Status = dict[str, Any]

NOT_FOUND_GENERIC = "the server could not find the requested resource"
TOO_MANY_REQUESTS_TEXT = "Too many requests, please try again later.\n"
"""spec §6: flow control and max-inflight answer 429 in plain text (priority-and-fairness.go)."""

LIST_EXPIRED = "The resourceVersion for the provided list is too old."
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token results "
    "in an inconsistent list - objects that were created, modified, or deleted between the time "
    "the first chunk was returned and now may show up in the list."
)
"""spec §1: etcd3/errors.go messages for compacted lists and continue tokens."""
WATCH_EXPIRED = "The resourceVersion for the provided watch is too old."
"""spec §2: etcd3/errors.go interpretWatchError for a compacted revision (uncached resources)."""


class SimApiError(Exception):
    """An API failure: ``status`` is the Status body, ``code`` the HTTP status."""

    def __init__(self, status: Status, headers: dict[str, str] | None = None) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.code: int = int(status["code"])
        self.headers = headers or {}
        retry = (status.get("details") or {}).get("retryAfterSeconds")
        if retry:
            # spec §6: details.retryAfterSeconds is copied into Retry-After (writers.go ErrorNegotiated)
            self.headers.setdefault("Retry-After", str(retry))


def failure(
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    continue_token: str | None = None,
) -> Status:
    """A Failure Status; ``details`` None omits the key, as Go's omitempty pointer does."""
    body: Status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {"continue": continue_token} if continue_token else {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(name: str | None, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    """StatusDetails in Go field order with omitempty (name, group, kind, uid, causes, retry)."""
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    if kind:
        out["kind"] = kind
    out.update({k: v for k, v in extra.items() if v})
    return out


def success(name: str, group: str, kind: str, uid: str) -> Status:
    """The body of a DELETE on stores without ReturnDeletedObject (spec §3, store.go finalizeDelete)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": _details(name, group, kind, uid=uid),
    }


def _qualified(group_resource: str, plural: str) -> str:
    return group_resource or plural


def not_found(group_resource: str, group: str, plural: str, name: str) -> SimApiError:
    """404 ``pods "x" not found`` (spec §6)."""
    return SimApiError(
        failure(404, "NotFound", f'{group_resource} "{name}" not found', _details(name, group, plural))
    )


def not_found_generic() -> SimApiError:
    """404 for an unknown path or resource (NewGenericServerResponse: empty details)."""
    return SimApiError(failure(404, "NotFound", NOT_FOUND_GENERIC, {}))


def already_exists(group_resource: str, group: str, plural: str, name: str) -> SimApiError:
    """409 AlreadyExists (spec §6, checklist 34)."""
    return SimApiError(
        failure(409, "AlreadyExists", f'{group_resource} "{name}" already exists', _details(name, group, plural))
    )


def conflict(group_resource: str, group: str, plural: str, name: str) -> SimApiError:
    """409 Conflict on a stale resourceVersion (spec §6, store.go:263)."""
    message = (
        f'Operation cannot be fulfilled on {group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return SimApiError(failure(409, "Conflict", message, _details(name, group, plural)))


def field_error(kind: str, field: str, detail: str, value: str | None = None) -> dict[str, str]:
    """One field.Error as a StatusCause; ``kind`` is Forbidden, Invalid, Required or NotSupported."""
    reasons = {
        "Forbidden": ("FieldValueForbidden", f"Forbidden: {detail}"),
        "Invalid": ("FieldValueInvalid", f"Invalid value: {value}: {detail}"),
        "Required": ("FieldValueRequired", f"Required value: {detail}"),
        "NotSupported": ("FieldValueNotSupported", f"Unsupported value: {value}: {detail}"),
    }
    reason, body = reasons[kind]
    return {"reason": reason, "message": body, "field": field}


def invalid(qualified_kind: str, group: str, kind: str, name: str, causes: list[dict[str, str]]) -> SimApiError:
    """422 Invalid: ``<Kind.group> "name" is invalid: <field>: <body>`` (errors.NewInvalid)."""
    texts = [f"{c['field']}: {c['message']}" for c in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(name, group, kind)
    details["causes"] = causes
    return SimApiError(failure(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {joined}', details))


def list_options_invalid(causes: list[dict[str, str]]) -> SimApiError:
    """spec §1 validation: 422 with kind ``ListOptions.meta.k8s.io`` (handlers/get.go)."""
    return invalid("ListOptions.meta.k8s.io", "meta.k8s.io", "ListOptions", "", causes)


def bad_request(message: str) -> SimApiError:
    """400 BadRequest, no details (errors.NewBadRequest)."""
    return SimApiError(failure(400, "BadRequest", message))


def expired(message: str, continue_token: str | None = None) -> SimApiError:
    """410 Expired (errors.NewResourceExpired); a paginated list may carry a fresh token."""
    return SimApiError(failure(410, "Expired", message, continue_token=continue_token))


def too_large_resource_version(requested: int, current: int) -> SimApiError:
    """504 Timeout with cause ResourceVersionTooLarge (spec §2, storage/errors.go)."""
    details = {
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    }
    message = f"Too large resource version: {requested}, current: {current}"
    return SimApiError(failure(504, "Timeout", message, details))


def unauthorized() -> SimApiError:
    """401 from the authentication filter (spec §6)."""
    return SimApiError(failure(401, "Unauthorized", "Unauthorized"))


def forbidden(user: str, verb: str, plural: str, group: str, namespace: str | None, name: str | None) -> SimApiError:
    """403 with the authorizer's exact wording (spec §6, responsewriters/errors.go)."""
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    subject = f'{plural}.{group}' if group else plural
    what = f'{subject} "{name}"' if name else subject
    message = f'{what} is forbidden: User "{user}" cannot {verb} resource "{plural}" in API group "{group}" {scope}'
    return SimApiError(failure(403, "Forbidden", message, _details(name, group, plural)))


def too_many_requests(retry_after: int) -> SimApiError:
    """429 TooManyRequests as a Status (handlers); flow control uses plain text instead."""
    details = {"retryAfterSeconds": retry_after}
    return SimApiError(failure(429, "TooManyRequests", "Too many requests, please try again later.", details))


def request_entity_too_large(limit: int) -> SimApiError:
    """413 for a body over the limit (handlers/rest.go limitedReadBody)."""
    return SimApiError(failure(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}"))


def unsupported_media_type(content_type: str, accepted: list[str]) -> SimApiError:
    """415 for a PATCH content type the server does not support."""
    message = (
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
    )
    return SimApiError(failure(415, "UnsupportedMediaType", message, {}))


def method_not_allowed(verb: str) -> SimApiError:
    """405 for a verb the resource does not support."""
    return SimApiError(failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}))


_GENERIC_REASONS = {
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    502: ("InternalError", "the server responded with the status code 502 but did not return more information"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request"),
}


def generic(code: int, retry_after: int | None = None) -> SimApiError:
    """A Status for an injected error storm (NewGenericServerResponse style)."""
    reason, message = _GENERIC_REASONS.get(code, ("Unknown", f"the server responded with the status code {code} but did not return more information"))
    details: dict[str, Any] = {}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return SimApiError(failure(code, reason, message, details))
