"""The fake's plain HTTP routes: models, streaming Responses/Chat Completions, and the Realtime
HTTP routes (client secrets, WebRTC calls, SIP call actions), refusing what the real API refuses."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from proxy.edge.http.exchange import ClientGone, Exchange

from . import http_streams
from .errors import ApiError, missing_parameter, unknown_parameter
from .ids import new_id
from .session import deep_merge, default_session, transcription_session
from .validation import check_session_update

if TYPE_CHECKING:
    from .server import FakeUpstream

MODELS = ("gpt-realtime", "gpt-realtime-2", "gpt-4o-mini", "gpt-4o-transcribe")
_FILE_CONTENT = re.compile(r"/v1/files/[A-Za-z0-9_\-]+/content")
_CALL_ACTION = re.compile(r"/v1/realtime/calls/([A-Za-z0-9_\-]+)/(accept|hangup|refer|reject)")
_TRANSLATION_KEYS = {"session": {"model", "audio"}, "session.audio": {"input", "output"},
                     "session.audio.input": {"noise_reduction", "transcription"},
                     "session.audio.output": {"language"}}  # fmt: skip
SDP_ANSWER = b"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fake-answer\r\n"


@dataclass
class HttpRecord:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    parts: dict[str, bytes] = field(default_factory=dict)  # multipart fields, exactly as received
    outcome: str = "open"  # "complete", "client_gone", "dropped"


class Reply(Exception):
    def __init__(
        self, status: int, body: bytes = b"", content_type: str = "application/json", location: str = ""
    ) -> None:
        super().__init__(status)
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = [(b"location", location.encode())] if location else []


def _error(status: int, message: str, *, code: str | None, param: str | None = None) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return Reply(status, orjson.dumps({"error": error}))


def _api_error(error: ApiError) -> Reply:
    return _error(400, error.message, code=error.code, param=error.param)


def _json(value: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(value))


class FakeHttpApi:
    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        self.records: list[HttpRecord] = []
        self.sse_interval = 0.02  # seconds between streamed chunks
        self.drop_stream_after: int | None = None  # abort a stream after this many chunks
        self.stream_started = asyncio.Event()
        self.stream_finished = asyncio.Event()
        self.client_secrets: set[str] = set()

    async def handle(self, exchange: Exchange) -> None:
        head = exchange.head
        path, _, query = head.target.partition("?")
        record = HttpRecord(head.method, path, dict(parse_qsl(query)), dict(head.headers))
        self.records.append(record)
        try:
            await self._route(exchange, record)
            record.outcome = "complete"
        except Reply as reply:
            record.outcome = "complete"
            await exchange.respond(reply.status, reply.body, reply.content_type, reply.headers)
        except (ClientGone, asyncio.CancelledError):
            record.outcome = "client_gone"
            raise

    async def _route(self, exchange: Exchange, record: HttpRecord) -> None:
        self._authorise(record)
        method, path = record.method, record.path.rstrip("/")
        if method == "GET" and path == "/v1/models":
            models = [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "system"} for m in MODELS
            ]
            raise _json({"object": "list", "data": models})
        if method == "GET" and _FILE_CONTENT.fullmatch(path):  # a download: `?bytes=N` of zeros, streamed
            await self._download(exchange, record, int(record.query.get("bytes", "1048576")))
            return
        if method == "GET" and path == "/v1/realtime":
            raise _error(426, "This endpoint expects a WebSocket upgrade.", code="upgrade_required")
        if method != "POST":
            raise self._not_found(record)
        if path == "/v1/uploads/stream":  # streamed upload: counts bytes as they arrive
            size = 0
            async for chunk in exchange.body():
                size += len(chunk)
                self.stream_started.set()
            raise _json({"object": "upload", "bytes": size})
        record.body = await exchange.read_all(16 * 1024 * 1024)
        if path in ("/v1/responses", "/v1/chat/completions"):
            await self._completion(exchange, record, path)
        elif path == "/v1/realtime/client_secrets":
            raise _json(self._client_secret(self._body(record).get("session")))
        elif path == "/v1/realtime/translations/client_secrets":
            raise _json(self._translation_secret(self._body(record).get("session")))
        elif path == "/v1/realtime/calls":
            raise self._call(record)
        elif match := _CALL_ACTION.fullmatch(path):
            if match.group(2) == "accept":
                self._validated(self._body(record), "realtime")
            raise Reply(200)
        else:
            raise self._not_found(record)

    def _authorise(self, record: HttpRecord) -> None:
        auth = record.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else record.headers.get("api-key")
        expected = self.fake.api_key
        if not key or (expected is not None and key != expected and key not in self.client_secrets):
            shown = key or ""
            shown = shown if len(shown) <= 8 else f"{shown[:3]}{'*' * (len(shown) - 7)}{shown[-4:]}"
            raise _error(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")

    @staticmethod
    def _not_found(record: HttpRecord) -> Reply:
        return _error(404, f"Invalid URL ({record.method} {record.path})", code=None)

    @staticmethod
    def _body(record: HttpRecord) -> dict[str, Any]:
        try:
            value = orjson.loads(record.body)
        except orjson.JSONDecodeError:
            raise _error(
                400, "We could not parse the JSON body of your request.", code="invalid_json"
            ) from None
        if not isinstance(value, dict):
            raise _error(400, "The body of your request must be a JSON object.", code="invalid_type")
        return value

    async def _completion(self, exchange: Exchange, record: HttpRecord, path: str) -> None:
        body = self._body(record)
        model = str(body.get("model", "gpt-4o-mini"))
        chat = path.endswith("chat/completions")
        if not body.get("stream"):
            raise _json(http_streams.chat_object(model) if chat else http_streams.response_object(model))
        events = http_streams.chat_events(model) if chat else http_streams.response_events(model)
        await exchange.start(200, [(b"content-type", b"text/event-stream; charset=utf-8")])
        for index, event in enumerate(events):
            if index == self.drop_stream_after:
                record.outcome = "dropped"
                raise ConnectionAbortedError("fake upstream drops the stream")  # the connection closes
            if index:
                await asyncio.sleep(self.sse_interval)
            await exchange.send(event)
            self.stream_started.set()
        self.stream_finished.set()
        await exchange.finish()

    @staticmethod
    async def _download(exchange: Exchange, record: HttpRecord, size: int) -> None:
        chunk = bytes(64 * 1024)
        headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())]
        await exchange.start(200, headers)
        for offset in range(0, size, len(chunk)):
            await exchange.send(chunk[: size - offset])
        await exchange.finish()

    def _validated(self, session: object, default_type: str) -> dict[str, Any]:
        kind = session.get("type") if isinstance(session, dict) else None
        try:
            return check_session_update(
                session, kind if kind in ("realtime", "transcription") else default_type
            )
        except ApiError as error:
            raise _api_error(error) from None

    def _mint(self, session: dict[str, Any]) -> dict[str, Any]:
        value = new_id("ek")
        self.client_secrets.add(value)
        return {"value": value, "expires_at": int(time.time()) + 600, "session": session}

    def _client_secret(self, session: object) -> dict[str, Any]:
        update = self._validated(session, "realtime")
        model = str(update.get("model", "gpt-realtime"))
        base = transcription_session(model) if update["type"] == "transcription" else default_session(model)
        deep_merge(base, update)
        return self._mint(base)

    def _translation_secret(self, session: object) -> dict[str, Any]:
        if not isinstance(session, dict):
            raise _api_error(missing_parameter("session"))
        self._check_translation_keys(session, "session")
        if "model" not in session:
            raise _api_error(missing_parameter("session.model"))
        result = {"id": new_id("sess"), "type": "translation", "model": session["model"],
                  "expires_at": int(time.time()) + 600, "audio": session.get("audio", {})}  # fmt: skip
        return self._mint(result)

    def _check_translation_keys(self, obj: dict[str, Any], where: str) -> None:
        for key, value in obj.items():
            if key not in _TRANSLATION_KEYS.get(where, set()):
                raise _api_error(unknown_parameter(f"{where}.{key}"))
            if isinstance(value, dict) and f"{where}.{key}" in _TRANSLATION_KEYS:
                self._check_translation_keys(value, f"{where}.{key}")

    def _call(self, record: HttpRecord) -> Reply:
        content_type = record.headers.get("content-type", "")
        if content_type.startswith("application/sdp"):
            record.parts = {"sdp": record.body}
        elif match := re.search(r'boundary="?([^";]+)"?', content_type):
            record.parts = _form_parts(record.body, match.group(1).encode())
            if "session" in record.parts:
                self._validated(self._body_of(record.parts["session"]), "realtime")
        else:
            raise _error(400, "Unsupported content type for a call offer.", code="invalid_request_error")
        if not record.parts.get("sdp", b"").startswith(b"v=0"):
            raise _api_error(missing_parameter("sdp"))
        return Reply(201, SDP_ANSWER, "application/sdp", location=f"/v1/realtime/calls/{new_id('rtc')}")

    @staticmethod
    def _body_of(raw: bytes) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _error(400, "The session part is not valid JSON.", code="invalid_json") from None


def _form_parts(body: bytes, boundary: bytes) -> dict[str, bytes]:
    """Fields of a multipart/form-data body (written apart from the proxy's parser on purpose)."""
    parts: dict[str, bytes] = {}
    for chunk in (b"\r\n" + body).split(b"\r\n--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.partition(b"\r\n\r\n")
        name = re.search(rb'\bname="([^"]*)"', head)
        if sep and name:
            parts[name.group(1).decode()] = content
    return parts
