"""The client-facing server: admission, the upstream handshake (before the client's 101), hand-over to
a session, graceful shutdown. Framing lives in `wire`, dispatch in `listener`, sessions in
`session_builder` and `relay`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from websockets.http11 import Request, Response

from realtime_proxy.core.closing import SessionOutcome
from realtime_proxy.core.rules import Rule
from realtime_proxy.edge.admit import (
    UpstreamPlan,
    admit,
    capacity_refusal,
    failure_response,
    handshake_result,
)
from realtime_proxy.edge.auth import Admission
from realtime_proxy.edge.continuity import UpstreamTarget
from realtime_proxy.edge.http import HttpService
from realtime_proxy.edge.listener import ClientLeg
from realtime_proxy.edge.relay import Relay
from realtime_proxy.edge.session_builder import PendingSession, SessionBuilder, upstream_host
from realtime_proxy.edge.shared_limits import LocalSlots, SessionSlots
from realtime_proxy.edge.upstream import UpstreamFailure, upstream_options
from realtime_proxy.edge.upstream_retry import Attempt, backoff_policy, open_with_retries
from realtime_proxy.edge.wire import LegTiming
from realtime_proxy.observe.logs import get_logger
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.settings import Settings

if TYPE_CHECKING:  # the otel extra is optional
    from realtime_proxy.observe.otel import Tracing

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
        tracing: Tracing | None = None,
        slots: SessionSlots | None = None,
    ) -> None:
        """`slots`: session admission shared by every worker of a supervisor (default: this process's)."""
        s = self.settings = settings
        self.metrics = metrics or Metrics(models=settings.prices, live_models=settings.live_prices)
        self.admission = Admission(s.auth)
        self.rng = rng or random.Random()
        self.sessions = SessionBuilder(s, self.metrics, self.rng, extra_rules, tracing)
        self.chain = self.sessions.chain
        ping_timeout = s.ping_timeout if s.ping_interval else 0.0
        # A client that missed a pong will not answer a Close either: do not wait 10 s for it.
        self.client_timing = LegTiming(
            s.ping_interval,
            ping_timeout,
            min(ping_timeout or 10.0, 10.0),
            write_stall_timeout=s.write_stall_timeout,
            max_fragments=s.max_fragments,
        )
        self.head_timeout, self.max_frame_bytes, self.compression = (
            s.handshake_timeout + 5,
            s.max_frame_bytes,
            s.compression,
        )
        self.upstream_options = upstream_options(s, upstream_ssl)
        # Non-upgrade requests go here: plain HTTP to the upstream, session configs repaired on the way.
        tls = self.upstream_options.ssl_context
        self.http = HttpService(s, self.chain, self.admission, self.metrics, upstream_ssl=tls)
        self.http_factory: Callable[[], asyncio.Protocol] | None = self.http.factory
        self.connections: set[ClientLeg] = set()
        self.relays: set[Relay] = set()
        self._on_ended = self._ended  # bound once: every session keeps this one, not its own (64 B)
        # max_sessions: a slot per session, and per admitted handshake still waiting for the upstream.
        self.slots: SessionSlots = slots or LocalSlots(s.max_sessions)
        self.handshaking = 0  # admitted handshakes waiting for the upstream
        self._drained = asyncio.Event()  # set whenever the last session ends
        self.server: asyncio.Server | None = None
        self.ready = False

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(
        self, ssl_context: ssl.SSLContext | None = None, *, sock: socket.socket | None = None
    ) -> None:
        """Listen on host:port, or on `sock`, a listening socket a supervisor bound for this worker."""
        loop = asyncio.get_running_loop()
        s = self.settings
        if sock is not None:
            self.server = await loop.create_server(lambda: ClientLeg(self), sock=sock, ssl=ssl_context)
        else:
            self.server = await loop.create_server(lambda: ClientLeg(self), s.host, s.port, ssl=ssl_context)
        self.ready = True

    # -- handshake ----------------------------------------------------------------------------

    def upgrade(self, leg: ClientLeg, request: Request) -> None:
        """Admit a WebSocket handshake: refused now, or the upstream is opened before the 101."""
        if not self.ready or not self.slots.acquire():
            leg.refuse(capacity_refusal(self.metrics))
            return
        plan = admit(self.settings, self.admission, self.metrics, request, self.sessions.chain)
        if isinstance(plan, Response):
            self.slots.release()
            leg.refuse(plan)
            return
        self.handshaking += 1  # holds a session slot until the session starts or the handshake fails
        task = asyncio.get_running_loop().create_task(self._connect(leg, request, plan))
        leg.on_lost = task.cancel

    async def _connect(self, leg: ClientLeg, request: Request, plan: UpstreamPlan) -> None:
        started = time.monotonic()
        host, path = upstream_host(self.settings.upstream_url), plan.target.split("?", 1)[0]
        retries = self.metrics.upstream.handshake_retries_total

        def report(attempt: Attempt) -> None:
            if attempt.delay is not None:
                retries.labels(attempt.cause.value).inc()
                log.warning(
                    "upstream_handshake_retry",
                    attempt=attempt.number,
                    cause=attempt.cause.value,
                    status=attempt.status,
                    delay_s=round(attempt.delay, 3),
                    upstream_host=host,
                    path=path,
                )

        policy = backoff_policy(self.settings.handshake_retry)
        try:
            upstream, _ = await open_with_retries(
                plan.url, plan.headers, plan.subprotocols, self.upstream_options, policy, self.rng, report
            )
        except UpstreamFailure as failure:
            self.handshaking -= 1
            self.slots.release()
            self.metrics.handshakes_total.labels(handshake_result(failure)).inc()
            self.metrics.upstream_failures_total.labels("websocket", failure.cause).inc()
            log.warning(
                "upstream_handshake_failed",
                status=failure.status,
                code=failure.code,
                cause=failure.cause,
                error=failure.error or None,
                upstream_host=host,
                path=path,
            )
            leg.refuse(failure_response(failure, self.admission))
            return
        except asyncio.CancelledError:
            self.handshaking -= 1
            self.slots.release()
            log.info("client_left_during_upstream_handshake", client=leg.remote)
            return
        self.handshaking -= 1
        self.metrics.upstream_connect.observe(time.monotonic() - started)
        self.metrics.handshakes_total.labels("ok").inc()
        leg.on_lost = None  # the task is done: do not keep it alive for the session's lifetime
        if not leg.accept(request, upstream.subprotocol):
            self.slots.release()
            upstream.close(1001, "client connection lost")
            return
        query = dict(parse_qsl(plan.target.partition("?")[2]))
        path = plan.target.split("?", 1)[0]
        pending = PendingSession(
            plan.beta_client,
            uuid.uuid4().hex[:16],
            started,
            leg.remote,
            query.get("model") or query.get("deployment"),  # OpenAI names a model, Azure a deployment
            path,
            plan.context,
            query,
            (request.headers.get("traceparent"), request.headers.get("tracestate")),
        )
        # The plan's own lists (the plan is dropped after this): no per-session copies (issue 26).
        target = UpstreamTarget(plan.url, plan.headers, plan.subprotocols, self.upstream_options)
        try:
            relay = self.sessions.start(leg, upstream, pending, self._on_ended, target)
        except BaseException:
            self.slots.release()
            raise
        self.relays.add(relay)
        relay.start()

    def _ended(self, relay: Relay) -> None:
        if relay in self.relays:  # released once per session, however it ended
            self.relays.discard(relay)
            self.slots.release()
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
        http_drained = asyncio.ensure_future(self.http.close(grace))  # idle ones now, busy ones by `grace`
        for leg in [c for c in self.connections if c.sink is None and not c.upgrading]:
            leg.abort()  # idle connections that never sent a request
        if self.relays:
            log.info("shutdown_draining", sessions=len(self.relays), grace_s=grace)
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._drained.wait()
        for relay in list(self.relays):
            relay.stop(SessionOutcome.SHUTDOWN, 1001, "proxy shutting down")
        if self.relays:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_CLOSE_BOUND):
                    await self._drained.wait()
        for relay in list(self.relays):
            relay.abort()
        for leg in list(self.connections):
            leg.abort()
        await http_drained  # plain HTTP requests in flight had the same grace, alongside
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await self.server.wait_closed()
