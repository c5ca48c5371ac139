"""The fake's plain HTTP routes: models, streaming Responses/Chat Completions, and the Realtime
HTTP routes (client secrets, WebRTC calls, SIP call actions), refusing what the real API refuses."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from realtime_proxy.edge.http.exchange import ClientGone, CutOff, Exchange

from . import http_streams
from .http_live import LIVE_SESSIONS, live_route
from .http_realtime import (
    Reply,
    call_offer,
    client_secret,
    error,
    json_object,
    json_reply,
    translation_secret,
    validated,
)
from .ids import new_id

if TYPE_CHECKING:
    from .server import FakeUpstream

MODELS = ("gpt-realtime", "gpt-realtime-2", "gpt-4o-mini", "gpt-4o-transcribe")
_FILE_CONTENT = re.compile(r"/v1/files/[A-Za-z0-9_\-]+/content")
_CALL_ACTION = re.compile(r"/v1/realtime/calls/([A-Za-z0-9_\-]+)/(accept|hangup|refer|reject)")


@dataclass
class HttpRecord:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    parts: dict[str, bytes] = field(default_factory=dict)  # multipart fields, exactly as received
    request_id: str = field(default_factory=lambda: new_id("req"))  # sent back as x-request-id
    outcome: str = "open"  # "complete", "client_gone", "dropped"


class FakeHttpApi:
    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        self.records: list[HttpRecord] = []
        self.sse_interval = 0.02  # seconds between streamed chunks
        self.drop_stream_after: int | None = None  # abort a stream after this many chunks
        self.reply_delay = 0.0  # seconds before any request is looked at (a slow upstream)
        self.stream_started = asyncio.Event()
        self.stream_finished = asyncio.Event()
        self.client_secrets: set[str] = set()

    async def handle(self, exchange: Exchange) -> None:
        head = exchange.head
        path, _, query = head.target.partition("?")
        record = HttpRecord(head.method, path, dict(parse_qsl(query)), dict(head.headers))
        self.records.append(record)
        try:
            if self.reply_delay:
                await asyncio.sleep(self.reply_delay)
            await self._route(exchange, record)
            record.outcome = "complete"
        except Reply as reply:
            record.outcome = "complete"
            headers = [*reply.headers, (b"x-request-id", record.request_id.encode())]
            await exchange.respond(reply.status, reply.body, reply.content_type, headers)
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
            raise json_reply({"object": "list", "data": models})
        if method == "GET" and _FILE_CONTENT.fullmatch(path):  # a download: `?bytes=N` of zeros, streamed
            await self._download(exchange, record, int(record.query.get("bytes", "1048576")))
            return
        if path.startswith(LIVE_SESSIONS):
            record.body = await exchange.read_all(16 * 1024 * 1024) if method == "POST" else b""
            raise live_route(method, path, record.body) or self._not_found(record)
        if method == "GET" and path == "/v1/realtime":
            raise error(426, "This endpoint expects a WebSocket upgrade.", code="upgrade_required")
        if method != "POST":
            raise self._not_found(record)
        if path == "/v1/uploads/stream":  # streamed upload: counts bytes as they arrive
            size = 0
            async for chunk in exchange.body():
                size += len(chunk)
                self.stream_started.set()
            raise json_reply({"object": "upload", "bytes": size})
        record.body = await exchange.read_all(16 * 1024 * 1024)
        if path in ("/v1/responses", "/v1/chat/completions"):
            await self._completion(exchange, record, path)
        elif path == "/v1/realtime/client_secrets":
            raise json_reply(client_secret(self.client_secrets, json_object(record.body).get("session")))
        elif path == "/v1/realtime/translations/client_secrets":
            session = json_object(record.body).get("session")
            raise json_reply(translation_secret(self.client_secrets, session))
        elif path == "/v1/realtime/calls":
            record.parts, reply = call_offer(record.headers.get("content-type", ""), record.body)
            raise reply
        elif match := _CALL_ACTION.fullmatch(path):
            if match.group(2) == "accept":
                validated(json_object(record.body), "realtime")
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
            raise error(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")

    @staticmethod
    def _not_found(record: HttpRecord) -> Reply:
        return error(404, f"Invalid URL ({record.method} {record.path})", code=None)

    async def _completion(self, exchange: Exchange, record: HttpRecord, path: str) -> None:
        body = json_object(record.body)
        model = str(body.get("model", "gpt-4o-mini"))
        chat = path.endswith("chat/completions")
        if not body.get("stream"):
            raise json_reply(http_streams.chat_object(model) if chat else http_streams.response_object(model))
        events = http_streams.chat_events(model) if chat else http_streams.response_events(model)
        sse = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"x-request-id", record.request_id.encode()),
        ]
        await exchange.start(200, sse)
        for index, event in enumerate(events):
            if index == self.drop_stream_after:
                record.outcome = "dropped"
                raise CutOff  # the fake upstream drops the stream: its connection closes mid-body
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
