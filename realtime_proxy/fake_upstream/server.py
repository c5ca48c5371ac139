"""FakeUpstream: an in-process stand-in for wss://api.openai.com/v1/realtime (GA shape only)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from realtime_proxy.api.errors import MESSAGE_TYPE_CODE, http_error_body
from realtime_proxy.edge.http.connection import ConnectionLimits, HttpConnection

from .failures import FailureControls, drop
from .http_api import FakeHttpApi
from .listener import Dispatcher, attach_listener, websocket_factory, websocket_server
from .live import FakeLiveSession, socket_of
from .session import FakeSession
from .translation import FakeTranslationSession

KEY_SUBPROTOCOL = "openai-insecure-api-key."
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
LIVE_MODEL_PREFIX = "gpt-live-1"  # gpt-live-1, gpt-live-1.1 (gpt-live-transcribe is a Realtime model)
STATUS_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class ConnectionRecord:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    subprotocols_offered: list[str]
    subprotocol_selected: str | None = None
    received: list[str | bytes] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    open: bool = True
    status: int = 101  # the HTTP status answered; refused handshakes land in FakeUpstream.refused
    closed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait_closed(self) -> None:
        """Wait until the server side has finished with this connection (close_code is then known)."""
        await self.closed.wait()

    @property
    def beta(self) -> bool:
        return self.headers.get("openai-beta", "").startswith("realtime") or (
            BETA_SUBPROTOCOL in self.subprotocols_offered
        )


def _record(request: Request) -> ConnectionRecord:
    parts = urlsplit(request.path)
    headers: dict[str, str] = {}
    for name, value in request.headers.raw_items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    offered = [p.strip() for v in request.headers.get_all("Sec-WebSocket-Protocol") for p in v.split(",")]
    return ConnectionRecord(
        path=parts.path,
        query=dict(parse_qsl(parts.query)),
        headers=headers,
        subprotocols_offered=[p for p in offered if p],
    )


def _api_key(record: ConnectionRecord) -> str | None:
    auth = record.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    if record.headers.get("api-key"):
        return record.headers["api-key"]
    for proto in record.subprotocols_offered:
        if proto.startswith(KEY_SUBPROTOCOL) and len(proto) > len(KEY_SUBPROTOCOL):
            return proto[len(KEY_SUBPROTOCOL) :]
    return None


def _mask(key: str) -> str:
    return key if len(key) <= 8 else f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


def json_response(status: int, body: dict[str, Any], retry_after: float | None = None) -> Response:
    return _json_bytes(status, orjson.dumps(body), retry_after)


def _refused(status: int, message: str, *, code: str | None, param: str | None = None) -> Response:
    return _json_bytes(status, http_error_body(message, code=code, param=param, order=MESSAGE_TYPE_CODE))


def _json_bytes(status: int, payload: bytes, retry_after: float | None = None) -> Response:
    headers = Headers([("Content-Type", "application/json")])
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    headers["Content-Length"] = str(len(payload))
    return Response(status, STATUS_REASONS.get(status, "Error"), headers, payload)


class FakeUpstream(FailureControls):
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        max_size: int = 16 * 1024 * 1024,
        delta_interval: float = 0.002,
        response_delay: float = 0.0,
        parallel_function_calls: int = 1,
    ) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.max_size = max_size
        self.delta_interval = delta_interval
        # Latency: seconds from a `response.create` to its `response.created` (the response is not
        # cancellable before that), then `delta_interval` between the response's events.
        self.response_delay = response_delay
        # Function calls a tool-calling response makes at once (`tool_choice: "required"`).
        self.parallel_function_calls = parallel_function_calls
        self.live_seconds_per_response = 30  # billable seconds a Live response adds (fake_upstream.live)
        self.live_start_delay = 0.0  # seconds from session.start to session.started
        self.handshake_delay = 0.0
        self.echo_audio = False
        self.audio_shortfall_ms = 0  # the server's audio item is this much shorter than sent
        self.fail_all_out_of_band = False
        self.refuse_handshake: tuple[int, dict[str, Any]] | None = None
        self.init_failures()  # upstream failures (issue 25): fake_upstream/failures.py
        self.connections: list[ConnectionRecord] = []
        self.refused: list[ConnectionRecord] = []
        self._failures: list[tuple[str, str | None]] = []
        self._live: dict[int, ServerConnection] = {}
        self._server: Server | None = None
        self.http = FakeHttpApi(self)  # plain HTTP routes, served on the same port
        self._http_live: set[HttpConnection] = set()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # --- scripting controls --------------------------------------------------------------------

    def fail_next_out_of_band(
        self, n: int, *, error_type: str = "server_error", code: str | None = None
    ) -> None:
        self._failures.extend([(error_type, code)] * n)

    def take_out_of_band_failure(self) -> tuple[str, str | None] | None:
        if self._failures:
            return self._failures.pop(0)
        return ("server_error", None) if self.fail_all_out_of_band else None

    async def close_all(self, code: int, reason: str) -> None:
        live = list(self._live.values())
        await asyncio.gather(*(ws.close(code, reason) for ws in live), return_exceptions=True)

    async def drop_all(self) -> None:
        for ws in list(self._live.values()):
            ws.transport.abort()

    def stop_answering_pings(self) -> None:
        for ws in self._live.values():
            ws.transport.pause_reading()

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        server = websocket_server(self._handler, self._process_request)
        ws_factory = websocket_factory(
            server,
            self._select_subprotocol,
            max_size=self.max_size,  # no compression: frames stay byte-comparable and cheap for benchmarks
            ping_interval=None,  # the client drives keepalive; see stop_answering_pings
            # websockets stops reading a connection whose queue is full, so it would not see the
            # proxy's EOF after a Close while frames are still queued, and waited out its 10 s
            # close timeout: queue more than a test's burst.
            max_queue=256,
        )
        limits = ConnectionLimits(keepalive_timeout=30.0)

        def http_factory() -> HttpConnection:
            return HttpConnection(self.http.handle, limits, self._http_live)

        loop = asyncio.get_running_loop()
        listener = await loop.create_server(
            lambda: Dispatcher(ws_factory, http_factory), self.host, self.port
        )
        attach_listener(server, listener)
        self._server = server
        self.port = next(iter(listener.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self._http_live):
                connection.abort()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- handshake -----------------------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.handshake_delay > 0:
            await asyncio.sleep(self.handshake_delay)
        record = _record(request)
        response = self._refusal(record, request)
        if response is not None:
            record.status, record.open = response.status_code, False
            record.closed.set()
            self.refused.append(record)
        return response

    def _refusal(self, record: ConnectionRecord, request: Request) -> Response | None:
        failure = self.take_handshake_failure()
        if failure is not None:
            return json_response(*failure)
        if self.refuse_handshake is not None:
            status, body = self.refuse_handshake
            return json_response(status, body)
        live = socket_of(record.path) is not None
        if not live and not record.path.rstrip("/").endswith(("/realtime", "/realtime/translations")):
            return _refused(404, f"Invalid URL (GET {record.path})", code=None)
        model = record.query.get("model", "")
        if record.path.rstrip("/").endswith("/realtime") and model.startswith(LIVE_MODEL_PREFIX):
            # A Live model on the Realtime route (https://docs.litellm.ai/docs/live_sessions).
            return _refused(400, f"Invalid model: '{model}'.", code="invalid_model", param="model")
        key = _api_key(record)
        minted = self.http.client_secrets
        if key is None or (self.api_key is not None and key != self.api_key and key not in minted):
            message = (
                f"Incorrect API key provided: {_mask(key or '')}. "
                "You can find your API key at https://platform.openai.com/account/api-keys."
            )
            return _refused(401, message, code="invalid_api_key")
        return None

    @staticmethod
    def _select_subprotocol(connection: ServerConnection, offered: Any) -> Subprotocol | None:
        # Browsers abort unless the server answers `realtime`; key/beta subprotocols are never echoed.
        return Subprotocol("realtime") if "realtime" in offered else None

    # --- connection loop -----------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        record = _record(ws.request)
        record.subprotocol_selected = ws.subprotocol
        self.connections.append(record)
        self._live[id(ws)] = ws

        responses_done = 0

        async def send_text(text: str) -> None:
            nonlocal responses_done
            record.sent.append(text)
            await ws.send(text)
            if self.drop_after_responses and '"type":"response.done"' in text:
                responses_done += 1
                if self.should_drop(responses_done):
                    await drop(ws)

        model = record.query.get("model", "gpt-realtime")
        session: FakeSession | FakeTranslationSession | FakeLiveSession
        if (live_socket := socket_of(record.path)) is not None:
            session = FakeLiveSession(
                send_text,
                delta_interval=self.delta_interval,
                seconds_per_response=self.live_seconds_per_response,
                start_delay=self.live_start_delay,
                socket=live_socket,
            )
        elif record.path.rstrip("/").endswith("/translations"):
            session = FakeTranslationSession(send_text, model=model)
        else:
            session = FakeSession(
                self,
                send_text,
                model=model,
                sideband="call_id" in record.query,
                transcription=record.query.get("intent") == "transcription",
                model_in_transcription_query="model" in record.query,
            )
        expiry = self.watch_session(ws, session) if isinstance(session, FakeSession) else None
        try:
            if record.beta and isinstance(session, FakeSession):
                await session.reject_beta()
                await ws.close(4000, "beta_api_shape_disabled")
                return
            await session.start()
            async for frame in ws:
                record.received.append(frame)
                await session.handle(frame)
                if session.close_request is not None:
                    await ws.close(*session.close_request)
                    break
        except ConnectionClosed:
            pass
        finally:
            if expiry is not None:
                expiry.cancel()
            self._live.pop(id(ws), None)
            self.forget_session(ws)
            await session.close()
            with contextlib.suppress(Exception):
                await ws.wait_closed()
            if ws.protocol.close_rcvd is not None:
                record.close_code = ws.protocol.close_rcvd.code
                record.close_reason = ws.protocol.close_rcvd.reason
            record.open = False
            record.closed.set()


async def serve_fake_upstream(host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> FakeUpstream:
    fake = FakeUpstream(host=host, port=port, **kwargs)
    await fake.start()
    return fake
