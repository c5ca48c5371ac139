"""The proxy's HTTP handler: admission, repairs on the Realtime routes, then a streaming forward to
the configured upstream (`client.py`) with the response streamed back as it arrives."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from websockets.datastructures import Headers

from realtime_proxy.core.rules import ChainResult, RuleChain
from realtime_proxy.edge.auth import Admission, AdmissionRefused
from realtime_proxy.edge.failure_cause import cause_of
from realtime_proxy.edge.http.admission import RETRY_AFTER_SECONDS, QueueTimeout, UpstreamSlots
from realtime_proxy.edge.http.client import UpstreamClient, UpstreamError, UpstreamResponse, UpstreamTimedOut
from realtime_proxy.edge.http.exchange import BodyTimeout, BodyTooLarge, ClientGone, Exchange, error_body
from realtime_proxy.edge.http.repair import repair_body, session_route
from realtime_proxy.edge.http.routes import OTHER, BodyKind, HttpRoute, classify
from realtime_proxy.edge.target import REFUSAL as TARGET_REFUSAL
from realtime_proxy.edge.target import normalise_target, path_of
from realtime_proxy.edge.upstream import (
    HTTP_FORWARDED_HEADERS,
    BadRequestTarget,
    forwarded_headers,
    upstream_url,
)
from realtime_proxy.observe.logs import get_logger
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.settings import Settings

log = get_logger("proxy.http")
# Response headers that describe one hop only (RFC 9110 §7.6.1), plus cookies: the request leg
# never carries the client's cookies upstream, so the upstream's have no business on the client.
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
     b"trailers", b"transfer-encoding", b"upgrade", b"set-cookie"}
)  # fmt: skip


class Refused(Exception):
    """An answer the proxy gives itself, before or instead of forwarding."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        error_type: str = "invalid_request_error",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ):
        super().__init__(message)
        self.status, self.body = status, error_body(message, code=code, error_type=error_type)
        self.headers = headers


def http_base(ws_url: str) -> str:
    """wss://host -> https://host, ws://host -> http://host (the host is configuration only)."""
    return "https://" + ws_url[6:] if ws_url.startswith("wss://") else "http://" + ws_url[5:]


def relayed_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    named = {t.strip().lower() for k, v in raw if k.lower() == b"connection" for t in v.split(b",")}
    return [(k, v) for k, v in raw if k.lower() not in _HOP_BY_HOP and k.lower() not in named]


@dataclass(frozen=True, slots=True)
class _RouteSeries:
    """One route class's metric children (the route and status labels are bounded sets)."""

    requests: dict[str, Any]  # by status class
    duration: Any
    bytes_in: Any
    bytes_out: Any


