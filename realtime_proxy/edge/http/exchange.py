"""One HTTP request/response exchange as a handler sees it: the request head, a streamed body with
back-pressure, and a streamed response that waits for the client to keep up.

The connection (`connection.py`) feeds it; handlers never touch h11 or the transport."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

from realtime_proxy.api.errors import http_error_body

# Request body bytes buffered before the client socket stops being read.
BODY_HIGH_WATER = 256 * 1024
BODY_LOW_WATER = 64 * 1024


class ClientGone(Exception):
    """The client closed the connection."""


class CutOff(Exception):
    """Raised by a handler to break its response off: the connection closes without completing it."""


class BodyTimeout(TimeoutError):
    """The client stopped sending its request body, or stopped reading the response."""


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str  # origin-form path and query, as sent
    headers: list[tuple[str, str]]  # lower-case names, latin-1 values, in order
    has_body: bool

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Wire(Protocol):
    """What an Exchange needs from its connection (implemented by HttpConnection)."""

    closing: bool  # the connection closes after this exchange (shutdown)

    def continue_(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def start_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...
    def write_body(self, data: bytes) -> None: ...
    def end_response(self) -> None: ...
    async def writable(self) -> None:
        """Once the client takes more; TimeoutError when it stopped reading for the idle timeout."""
        ...


class Exchange:
    def __init__(self, head: RequestHead, wire: Wire, idle_timeout: float, client: str = "") -> None:
        self.head = head
        self.client = client  # the peer's address, for logs
        self._wire = wire
        self._idle_timeout = idle_timeout
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._arrived = asyncio.Event()
        self._asked_for_body = False
        self.body_complete = not head.has_body
        self.gone = False
        self.stalled = False  # the request body stopped arriving: no point waiting for the rest
        self.status: int | None = None  # set once the response head is sent
        self.finished = False
        self.bytes_in = 0
        self.bytes_out = 0

    # -- fed by the connection ----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        self._arrived.set()
        if self._buffered > BODY_HIGH_WATER and not self._paused:
            self._paused = True
            self._wire.pause_reading()

    def end_of_body(self) -> None:
        self.body_complete = True
        self._arrived.set()

    def lost(self) -> None:
        self.gone = True
        self._arrived.set()

    # -- request body -------------------------------------------------------------------------

    async def receive(self) -> bytes:
        """The next body chunk; b"" once the body is complete."""
        if not self._asked_for_body:  # a client sending `Expect: 100-continue` waits for this
            self._asked_for_body = True
            self._wire.continue_()
        while not self._chunks:
            if self.body_complete:
                return b""
            if self.gone:
                raise ClientGone
            self._arrived.clear()
            try:
                async with asyncio.timeout(self._idle_timeout):
                    await self._arrived.wait()
            except TimeoutError:
                self.stalled = True
                raise BodyTimeout("request body stalled") from None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        self.bytes_in += len(chunk)
        if self._paused and self._buffered < BODY_LOW_WATER:
            self._paused = False
            self._wire.resume_reading()
        return chunk

    async def body(self) -> AsyncIterator[bytes]:
        while chunk := await self.receive():
            yield chunk

    async def read_all(self, limit: int) -> bytes:
        declared = self.head.header("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        parts: list[bytes] = []
        size = 0
        async for chunk in self.body():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            parts.append(chunk)
        return b"".join(parts)

    # -- response -----------------------------------------------------------------------------

    async def start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        if self.gone:
            raise ClientGone
        head = list(headers)
        # Answered before the whole body, or shutting down: the client must not reuse the connection.
        if not self.body_complete or self._wire.closing:
            head.append((b"connection", b"close"))
        self.status = status
        self._wire.start_response(status, head)

    async def send(self, data: bytes) -> None:
        if self.gone:
            raise ClientGone
        if data:
            self.bytes_out += len(data)
            self._wire.write_body(data)
            try:  # the wire times out itself, and arms no timer unless it has to wait
                await self._wire.writable()
            except TimeoutError:
                raise BodyTimeout("client stopped reading the response") from None
        if self.gone:
            raise ClientGone

    async def finish(self) -> None:
        if self.gone:
            raise ClientGone
        self._wire.end_response()
        self.finished = True

    async def respond(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        extra: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await self.start(status, [*headers, *extra])
        if self.head.method != "HEAD":  # a HEAD answer has the headers of the body, not the body
            await self.send(body)
        await self.finish()


def error_body(message: str, *, code: str | None, error_type: str = "invalid_request_error") -> bytes:
    """An error body shaped like the API's own (built by realtime_proxy.api.errors)."""
    return http_error_body(message, code=code, type=error_type)
