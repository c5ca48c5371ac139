"""The client-facing server: admission, the upstream handshake (before the client's 101), hand-over to
a session, graceful shutdown. Framing lives in `wire`, dispatch in `listener`, sessions in
`session_builder` and `relay`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from proxy.core import compat
from proxy.core.rules import Rule
from proxy.edge.auth import Admission, AdmissionRefused
from proxy.edge.http import HttpService
from proxy.edge.listener import ClientLeg, json_response, phrase
from proxy.edge.relay import Relay
from proxy.edge.session_builder import PendingSession, SessionBuilder, upstream_host
from proxy.edge.upstream import (
    RELAYED_REFUSAL_HEADERS,
    BadRequestTarget,
    UpstreamFailure,
    UpstreamOptions,
    UpstreamRefused,
    client_ssl_context,
    forwarded_headers,
    offered_subprotocols,
    upstream_url,
)
from proxy.edge.upstream_leg import open_upstream
from proxy.edge.wire import LegTiming
from proxy.ops.logs import get_logger
from proxy.ops.metrics import Metrics
from proxy.ops.settings import Settings

log = get_logger("proxy.server")
SHUTDOWN_CLOSE_BOUND = 2.0  # after the grace period, how long closing handshakes may take


class ProxyServer:
    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        upstream_ssl: ssl.SSLContext | None = None,
        extra_rules: Sequence[Rule] = (),
    ) -> None:
        s = self.settings = settings
        self.metrics = metrics or Metrics()
        self.admission = Admission(s.auth)
        self.sessions = SessionBuilder(s, self.metrics, rng or random.Random(), extra_rules)
        self.chain = self.sessions.chain
        ping_timeout = s.ping_timeout if s.ping_interval else 0.0
        # A client that missed a pong will not answer a Close either: do not wait 10 s for it.
        self.client_timing = LegTiming(s.ping_interval, ping_timeout, min(ping_timeout or 10.0, 10.0))
        self.head_timeout, self.max_frame_bytes, self.compression = (
            s.handshake_timeout + 5,
            s.max_frame_bytes,
            s.compression,
        )
        tls = upstream_ssl or (
            client_ssl_context(verify=s.upstream_tls_verify, ca_bundle=s.upstream_ca_bundle)
            if s.upstream_url.startswith("wss://")
            else None
        )
        self.upstream_options = UpstreamOptions(
            s.max_frame_bytes,
            s.handshake_timeout,
            s.ping_interval or None,
            s.ping_timeout or None,
            s.compression,
            tls,
        )
        # Non-upgrade requests go here: plain HTTP to the upstream, session configs repaired on the way.
        self.http = HttpService(s, self.chain, self.admission, self.metrics, upstream_ssl=tls)
        self.http_factory: Callable[[], asyncio.Protocol] | None = self.http.factory
        self.connections: set[ClientLeg] = set()
        self.relays: set[Relay] = set()
        self.handshaking = 0  # admitted handshakes waiting for the upstream: they hold a session slot
        self._drained = asyncio.Event()  # set whenever the last session ends
        self.server: asyncio.Server | None = None
        self.ready = False

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        self.server = await loop.create_server(lambda: ClientLeg(self), s.host, s.port, ssl=ssl_context)
        self.ready = True

    # -- handshake ----------------------------------------------------------------------------

    def upgrade(self, leg: ClientLeg, request: Request) -> None:
        """Admit a WebSocket handshake: refused now, or the upstream is opened before the 101."""
        admitted = self._admit(leg, request)
        if isinstance(admitted, Response):
            leg.refuse(admitted)
            return
        self.handshaking += 1
        task = asyncio.get_running_loop().create_task(self._connect(leg, request, *admitted))
        leg.on_lost = task.cancel

    def _admit(
        self, leg: ClientLeg, request: Request
    ) -> Response | tuple[str, list[tuple[str, str]], list[str], bool]:
        s = self.settings
        if not self.ready or len(self.relays) + self.handshaking >= s.max_sessions:
            self.metrics.handshakes_total.labels("rejected_capacity").inc()
            message = "The proxy is at its session limit; retry later."
            return json_response(503, "proxy_at_capacity", message, error_type="server_error")
        try:
            headers, subprotocols = self.admission.admit(
                request.headers, offered_subprotocols(request.headers)
            )
        except AdmissionRefused as refused:
            self.metrics.handshakes_total.labels(refused.result).inc()
            return json_response(refused.status, refused.code, refused.message)
        beta = compat.is_beta_handshake({k.lower(): v for k, v in headers.raw_items()}, subprotocols)
        if beta:
            self.metrics.beta_sessions_total.labels(s.compat.beta_clients).inc()
            if s.compat.beta_clients == "reject":
                self.metrics.handshakes_total.labels("rejected_beta").inc()
                message = (
                    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
                )
                return json_response(400, "beta_api_shape_disabled", message)
        translate = beta and s.compat.beta_clients == "translate"
        forwarded = forwarded_headers(headers)
        if translate:
            plain, subprotocols = compat.strip_beta_markers(dict(forwarded), subprotocols)
            forwarded = list(plain.items())
        try:
            url = upstream_url(s.upstream_url, request.path)
        except BadRequestTarget as exc:
            return json_response(400, "invalid_request_target", str(exc))
        return url, forwarded, subprotocols, translate

    async def _connect(
        self,
        leg: ClientLeg,
        request: Request,
        url: str,
        forwarded: list[tuple[str, str]],
        offered: list[str],
        beta: bool,
    ) -> None:
        started = time.monotonic()
        try:
            upstream = await open_upstream(url, forwarded, offered, self.upstream_options)
        except UpstreamFailure as failure:
            self.handshaking -= 1
            leg.refuse(self._failure_response(failure, request.path))
            return
        except asyncio.CancelledError:
            self.handshaking -= 1
            log.info("client_left_during_upstream_handshake", client=leg.remote)
            return
        self.handshaking -= 1
        self.metrics.upstream_connect.observe(time.monotonic() - started)
        self.metrics.handshakes_total.labels("ok").inc()
        if not leg.accept(request, upstream.subprotocol):
            upstream.close(1001, "client connection lost")
            return
        query = dict(parse_qsl(request.path.partition("?")[2]))
        path = request.path.split("?", 1)[0]
        pending = PendingSession(
            beta, uuid.uuid4().hex[:16], started, leg.remote, query.get("model"), path, query
        )
        relay = self.sessions.start(leg, upstream, pending, self._ended)
        self.relays.add(relay)
        relay.start()

    def _failure_response(self, failure: UpstreamFailure, path: str) -> Response:
        result = _handshake_result(failure)
        self.metrics.handshakes_total.labels(result).inc()
        host = upstream_host(self.settings.upstream_url)
        log.warning(
            "upstream_handshake_failed",
            status=failure.status,
            code=failure.code,
            upstream_host=host,
            path=path.split("?", 1)[0],
        )
        if isinstance(failure, UpstreamRefused):
            relayed = [(k, v) for k, v in failure.headers.raw_items() if k.lower() in RELAYED_REFUSAL_HEADERS]
            return Response(failure.status, phrase(failure.status), Headers(relayed), failure.body)
        if failure.status == 504:
            message = "The upstream did not answer the handshake in time."
        else:
            message = "The proxy could not reach the upstream."
        return json_response(failure.status, failure.code, message, error_type="server_error")

    def _ended(self, relay: Relay) -> None:
        self.relays.discard(relay)
        if not self.relays:
            self._drained.set()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions run for `grace` seconds, then close them with 1001; closing
        handshakes get a short bound, then every connection is dropped."""
        grace = self.settings.shutdown_grace if grace is None else grace
        self.ready = False
        if self.server is None:
            return
        self.server.close()
        for leg in [c for c in self.connections if c.sink is None and not c.upgrading]:
            leg.abort()  # idle connections that never sent a request
        if self.relays:
            log.info("shutdown_draining", sessions=len(self.relays), grace_s=grace)
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._drained.wait()
        for relay in list(self.relays):
            relay.stop("shutdown", 1001, "proxy shutting down")
        if self.relays:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_CLOSE_BOUND):
                    await self._drained.wait()
        for relay in list(self.relays):
            relay.abort()
        for leg in list(self.connections):
            leg.abort()
        await self.http.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await self.server.wait_closed()


def _handshake_result(failure: UpstreamFailure) -> str:
    if isinstance(failure, UpstreamRefused):
        if failure.status in (401, 403, 404, 429):
            return f"refused_{failure.status}"
        return "refused_5xx" if failure.status >= 500 else "refused_4xx"
    return "timeout" if failure.status == 504 else "unreachable"
