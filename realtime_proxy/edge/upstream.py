"""The upstream leg of a session: URL, forwarded headers and subprotocols, and the handshake.

The upstream host comes from configuration only; the client contributes a path and a query.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from websockets.datastructures import Headers

from realtime_proxy.edge.target import BadRequestTarget as BadRequestTarget  # raised by upstream_url
from realtime_proxy.edge.target import visible_ascii
from realtime_proxy.settings import Settings

# Auth and identity headers the API reads; everything else (hop-by-hop, cookies, Host, Origin,
# Sec-WebSocket-*) stays on the client leg.
FORWARDED_HEADERS = frozenset(
    {"authorization", "api-key", "openai-organization", "openai-project", "openai-beta", "user-agent"}
)
# Plain HTTP requests also need their body's description and content negotiation.
HTTP_FORWARDED_HEADERS = FORWARDED_HEADERS | {
    "accept",
    "accept-encoding",
    "content-encoding",
    "content-length",
    "content-type",
    "idempotency-key",
}
# Headers of a refused upstream handshake worth passing back to the client.
RELAYED_REFUSAL_HEADERS = frozenset({"content-type", "retry-after", "x-request-id", "openai-processing-ms"})


class UpstreamFailure(Exception):
    """The upstream handshake did not succeed; `status` is what the client gets."""

    status: int = 502
    code: str = "upstream_unreachable"
    cause: str = "other"  # one of failure_cause.CAUSES
    error: str = ""  # the type name of the exception behind it, for the log line (never its text)


class UpstreamRefused(UpstreamFailure):
    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        super().__init__(f"upstream refused the handshake with HTTP {status}")
        self.status = status
        self.headers = headers
        self.body = body
        self.code = "upstream_refused"
        self.cause = "http_status"


class UpstreamUnreachable(UpstreamFailure):
    status = 502
    code = "upstream_unreachable"

    def __init__(self, message: str, *, cause: str = "other", error: str = "") -> None:
        super().__init__(message)
        self.cause, self.error = cause, error


class UpstreamTimeout(UpstreamFailure):
    status = 504
    code = "upstream_timeout"
    cause = "timeout"


def upstream_url(base: str, request_target: str) -> str:
    """Base URL from config + the client's path and query, e.g.
    `wss://api.openai.com` + `/v1/realtime?model=gpt-realtime`.

    Only origin-form targets are accepted: absolute URLs, `//host` authorities, backslashes,
    control characters and non-ASCII bytes (which websockets cannot put in a URL: it raised and the
    client got a 500) are refused so that nothing the client sends can change the host."""
    if (
        not request_target.startswith("/")
        or request_target.startswith("//")
        or "\\" in request_target
        or "#" in request_target  # callers pass target.normalise_target's result: no fragment
        or not visible_ascii(request_target)
    ):
        raise BadRequestTarget
    url = base.rstrip("/") + request_target
    if urlsplit(url).netloc != urlsplit(base).netloc:  # belt and braces
        raise BadRequestTarget
    return url


def forwarded_headers(headers: Headers, allowed: frozenset[str] = FORWARDED_HEADERS) -> list[tuple[str, str]]:
    # RFC 9110 §7.6.1: headers named in Connection are hop-by-hop, even an otherwise allowed X-*.
    hop = {t.strip().lower() for v in headers.get_all("Connection") for t in v.split(",")}
    return [
        (name, value)
        for name, value in headers.raw_items()
        if name.lower() not in hop and (name.lower() in allowed or name.lower().startswith("x-"))
    ]


def offered_subprotocols(headers: Headers) -> list[str]:
    offered: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        offered.extend(item.strip() for item in value.split(",") if item.strip())
    return offered


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    max_size: int
    open_timeout: float
    ping_interval: float | None
    ping_timeout: float | None
    compression: bool
    ssl_context: ssl.SSLContext | None
    write_stall_timeout: float = 30.0
    max_fragments: int = 1024


def upstream_options(settings: Settings, upstream_ssl: ssl.SSLContext | None = None) -> UpstreamOptions:
    """How to reach the configured upstream: limits, pings, and TLS (verified unless configured off)."""
    s = settings
    tls = upstream_ssl or (
        client_ssl_context(verify=s.upstream_tls_verify, ca_bundle=s.upstream_ca_bundle)
        if s.upstream_url.startswith("wss://")
        else None
    )
    return UpstreamOptions(
        s.max_frame_bytes,
        s.handshake_timeout,
        s.ping_interval or None,
        s.ping_timeout or None,
        s.compression,
        tls,
        s.write_stall_timeout,
        s.max_fragments,
    )


def client_ssl_context(*, verify: bool, ca_bundle: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
