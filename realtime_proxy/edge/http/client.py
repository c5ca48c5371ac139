"""The upstream HTTP/1.1 client: h11 (sans-I/O) on the proxy's own asyncio transports, like the server
side (`connection.py`), with a keep-alive pool per origin.

It replaced httpx's transport, whose httpcore + anyio layers were over half of the proxy's CPU per
pass-through request (docs/performance-round3.md). What it keeps from it: no cookies, no redirects,
no environment proxies, no decoding (bytes pass as received), connect/read/write/pool timeouts, and
back-pressure both ways (the upstream socket is not read while the client is behind)."""

from __future__ import annotations

import asyncio
import select
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import h11

_HIGH_WATER = 256 * 1024  # response bytes queued before the upstream socket stops being read


class UpstreamError(Exception):
    """The upstream could not be reached, or broke the exchange off."""


class UpstreamTimedOut(UpstreamError):
    """Connect, pool, write or read timeout."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    read: float  # for the response head, and between response bytes
    write: float  # for the upstream to take more of the request body
    pool: float  # for a free connection slot


class _Leg(asyncio.Protocol):
    """One upstream connection. Events arrive in a queue; the exchange awaits them."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.events: deque[Any] = deque()
        self.queued = 0
        self.failure: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None
        self.reading = True
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.h11.receive_data(data)
            while True:
                event = self.h11.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    break
                if type(event) is h11.Data:
                    self.queued += len(event.data)
                self.events.append(event)
                if type(event) is h11.ConnectionClosed:
                    break  # h11 repeats it forever
        except h11.RemoteProtocolError as exc:
            self._fail(UpstreamError(f"upstream broke HTTP/1.1: {exc}"))
        if self.queued > _HIGH_WATER and self.reading and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool | None:
        self.data_received(b"")  # h11: the end of a close-delimited body, or a broken exchange
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
        self.failure = failure
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def send(self, *events: Any) -> None:
        assert self.transport is not None
        self.transport.write(b"".join(self.h11.send(e) or b"" for e in events))

    async def drained(self, within: float) -> None:
        if self.writable is not None:
            async with asyncio.timeout(within):
                await asyncio.shield(self.writable)
        if self.failure is not None and not self.events:
            raise self.failure

    async def next_event(self, within: float) -> Any:
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

    def take(self) -> Any:
        """The next queued event (there is one)."""
        event = self.events.popleft()
        if type(event) is h11.Data:
            self.queued -= len(event.data)
            if not self.reading and self.queued < _HIGH_WATER // 4 and self.transport is not None:
                self.reading = True
                self.transport.resume_reading()
        return event

    def reusable(self) -> bool:
        return self.failure is None and self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE


