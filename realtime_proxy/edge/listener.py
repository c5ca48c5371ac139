"""The client-facing connection: reads the request head itself (bounded), then dispatches.

An upgrade request becomes a WebSocket leg (sans-I/O `ServerProtocol`) whose 101 waits for the
gateway's upstream handshake; any other request is handed to the gateway's HTTP handler
(`http_factory`), or answered with a small JSON 426/404 when there is none. No request reaches
the upstream before its head is complete and admitted.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Callable
from typing import Protocol

from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from realtime_proxy.api.errors import TYPE_FIRST, http_error_body
from realtime_proxy.edge.auth import malformed_headers
from realtime_proxy.edge.handshake_memory import drop_handshake
from realtime_proxy.edge.target import REFUSAL as TARGET_REFUSAL
from realtime_proxy.edge.target import visible_ascii
from realtime_proxy.edge.wire import Leg, LegTiming
from realtime_proxy.observe.logs import get_logger
from realtime_proxy.observe.metrics import Metrics

log = get_logger("proxy.listener")

MAX_HEAD_BYTES = 16 * 1024
_HEAD_END = b"\r\n\r\n"
_NO_HEAD = b""


def json_response(
    status: int, code: str, message: str, *, error_type: str = "invalid_request_error", body: bool = True
) -> Response:
    """A Realtime-style JSON error body, as the API itself answers refused handshakes."""
    payload = http_error_body(message, code=code, type=error_type, order=TYPE_FIRST)
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    headers["Connection"] = "close"
    return Response(status, phrase(status), headers, payload if body else b"")


def phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Upstream Error"


class Gateway(Protocol):
    """What a client connection needs from the server that accepted it."""

    http_factory: Callable[[], asyncio.Protocol] | None
    connections: set[ClientLeg]
    client_timing: LegTiming
    head_timeout: float
    max_frame_bytes: int
    compression: bool
    metrics: Metrics

    def upgrade(self, leg: ClientLeg, request: Request) -> None: ...


class _Server(ServerProtocol):
    upstream_choice: str | None = None

    def select_subprotocol(self, subprotocols: object) -> Subprotocol | None:
        choice = self.upstream_choice
        offered = subprotocols if isinstance(subprotocols, list | tuple) else []
        return Subprotocol(choice) if choice is not None and choice in offered else None


class ClientLeg(Leg):
    side = "client"
    __slots__ = ("_head_timer", "gateway", "head", "on_lost", "remote", "server_ws", "upgrading")

    def __init__(self, gateway: Gateway) -> None:
        ws = _Server(
            max_size=gateway.max_frame_bytes,
            extensions=[ServerPerMessageDeflateFactory()] if gateway.compression else None,
        )
        super().__init__(ws, gateway.client_timing)
        self.server_ws = ws
        self.gateway = gateway
        self.head: bytearray | bytes = bytearray()
        self.upgrading = False
        self.remote = ""
        self.on_lost: Callable[[], object] | None = None  # cancels an upstream handshake in flight
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self.remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        self.gateway.connections.add(self)
        self._head_timer = self.loop.call_later(self.gateway.head_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self.sink is not None:
            super().data_received(data)
        elif self.upgrading:
            self.ws.receive_data(data)  # nothing may come before our 101: parse for EOF, drop
            self.ws.events_received()
        else:
            self.head += data
            self._dispatch()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway.connections.discard(self)
        self._cancel_head_timer()
        if self.on_lost is not None and self.sink is None:
            self.on_lost()
        if not self.upgrading and self.sink is None:
            log.debug("connection_closed_before_request", client=self.remote, bytes=len(self.head))
        super().connection_lost(exc)

    def _cancel_head_timer(self) -> None:
        """Cancelled and let go: a cancelled handle kept for the session cost ~200 B (issue 26)."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        if not self.upgrading and self.transport is not None:
            log.debug("request_head_timeout", client=self.remote, bytes=len(self.head))
            self.transport.close()

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        end = self.head.find(_HEAD_END, 0, MAX_HEAD_BYTES + len(_HEAD_END))
        if end < 0:
            if len(self.head) > MAX_HEAD_BYTES:
                self._refuse_raw(431, "request_header_fields_too_large", "The request head is too large.")
            return
        self._cancel_head_timer()
        lines = bytes(self.head[:end]).split(b"\r\n")
        method = lines[0].split(b" ", 1)[0]
        if _is_upgrade(lines[1:]):
            raw_target = [*lines[0].split(b" "), b""][1].decode("latin-1")
            if not visible_ascii(raw_target):
                # Refused here as admission would (websockets 17 fails such a request line in its
                # parser, earlier versions passed it on to the target check).
                self.gateway.metrics.handshakes_total.labels("rejected_path").inc()
                self._refuse_raw(400, "invalid_request_target", TARGET_REFUSAL)
                return
            self._upgrade()
        elif self.gateway.http_factory is not None:
            self._hand_over(self.gateway.http_factory)
        else:
            target = [*lines[0].split(b" "), b"", b""][1].split(b"?", 1)[0]
            if target.endswith(b"/realtime"):
                status, code, message = 426, "upgrade_required", "This endpoint speaks WebSocket only."
            else:
                status, code, message = 404, "not_found", "No such route on this proxy."
            self._refuse_raw(status, code, message, body=method != b"HEAD")

    def _upgrade(self) -> None:
        self.upgrading = True
        ws = self.server_ws
        ws.receive_data(bytes(self.head))
        self.head = _NO_HEAD  # read, and never again: no empty bytearray kept for the session
        request = next((e for e in ws.events_received() if isinstance(e, Request)), None)
        drop_handshake(ws)  # the session keeps no parsed request (this one lives until admitted)
        if request is None:
            cause = (ws.handshake_exc.__cause__ if ws.handshake_exc else None) or ws.handshake_exc
            # The exception's type and the header it names, never its text: that may quote a value.
            header = getattr(cause, "name", None)  # websockets' InvalidHeader names it; a bad value does not
            log.info("client_handshake_failed", client=self.remote, error=type(cause).__name__, header=header)
            self._refuse_raw(400, "invalid_request", "The WebSocket handshake request is malformed.")
            return
        refused = malformed_headers(request.headers)  # auth.py: JSON 400 that never quotes a header value
        if refused is not None:
            self.gateway.metrics.handshakes_total.labels(refused.result).inc()
            self.refuse(json_response(refused.status, refused.code, refused.message))
            return
        response = ws.accept(request)  # validates Upgrade, key and version before any upstream contact
        if response.status_code != 101:
            log.info("client_handshake_failed", client=self.remote, status=response.status_code)
            # websockets' text body quotes the offending header's value: a fixed text instead.
            refusal = json_response(
                response.status_code,
                "invalid_websocket_handshake",
                "The WebSocket handshake request is invalid.",
            )
            for name in ("Upgrade", "Sec-WebSocket-Version"):  # what a 426 tells the client to use
                if name in response.headers:
                    refusal.headers[name] = response.headers[name]
            self.refuse(refusal)
            return
        self.gateway.upgrade(self, request)

    def _hand_over(self, factory: Callable[[], asyncio.Protocol]) -> None:
        assert self.transport is not None
        self.gateway.connections.discard(self)
        protocol = factory()
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        protocol.data_received(bytes(self.head))

    # -- answers ------------------------------------------------------------------------------

    def refuse(self, response: Response) -> None:
        """Answer the handshake with an HTTP error and close."""
        if self.closed:
            return
        self.server_ws.send_response(response)
        self.flush()

    def accept(self, request: Request, subprotocol: str | None) -> bool:
        """Send the 101 (echoing the upstream's subprotocol choice). False if the client left."""
        if self.closed:
            return False
        self.server_ws.upstream_choice = subprotocol
        response = self.server_ws.accept(request)
        self.server_ws.send_response(response)
        self.flush()
        return self.ws.state is OPEN

    def _refuse_raw(self, status: int, code: str, message: str, *, body: bool = True) -> None:
        assert self.transport is not None
        self.upgrading = True  # nothing more is read as a request
        self._cancel_head_timer()
        log.debug("http_request_refused", client=self.remote, status=status, code=code)
        self.transport.write(json_response(status, code, message, body=body).serialize())
        self.transport.close()


def _is_upgrade(header_lines: list[bytes]) -> bool:
    for line in header_lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False
