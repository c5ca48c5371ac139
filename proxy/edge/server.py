"""The client-facing WebSocket server: admission, the upstream handshake (before the client's is
accepted), one Relay per session, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import http
import random
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from proxy.core import compat
from proxy.core.actions import Action, Frame
from proxy.core.retry import ResponseRetrier, RetryPolicy
from proxy.core.rules import Rule, RuleChain, build_chain
from proxy.core.session import CoreOptions, SessionCore
from proxy.edge.auth import Admission, AdmissionRefused
from proxy.edge.relay import Handler, Relay
from proxy.edge.upstream import (
    RELAYED_REFUSAL_HEADERS,
    BadRequestTarget,
    UpstreamFailure,
    UpstreamOptions,
    UpstreamRefused,
    client_ssl_context,
    forwarded_headers,
    offered_subprotocols,
    open_upstream,
    upstream_url,
)
from proxy.ops.logs import get_logger
from proxy.ops.metrics import Metrics
from proxy.ops.observe import SessionObserver
from proxy.ops.record import SessionRecorder
from proxy.ops.settings import Settings

log = get_logger("proxy.server")


def json_response(
    status: int, code: str, message: str, *, error_type: str = "invalid_request_error"
) -> Response:
    """A Realtime-style JSON error body, as the API itself answers refused handshakes."""
    body = orjson.dumps({"error": {"type": error_type, "code": code, "message": message, "param": None}})
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _handshake_result(failure: UpstreamFailure) -> str:
    if isinstance(failure, UpstreamRefused):
        if failure.status in (401, 403, 404, 429):
            return f"refused_{failure.status}"
        return "refused_5xx" if failure.status >= 500 else "refused_4xx"
    return "timeout" if failure.status == 504 else "unreachable"


@dataclass
class PendingSession:
    upstream: ClientConnection
    beta_client: bool
    session_id: str
    started: float
    client_addr: str
    model: str | None
    query: dict[str, str] = field(default_factory=dict)


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
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.rng = rng or random.Random()
        self.admission = Admission(settings.auth)
        self.chain: RuleChain = build_chain(
            settings.rules.enabled_overrides(),
            observe_only=settings.rules_observe_only,
            extra_rules=extra_rules,  # the plug-in point for rules that are not built in
        )
        self.escalation = build_chain({name: name in settings.retry.escalate_rules for name in _rule_names()})
        self.retry_policy = RetryPolicy(
            max_attempts=settings.retry.max_attempts,
            backoff_base=settings.retry.backoff_base,
            backoff_cap=settings.retry.backoff_cap,
            deadline=settings.retry.deadline,
            retry_in_band=settings.retry.retry_in_band,
            escalate_rules=settings.retry.escalate_rules,
        )
        self.upstream_options = UpstreamOptions(
            max_size=settings.max_frame_bytes,
            open_timeout=settings.handshake_timeout,
            ping_interval=settings.ping_interval or None,
            ping_timeout=settings.ping_timeout or None,
            compression=settings.compression,
            ssl_context=upstream_ssl
            or (
                client_ssl_context(verify=settings.upstream_tls_verify, ca_bundle=settings.upstream_ca_bundle)
                if settings.upstream_url.startswith("wss://")
                else None
            ),
        )
        self._pending: dict[ServerConnection, PendingSession] = {}
        self.relays: set[Relay] = set()
        self._drained = asyncio.Event()  # set whenever the last session ends
        self.server: Server | None = None
        self.ready = False

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(next(iter(self.server.sockets)).getsockname()[1])

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        s = self.settings
        self.server = await serve(
            self._handle,
            s.host,
            s.port,
            ssl=ssl_context,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            max_size=s.max_frame_bytes,
            compression="deflate" if s.compression else None,
            open_timeout=s.handshake_timeout + 5,
            ping_interval=s.ping_interval or None,
            ping_timeout=s.ping_timeout or None,
            # A client that missed a pong will not answer a Close either: do not wait 10 s for it.
            close_timeout=min(s.ping_timeout, 10.0) if s.ping_timeout else 10.0,
            server_header=None,
        )
        self.ready = True

    # -- handshake ----------------------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        s = self.settings
        if len(self.relays) + len(self._pending) >= s.max_sessions:
            self.metrics.handshakes_total.labels("rejected_capacity").inc()
            return json_response(
                503,
                "proxy_at_capacity",
                "The proxy is at its session limit; retry later.",
                error_type="server_error",
            )
        try:
            headers, subprotocols = self.admission.admit(
                request.headers, offered_subprotocols(request.headers), request.path
            )
        except AdmissionRefused as refused:
            self.metrics.handshakes_total.labels(refused.result).inc()
            return json_response(refused.status, refused.code, refused.message)
        beta = compat.is_beta_handshake({k.lower(): v for k, v in headers.raw_items()}, subprotocols)
        if beta:
            self.metrics.beta_sessions_total.labels(s.compat.beta_clients).inc()
            if s.compat.beta_clients == "reject":
                self.metrics.handshakes_total.labels("rejected_beta").inc()
                return json_response(
                    400,
                    "beta_api_shape_disabled",
                    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
                )
        translate = beta and s.compat.beta_clients == "translate"
        forwarded = forwarded_headers(headers)
        if translate:
            plain, subprotocols = compat.strip_beta_markers(dict(forwarded), subprotocols)
            forwarded = list(plain.items())
        try:
            url = upstream_url(s.upstream_url, request.path)
        except BadRequestTarget as exc:
            return json_response(400, "invalid_request_target", str(exc))
        started = time.monotonic()
        try:
            upstream = await open_upstream(url, forwarded, subprotocols, self.upstream_options)
        except UpstreamFailure as failure:
            self.metrics.handshakes_total.labels(_handshake_result(failure)).inc()
            log.warning(
                "upstream_handshake_failed",
                status=failure.status,
                code=failure.code,
                upstream_host=_host(s.upstream_url),
                path=request.path.split("?", 1)[0],
            )
            if isinstance(failure, UpstreamRefused):
                relayed = Headers(
                    [(k, v) for k, v in failure.headers.raw_items() if k.lower() in RELAYED_REFUSAL_HEADERS]
                )
                body = self.admission.refusal_body(failure.body)  # inject mode: no key echoed back
                return Response(failure.status, _phrase(failure.status), relayed, body)
            message = (
                "The upstream did not answer the handshake in time."
                if failure.status == 504
                else "The proxy could not reach the upstream."
            )
            return json_response(failure.status, failure.code, message, error_type="server_error")
        self.metrics.upstream_connect.observe(time.monotonic() - started)
        self.metrics.handshakes_total.labels("ok").inc()
        query = dict(parse_qsl(request.path.partition("?")[2]))
        remote = connection.remote_address
        self._pending[connection] = PendingSession(
            upstream=upstream,
            beta_client=translate,
            session_id=uuid.uuid4().hex[:16],
            started=started,
            client_addr=f"{remote[0]}:{remote[1]}" if remote else "",
            model=query.get("model"),
            query=query,
        )
        return None

    def _select_subprotocol(self, connection: ServerConnection, offered: Any) -> Any:
        pending = self._pending.get(connection)
        chosen = pending.upstream.subprotocol if pending else None
        return chosen if chosen in offered else None

    async def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code != 101:
            pending = self._pending.pop(connection, None)
            if pending is not None:
                await pending.upstream.close(1001, "client handshake failed")

    # -- sessions -----------------------------------------------------------------------------

    async def _handle(self, client: ServerConnection) -> None:
        pending = self._pending.pop(client)
        s = self.settings
        structlog.contextvars.bind_contextvars(
            session_id=pending.session_id,
            client=pending.client_addr,
            model=pending.model,
            upstream_host=_host(s.upstream_url),
        )
        session_log = log.bind()

        def escalate(event: dict[str, Any]) -> dict[str, Any]:
            # Re-sends see this session's state (e.g. its tools), like the first attempt did.
            return self.escalation.apply(event, core.state).event

        retrier = ResponseRetrier(self.retry_policy, self.rng, escalate=escalate) if s.retry.enabled else None
        core = SessionCore(
            self.chain,
            retrier=retrier,
            traffic=self.metrics.traffic,
            options=CoreOptions(
                beta_client=pending.beta_client,
                queue_in_band=s.rules.queue_in_band_responses,
                log_event_types=s.log_event_types,
            ),
        )
        # WebRTC/SIP sideband sockets carry audio as media, not appends: the commit guard must not count.
        core.state.external_audio_input = "call_id" in pending.query
        recorder = SessionRecorder(s.record_dir, pending.session_id) if s.record_dir else None
        if recorder is not None:
            core.from_client = _recording(core.from_client, recorder)  # type: ignore[method-assign,assignment]
        observer = SessionObserver(self.metrics, session_log)
        relay = Relay(
            client,
            pending.upstream,
            core,
            observer,
            idle_timeout=s.idle_timeout,
            max_duration=s.max_session_duration,
            max_client_fps=s.max_client_frames_per_second,
        )
        self.relays.add(relay)
        self.metrics.sessions_active.inc()
        session_log.info(
            "session_open",
            path=client.request.path.split("?", 1)[0] if client.request else None,
            subprotocol=client.subprotocol and _safe_subprotocol(client.subprotocol),
            beta_client=pending.beta_client,
        )
        try:
            await relay.run()
        finally:
            self.relays.discard(relay)
            if not self.relays:
                self._drained.set()
            self.metrics.sessions_active.dec()
            duration = time.monotonic() - pending.started
            self.metrics.sessions_total.labels(relay.outcome).inc()
            self.metrics.session_duration.observe(duration)
            for side, conn in (("client", client), ("upstream", pending.upstream)):
                rcvd = conn.protocol.close_rcvd
                if rcvd is not None:
                    self.metrics.closes_total.labels(side, _close_label(rcvd.code)).inc()
            session_log.info(
                "session_closed",
                duration_s=round(duration, 3),
                outcome=relay.outcome,
                closed_by=relay.closed_by,
                frames_from_client=relay.frames["client"],
                frames_from_upstream=relay.frames["upstream"],
                bytes_from_client=relay.bytes["client"],
                bytes_from_upstream=relay.bytes["upstream"],
                client_close=_close_desc(client),
                upstream_close=_close_desc(pending.upstream),
                **observer.summary(),
            )
            if recorder is not None:
                recorder.close()
            structlog.contextvars.clear_contextvars()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting, let sessions run for `grace` seconds, then close them with 1001."""
        grace = self.settings.shutdown_grace if grace is None else grace
        self.ready = False
        if self.server is None:
            return
        self.server.close(close_connections=False)
        if self.relays:
            log.info("shutdown_draining", sessions=len(self.relays), grace_s=grace)
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._drained.wait()
        for relay in list(self.relays):
            relay.stop("shutdown", 1001, "proxy shutting down")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.server.wait_closed()


def _recording(handler: Handler, recorder: SessionRecorder) -> Handler:
    def record_then_handle(frame: Frame, now: float) -> list[Action] | None:
        recorder.record(frame)
        return handler(frame, now)

    return record_then_handle


def _rule_names() -> list[str]:
    from proxy.core.rules import ALL_RULES

    return [rule.name for rule in ALL_RULES]


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Upstream Error"


def _safe_subprotocol(name: str) -> str:
    return "[REDACTED]" if name.lower().startswith("openai-insecure-api-key.") else name


def _close_desc(connection: Any) -> dict[str, Any] | None:
    rcvd, sent = connection.protocol.close_rcvd, connection.protocol.close_sent
    return {
        "received": rcvd.code if rcvd else None,
        "sent": sent.code if sent else None,
        "reason": (rcvd or sent).reason if (rcvd or sent) else None,
    }


def _close_label(code: int) -> str:
    from proxy.ops.metrics import CLOSE_CODES

    return str(code) if str(code) in CLOSE_CODES else "other"
