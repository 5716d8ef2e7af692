"""The exception tree of kubestream.

Every error the agent raises on purpose is a ``KubestreamError``::

    KubestreamError
    ├── ConfigError                  a configuration file or value is wrong (names the key path)
    ├── KubeError                    talking to the Kubernetes API failed
    │   ├── ApiStatusError           the API answered with a non-2xx status (carries code/reason/body)
    │   │   ├── UnauthorizedError    401: credentials rejected
    │   │   ├── ForbiddenError       403: RBAC denies the request
    │   │   ├── ExpiredError         410 Gone / reason Expired: the resourceVersion or continue token is too old
    │   │   ├── TooManyRequestsError 429: back off (honours Retry-After)
    │   │   └── TooLargeResourceVersionError  504 with cause ResourceVersionTooLarge
    │   ├── WatchStreamError         the watch stream broke (cut connection, bad frame, inactivity)
    │   └── KubeConnectionError      the API server could not be reached
    │       └── KubeTlsError         the TLS handshake failed (untrusted certificate, name mismatch)
    ├── SinkError                    delivering a batch failed
    │   ├── SinkRetryableError       a retry may succeed (5xx, SlowDown, timeouts); may carry retry_after
    │   │   └── SinkUnreachableError no answer at all (refused, reset, timed out): the sink is not reachable
    │   ├── SinkRejectedError        this one object is refused for good (too large, bad name): a dead letter
    │   └── SinkFatalError           retrying cannot help (bad credentials, missing bucket, access denied)
    ├── SpoolFullError               the local spool reached its size bound (sources must pause)
    └── StateError                   the embedded state store is unusable

Retry decisions are made on the class, never by parsing messages.
"""

from __future__ import annotations


class KubestreamError(Exception):
    """Base of every error kubestream raises on purpose."""


class ConfigError(KubestreamError):
    """A configuration problem; ``key`` is the dotted path of the offending option."""

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


class KubeError(KubestreamError):
    """Talking to the Kubernetes API failed."""


class ApiStatusError(KubeError):
    """The API server answered with an error status."""

    def __init__(
        self,
        code: int,
        reason: str = "",
        message: str = "",
        *,
        retry_after: float | None = None,
        body: object = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.body = body
        super().__init__(f"{code} {reason}: {message}".strip())


class UnauthorizedError(ApiStatusError):
    """401: the credentials were rejected."""


class ForbiddenError(ApiStatusError):
    """403: RBAC denies the request."""


class ExpiredError(ApiStatusError):
    """410 Gone / Expired: the resourceVersion or continue token is no longer available."""


class TooManyRequestsError(ApiStatusError):
    """429: the server asks us to slow down."""


class TooLargeResourceVersionError(ApiStatusError):
    """504 Timeout with cause ResourceVersionTooLarge: the server has not caught up yet."""


class WatchStreamError(KubeError):
    """The watch stream broke: connection cut, undecodable frame, or inactivity timeout."""


class KubeConnectionError(KubeError):
    """The API server could not be reached."""


class KubeTlsError(KubeConnectionError):
    """The TLS handshake with the API server failed: ``host`` and the verifier's ``reason``."""

    def __init__(self, message: str, *, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(message)


class SinkError(KubestreamError):
    """Delivering a batch to a sink failed."""


class SinkRetryableError(SinkError):
    """A later attempt may succeed; ``retry_after`` (seconds) is the server's hint, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class SinkUnreachableError(SinkRetryableError):
    """The sink gave no answer at all (connection refused or reset, timeout): it is unreachable."""


class SinkRejectedError(SinkError):
    """The sink refuses this one object for good (413/EntityTooLarge, a key it cannot store);
    other objects may go through, so the batch becomes a dead letter instead of stopping the agent."""


class SinkFatalError(SinkError):
    """Retrying cannot help: bad credentials, missing bucket, access denied, read-only target."""


class SpoolFullError(KubestreamError):
    """The local spool is at its size bound; sources must pause until it drains."""


class StateError(KubestreamError):
    """The embedded state store is unusable."""