class Forwarder:
    def __init__(self, settings: Settings, chain: RuleChain, admission: Admission, metrics: Metrics,
                 client: UpstreamClient) -> None:  # fmt: skip
        self.settings = settings
        self.chain = chain
        self.admission = admission
        self.metrics = metrics
        self.client = client  # no cookies, redirects or default headers (client.py)
        self.base = http_base(settings.upstream_url)
        h = settings.http
        self.slots = UpstreamSlots(h.max_concurrent_requests, h.queue_timeout, metrics)
        self._series: dict[str, _RouteSeries] = {}

    async def handle(self, exchange: Exchange) -> None:
        started = time.monotonic()
        head = exchange.head
        route, target = OTHER, ""
        outcome = "incomplete"
        # Each request runs in its own task: this binding reaches its rewrite and http_request lines.
        structlog.contextvars.clear_contextvars()
        # A correlation id, not a secret: 64 random bits without a getrandom syscall per request
        # (`random` is reseeded in each forked worker).
        request_id = f"{random.getrandbits(64):016x}"
        structlog.contextvars.bind_contextvars(request_id=request_id, client=exchange.client)
        try:
            # Classified on what the upstream will receive (target.py), never on the raw target.
            try:
                target = normalise_target(head.target, strict=self.admission.inject)
            except BadRequestTarget:
                raise Refused(400, "invalid_request_target", TARGET_REFUSAL) from None
            route = classify(head.method, path_of(target))
            outcome = await self._serve(exchange, route, target)
        except Refused as refused:
            outcome = "refused"
            with contextlib.suppress(ClientGone, BodyTimeout):
                await exchange.respond(refused.status, refused.body, extra=refused.headers)
        except ClientGone:
            outcome = "client_disconnected"
        finally:
            if exchange.gone and outcome in ("incomplete", "complete"):
                outcome = "client_disconnected"
            self._account(exchange, route, outcome, time.monotonic() - started)

    async def _serve(self, exchange: Exchange, route: HttpRoute, target: str) -> str:
        head = exchange.head
        headers = self._admit(Headers(head.headers), route)
        try:
            url = upstream_url(self.base, target)
        except BadRequestTarget:
            raise Refused(400, "invalid_request_target", TARGET_REFUSAL) from None
        content: bytes | AsyncIterator[bytes] | None = exchange.body() if head.has_body else None
        if route.body is not BodyKind.NONE and head.header("content-encoding") is None:
            try:
                raw = await exchange.read_all(self.settings.http.max_repair_body_bytes)
            except BodyTooLarge as exc:
                raise Refused(
                    413, "request_too_large", f"The request body is over {exc.limit} bytes."
                ) from None
            except BodyTimeout:
                raise Refused(408, "request_timeout", "The request body did not arrive in time.") from None
            content = self._repair(route, path_of(target), head.header("content-type") or "", raw)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("content-length", str(len(content))))
        return await self._forward(exchange, head.method, url, headers, content)

    def _admit(self, headers: Headers, route: HttpRoute) -> list[tuple[str, str]]:
        # In inject mode the key goes to the Realtime route classes only (`http.inject_routes`);
        # `auth.inject_paths` is the same rule for WebSocket handshakes.
        allowed = self.settings.http.inject_routes
        if self.admission.inject and route.name not in allowed and "other" not in allowed:
            raise Refused(403, "route_not_allowed", "This route is not available through the proxy.")
        try:
            upstream, _ = self.admission.admit(headers, [], path=None)
        except AdmissionRefused as refused:
            raise Refused(refused.status, refused.code, refused.message) from None
        forwarded = forwarded_headers(upstream, HTTP_FORWARDED_HEADERS)
        if self.admission.inject:  # uncompressed answers, so an error body can be scrubbed of the key
            forwarded = [(k, v) for k, v in forwarded if k.lower() != "accept-encoding"]
        return forwarded

    def _repair(self, route: HttpRoute, path: str, content_type: str, raw: bytes) -> bytes:
        repaired = repair_body(route.body, content_type, raw, self.chain, session_route(route, path))
        if repaired.result is not None:
            self._observe(route, repaired.result)
            refusal = repaired.result.refusal
            if refusal is not None and not repaired.result.observe_only:
                raise Refused(400, refusal.code, refusal.message)
        return repaired.body

    async def _forward(self, exchange: Exchange, method: str, url: str, headers: list[tuple[str, str]],
                       content: bytes | AsyncIterator[bytes] | None) -> str:  # fmt: skip
        try:
            await self.slots.acquire()
        except QueueTimeout:
            raise Refused(
                503,
                "proxy_overloaded",
                "The proxy has too many requests in flight; retry later.",
                "server_error",
                ((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),),
            ) from None
        try:
            return await self._exchange_upstream(exchange, method, url, headers, content)
        finally:
            self.slots.release()

    async def _exchange_upstream(self, exchange: Exchange, method: str, url: str,
                                 headers: list[tuple[str, str]],
                                 content: bytes | AsyncIterator[bytes] | None) -> str:  # fmt: skip
        try:
            response = await self.client.request(method, url, headers, content)
        except BodyTimeout:
            raise Refused(408, "request_timeout", "The request body did not arrive in time.") from None
        except UpstreamTimedOut as exc:
            self._failed(exc)
            raise Refused(
                504, "upstream_timeout", "The upstream did not answer in time.", "server_error"
            ) from None
        except UpstreamError as exc:
            self._failed(exc)
            raise Refused(
                502, "upstream_unreachable", "The proxy could not reach the upstream.", "server_error"
            ) from None
        try:
            # The API's own id for the request, which its support asks for (not a secret).
            structlog.contextvars.bind_contextvars(upstream_request_id=response.header(b"x-request-id"))
            if self.admission.inject and response.status >= 400:
                return await self._scrubbed(exchange, response)
            await exchange.start(response.status, relayed_headers(response.headers))
            try:
                async for chunk in response.chunks():  # raw bytes, as received
                    await exchange.send(chunk)
            except UpstreamError:
                return "upstream_disconnected"  # the client's response is cut short: closing tells it
            except BodyTimeout:
                return "client_stalled"
            await exchange.finish()
            return "complete"
        finally:
            await response.aclose()

    def _failed(self, exc: UpstreamError) -> None:
        """The request never got an answer: why, as a bounded cause, from the exception the client
        raised it over (its text is not logged: it may quote the URL's query)."""
        cause = cause_of(exc)
        behind = exc.__cause__ or exc.__context__ or exc
        self.metrics.upstream_failures_total.labels("http", cause).inc()
        log.warning("upstream_request_failed", cause=cause, error=type(behind).__name__,
                    upstream_host=urlsplit(self.base).netloc)  # fmt: skip

    async def _scrubbed(self, exchange: Exchange, response: UpstreamResponse) -> str:
        """An upstream error in inject mode, read whole (error bodies are small) and scrubbed: the
        key is the proxy's, and the API quotes keys, masked but with their last characters."""
        limit, body = self.settings.http.max_repair_body_bytes, b""
        async for chunk in response.chunks():
            body += chunk
            if len(body) > limit:
                raise Refused(
                    502, "upstream_error_too_large", "The upstream's error was too large.", "server_error"
                )
        body = self.admission.refusal_body(body)
        headers = [(k, v) for k, v in relayed_headers(response.headers) if k.lower() != b"content-length"]
        await exchange.start(response.status, [*headers, (b"content-length", str(len(body)).encode())])
        await exchange.send(body)
        await exchange.finish()
        return "complete"

    def _observe(self, route: HttpRoute, result: ChainResult) -> None:
        applied = not result.observe_only
        context: dict[str, Any] = {"route": route.name, "event_type": "session.update", "applied": applied}
        for rule, error in result.failures:
            self.metrics.rule_errors_total.labels(rule).inc()
            log.error("rule_error", **context, rule=rule, error=error)
        if result.refusal is not None:
            refusal = result.refusal
            self.metrics.refusals_total.labels(refusal.rule).inc()
            log.warning("refusal", **context, rule=refusal.rule, code=refusal.code, message=refusal.message)
            return
        for rewrite in result.rewrites:
            self.metrics.rewrites_total.labels(rewrite.rule).inc()
            log.info("rewrite", **context, rule=rewrite.rule, path=rewrite.path, before=rewrite.before,
                     after=rewrite.after, lossless=rewrite.lossless)  # fmt: skip

    def _account(self, exchange: Exchange, route: HttpRoute, outcome: str, seconds: float) -> None:
        status = f"{exchange.status // 100}xx" if exchange.status else "none"
        series = self._series.get(route.name)
        if series is None:  # once per route class: the label look-ups are not repeated per request
            m = self.metrics
            series = self._series[route.name] = _RouteSeries(
                {},
                m.http_request_duration.labels(route.name),
                m.http_bytes_total.labels(route.name, "request"),
                m.http_bytes_total.labels(route.name, "response"),
            )
        requests = series.requests.get(status)
        if requests is None:
            requests = series.requests[status] = self.metrics.http_requests_total.labels(route.name, status)
        requests.inc()
        series.duration.observe(seconds)
        if exchange.bytes_in:
            series.bytes_in.inc(exchange.bytes_in)
        if exchange.bytes_out:
            series.bytes_out.inc(exchange.bytes_out)
        log.info("http_request", method=exchange.head.method, route=route.name, status=exchange.status,
                 outcome=outcome, duration_s=round(seconds, 4), bytes_in=exchange.bytes_in,
                 bytes_out=exchange.bytes_out)  # fmt: skip
