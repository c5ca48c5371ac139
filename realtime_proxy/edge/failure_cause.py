"""Why the upstream could not be reached, as one bounded word an operator can act on.

`dns` (name not resolved), `refused` (nothing listens), `tls` (certificate or TLS handshake),
`timeout`, `http_status` (the upstream answered, with a refusal) and `other`. The same words label
`realtime_proxy_upstream_failures_total` and appear as `cause=` in the log line of the failure.
"""

from __future__ import annotations

import errno
import socket
import ssl

from realtime_proxy.observe.metrics import UPSTREAM_FAILURE_CAUSES as CAUSES

__all__ = ["CAUSES", "cause_of"]
# asyncio's create_connection folds the failures of several addresses (localhost: ::1 and 127.0.0.1)
# into one OSError without an errno, keeping each failure's text: the refusal is found in that text.
_REFUSED_TEXT = f"[Errno {errno.ECONNREFUSED}]"


def cause_of(exc: BaseException) -> str:
    """The cause of a failed connection, looking through the exceptions it was raised from (the HTTP
    client's `UpstreamError` keeps the socket's as its context; groups hold one failure per address)."""
    return _search(exc, set())


def _search(exc: BaseException | None, seen: set[int]) -> str:
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        cause = _direct(exc)
        if cause != "other":
            return cause
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                if (cause := _search(inner, seen)) != "other":
                    return cause
        exc = exc.__cause__ or exc.__context__
    return "other"


def _direct(exc: BaseException) -> str:
    # Imported here: the HTTP client's package imports this module (failures are rare, the import cached).
    from realtime_proxy.edge.http.client import UpstreamTimedOut

    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls"
    if isinstance(exc, TimeoutError | UpstreamTimedOut):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, OSError) and exc.errno is None and _REFUSED_TEXT in str(exc):
        return "refused"
    return "other"