class UpstreamResponse:
    """Status and raw headers (names as the upstream wrote them); the body is streamed by `chunks`."""

    def __init__(self, client: UpstreamClient, origin: tuple[str, int, bool], leg: _Leg,
                 head: h11.Response, read_timeout: float) -> None:  # fmt: skip
        self.status: int = head.status_code
        self.headers: list[tuple[bytes, bytes]] = list(head.headers.raw_items())
        self._client, self._origin, self._leg, self._timeout = client, origin, leg, read_timeout
        self._done = False
        self._closed = False

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as received: what one read of the upstream socket brought comes as one chunk
        (its Data events joined), so it goes to the client in one write."""
        leg = self._leg
        while not self._done:
            event = await leg.next_event(self._timeout)
            if type(event) is h11.EndOfMessage:
                self._done = True
            elif type(event) is h11.Data:
                parts = [event.data]
                while leg.events and type(leg.events[0]) is h11.Data:
                    parts.append(leg.take().data)
                if leg.events and type(leg.events[0]) is h11.EndOfMessage:
                    leg.take()
                    self._done = True
                yield bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    async def aclose(self) -> None:
        """Back to the pool when the exchange ended cleanly; otherwise the connection is closed, which
        is how the upstream learns that the client went away."""
        if self._closed:
            return
        self._closed = True
        leg, self._leg.events = self._leg, deque()
        if self._done and leg.reusable():
            leg.h11.start_next_cycle()
            self._client.release(self._origin, leg)
        else:
            self._client.discard(leg)


class UpstreamClient:
    def __init__(self, timeouts: Timeouts, *, ssl_context: ssl.SSLContext | None, max_connections: int,
                 max_idle: int = 32, keepalive_expiry: float = 5.0) -> None:  # fmt: skip
        self.timeouts = timeouts
        self._ssl = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, int, bool], list[_Leg]] = {}
        self._max_idle, self._expiry = max_idle, keepalive_expiry
        self._closed = False

    async def request(self, method: str, url: str, headers: list[tuple[str, str]],
                      content: bytes | AsyncIterator[bytes] | None) -> UpstreamResponse:  # fmt: skip
        """Send one request; returns once the response head has arrived. The caller must `aclose`
        the response. Raises UpstreamError (UpstreamTimedOut for timeouts)."""
        origin, host, target = _split(url)
        t = self.timeouts
        if self._slots.locked():  # a timer only when there is a wait
            try:
                async with asyncio.timeout(t.pool):
                    await self._slots.acquire()
            except TimeoutError:
                raise UpstreamTimedOut("no free upstream connection in time") from None
        else:
            await self._slots.acquire()  # free: returns without suspending
        leg: _Leg | None = None
        try:
            leg = self._idle_leg(origin) or await self._connect(origin)
            fields = [("host", host), *headers]
            if content is None:
                leg.send(h11.Request(method=method, target=target, headers=fields), h11.EndOfMessage())
            elif isinstance(content, bytes):
                if not any(k.lower() == "content-length" for k, _ in headers):
                    fields.append(("content-length", str(len(content))))
                request = h11.Request(method=method, target=target, headers=fields)
                leg.send(request, h11.Data(data=content), h11.EndOfMessage())
            else:
                await self._stream_body(leg, method, target, fields, content)
            while True:
                event = await leg.next_event(t.read)
                if type(event) is h11.Response:
                    return UpstreamResponse(self, origin, leg, event, t.read)
                # 1xx: skipped, as the client never asked for them
        except BaseException:
            self._slots.release()
            if leg is not None:
                _close(leg)
            raise

    async def _stream_body(self, leg: _Leg, method: str, target: str, fields: list[tuple[str, str]],
                           content: AsyncIterator[bytes]) -> None:  # fmt: skip
        if not any(k.lower() == "content-length" for k, _ in fields):
            fields.append(("transfer-encoding", "chunked"))
        leg.send(h11.Request(method=method, target=target, headers=fields))
        async for chunk in content:
            if leg.failure is not None:
                break  # answered or dropped early: what it said is read next
            leg.send(h11.Data(data=chunk))
            try:
                await leg.drained(self.timeouts.write)
            except TimeoutError:
                raise UpstreamTimedOut("upstream stopped reading the request body") from None
        if leg.failure is None:
            leg.send(h11.EndOfMessage())

    def _idle_leg(self, origin: tuple[str, int, bool]) -> _Leg | None:
        idle = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            leg = idle.pop()
            if leg.failure is None and now - leg.idle_since < self._expiry and not _readable(leg):
                return leg
            _close(leg)
        return None

    async def _connect(self, origin: tuple[str, int, bool]) -> _Leg:
        host, port, tls = origin
        loop = asyncio.get_running_loop()
        context = (self._ssl or ssl.create_default_context()) if tls else None
        try:
            async with asyncio.timeout(self.timeouts.connect):
                _, leg = await loop.create_connection(_Leg, host, port, ssl=context)
        except TimeoutError:
            raise UpstreamTimedOut("upstream connect timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"upstream unreachable: {type(exc).__name__}") from None
        return leg

    def release(self, origin: tuple[str, int, bool], leg: _Leg) -> None:
        self._slots.release()
        idle = self._idle.setdefault(origin, [])
        if self._closed or len(idle) >= self._max_idle:
            _close(leg)
            return
        leg.idle_since = asyncio.get_running_loop().time()
        idle.append(leg)

    def discard(self, leg: _Leg) -> None:
        self._slots.release()
        _close(leg)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for leg in idle:
                _close(leg)
        self._idle.clear()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimedOut("upstream silent past the read timeout"))


def _readable(leg: _Leg) -> bool:
    """An idle connection with something to read has been closed (or sent garbage) by the upstream,
    though the loop may not have told its protocol yet: one poll instead of a failed request."""
    sock = leg.transport.get_extra_info("socket") if leg.transport is not None else None
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _close(leg: _Leg) -> None:
    if leg.failure is None:
        leg.failure = UpstreamError("connection closed by the proxy")
    if leg.transport is not None:
        leg.transport.abort()


def _split(url: str) -> tuple[tuple[str, int, bool], str, str]:
    """`https://host:port/path?q` -> ((host, port, tls), Host header, target). The base URL is
    configuration and the target was checked by `upstream_url`."""
    tls = url.startswith("https://")
    rest = url[8:] if tls else url[7:]
    slash = rest.find("/")
    authority, target = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host, colon, port = authority.rpartition(":")
    if not colon or not port.isdigit() or host.endswith(":"):  # no port (or a bare IPv6 address)
        host, port = authority, ("443" if tls else "80")
    return (host.strip("[]"), int(port), tls), authority, target
