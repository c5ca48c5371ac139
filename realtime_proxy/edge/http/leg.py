"""One upstream HTTP/1.1 connection: the request written as bytes, the response parsed by llhttp
(`httptools`, C) on the proxy's own asyncio transport. Parsed pieces go to a queue the exchange
(`client.py`) awaits: a `Head`, body bytes as received, then `END`.

llhttp refuses what h11 refused before it (a bad status line, invalid header bytes, two
Content-Lengths, Content-Length with Transfer-Encoding, bad chunk sizes); on top of it, as h11 did:
Transfer-Encoding other than `chunked` is refused, a head over 16 KiB is refused, an unasked 101 is
refused, 1xx answers are skipped, a body with neither length nor chunks ends at the close, and the
answer to HEAD has no body. Whatever follows a complete response (data before the next request) is
a broken exchange: the connection is closed after the response, never reused."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from typing import cast

import httptools

from realtime_proxy.edge.http.errors import UpstreamError, UpstreamTimedOut

_HIGH_WATER = 256 * 1024  # response bytes queued before the upstream socket stops being read
_MAX_HEAD = 16 * 1024  # as h11's max_incomplete_event_size: a response head is bounded
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+").fullmatch
# A field value as h11 writes it: no control bytes but HTAB, no whitespace at either end.
_VALUE = re.compile(r"(?:[^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?)?").fullmatch


class Head:
    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status, self.headers = status, headers


END = b""  # the end of the response (body pieces are never empty)


class _Stop(Exception):
    """Raised from a parser callback to stop llhttp; `done` when the response is whole (HEAD)."""

    def __init__(self, reason: str = "", done: bool = False) -> None:
        super().__init__(reason)
        self.done = done


def request_head(method: str, target: str, fields: list[tuple[str, str]]) -> bytes:
    """The request line and header block. Names and values are checked as h11 checked them, so
    nothing the client sent can split the head (the server side's parser already refused that)."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    for name, value in fields:
        if _TOKEN(name) is None or _VALUE(value) is None:
            raise UpstreamError(f"header not valid for the upstream: {name[:40]!r}")
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")  # values were decoded as latin-1


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


class Leg(asyncio.Protocol):
    """The connection's protocol and llhttp's callback object. `begin` before each request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.events: deque[Head | bytes] = deque()
        self.queued = 0
        self.failure: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None
        self.reading = True
        self.idle_since = 0.0
        self.parser: httptools.HttpResponseParser | None = None  # None while idle
        self.sent = False  # the whole request is written
        self.complete = False  # the final response has ended
        self.keep_alive = False
        self._head_only = False
        self._in_head = True
        self._head_bytes = 0
        self._framed = False
        self._headers: list[tuple[bytes, bytes]] = []

    def begin(self, head_only: bool) -> None:
        """A new exchange: a fresh parser (llhttp stops for good after a HEAD answer's head)."""
        self.parser = httptools.HttpResponseParser(self)
        self.sent = self.complete = self.keep_alive = False
        self._head_only, self._in_head, self._head_bytes = head_only, True, 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None or self.complete:
            self._fail(UpstreamError("upstream broke HTTP/1.1: data outside a response"))
        else:
            if self._in_head:
                self._head_bytes += len(data)
            try:
                parser.feed_data(data)
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
                stop = exc.__context__
                if isinstance(stop, _Stop) and stop.done:
                    # The head's last byte ends this read, or the upstream sent a body to HEAD.
                    self.keep_alive = self.keep_alive and data.endswith(b"\n")
                else:
                    self._fail(UpstreamError(f"upstream broke HTTP/1.1: {stop or exc}"))
            if self._in_head and self._head_bytes > _MAX_HEAD and self.failure is None:
                self._fail(UpstreamError("upstream broke HTTP/1.1: response head too large"))
            if self.queued > _HIGH_WATER and self.reading and self.transport is not None:
                self.reading = False
                self.transport.pause_reading()
        self._wake()

    # llhttp's callbacks (httptools looks them up by name)

    def on_message_begin(self) -> None:
        if self.complete:
            raise _Stop("data after the response")
        self._headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value.rstrip(b" \t")))  # llhttp strips the leading whitespace only

    def on_headers_complete(self) -> None:
        parser = self.parser
        assert parser is not None
        status = parser.get_status_code()
        if status < 200:
            if status == 101:
                raise _Stop("switched protocols without a proposal")
            return  # 1xx: skipped, as the client never asked for them
        framed = False
        for name, value in self._headers:
            size = len(name)
            if size == 17 and name.lower() == b"transfer-encoding":
                if value.lower() != b"chunked":
                    raise _Stop("only Transfer-Encoding: chunked is supported")
                framed = True
            elif size == 14 and name.lower() == b"content-length":
                framed = True
        self._in_head, self._framed = False, framed
        self.keep_alive = parser.should_keep_alive()
        self.events.append(Head(status, self._headers))
        if self._head_only:  # no body, whatever its headers say: llhttp is stopped here
            self.complete = True
            self.events.append(END)
            raise _Stop(done=True)

    def on_body(self, body: bytes) -> None:
        self.queued += len(body)
        self.events.append(body)

    def on_message_complete(self) -> None:
        if self._in_head:
            return  # the end of a 1xx
        parser = self.parser
        assert parser is not None
        self.keep_alive = self.keep_alive and parser.should_keep_alive()
        self.complete = True
        self.events.append(END)

    def eof_received(self) -> bool | None:
        if not (self.complete or self._in_head or self._framed or self.parser is None):
            self.complete = True  # a body with neither length nor chunks ends at the close
            self.keep_alive = False
            self.events.append(END)
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.failure is None:
            self.failure = UpstreamError("upstream connection closed")
        self._wake()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    def _fail(self, failure: Exception) -> None:
        if self.failure is None:
            self.failure = failure
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def drained(self, within: float) -> None:
        if self.writable is not None:
            async with asyncio.timeout(within):
                await asyncio.shield(self.writable)
        if self.failure is not None and not self.events:
            raise self.failure

    async def next_event(self, within: float) -> Head | bytes:
        while not self.events:
            if self.failure is not None:
                raise self.failure
            loop = asyncio.get_running_loop()
            self.waiter = waiter = loop.create_future()
            # A plain timer on the waiter: asyncio.timeout's context manager cost more than the wait.
            timer = loop.call_later(within, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self.waiter = None
                if waiter.done() and not waiter.cancelled():
                    waiter.exception()  # retrieved, even when a cancellation came first
        return self.take()

    def take(self) -> Head | bytes:
        """The next queued event (there is one)."""
        event = self.events.popleft()
        if type(event) is bytes and event:
            self.queued -= len(event)
            if not self.reading and self.queued < _HIGH_WATER // 4 and self.transport is not None:
                self.reading = True
                self.transport.resume_reading()
        return event

    def reusable(self) -> bool:
        return self.failure is None and self.sent and self.complete and self.keep_alive


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimedOut("upstream silent past the read timeout"))
