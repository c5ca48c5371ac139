"""The upstream HTTP/1.1 client: requests written as bytes and responses parsed by llhttp (`leg.py`) on
the proxy's own asyncio transports, with a keep-alive pool per origin.

It replaced httpx's transport, whose httpcore + anyio layers were over half of the proxy's CPU per
pass-through request (docs/performance-round3.md), then h11, half of what remained (docs/perf-rest2.md).
What it keeps from them: no cookies, no redirects, no environment proxies, no decoding (bytes pass as
received), connect/read/write/pool timeouts, and back-pressure both ways (the upstream socket is not
read while the client is behind)."""

from __future__ import annotations

import asyncio
import select
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

from realtime_proxy.edge.http.errors import UpstreamError, UpstreamTimedOut
from realtime_proxy.edge.http.leg import LAST_CHUNK, Head, Leg, chunk, request_head

__all__ = ["Timeouts", "UpstreamClient", "UpstreamError", "UpstreamResponse", "UpstreamTimedOut"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    read: float  # for the response head, and between response bytes
    write: float  # for the upstream to take more of the request body
    pool: float  # for a free connection slot


class UpstreamResponse:
    """Status and raw headers (names as the upstream wrote them); the body is streamed by `chunks`."""

    def __init__(self, client: UpstreamClient, origin: tuple[str, int, bool], leg: Leg,
                 head: Head, read_timeout: float) -> None:  # fmt: skip
        self.status: int = head.status
        self.headers: list[tuple[bytes, bytes]] = head.headers
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
            if not event:  # END
                self._done = True
            elif type(event) is bytes:
                parts = [event]
                events = leg.events
                while events:
                    if not events[0]:  # END came with it
                        events.popleft()
                        self._done = True
                        break
                    parts.append(cast(bytes, leg.take()))
                yield parts[0] if len(parts) == 1 else b"".join(parts)

    async def aclose(self) -> None:
        """Back to the pool when the exchange ended cleanly; otherwise the connection is closed, which
        is how the upstream learns that the client went away."""
        if self._closed:
            return
        self._closed = True
        leg, self._leg.events = self._leg, deque()
        if self._done and leg.reusable():
            self._client.release(self._origin, leg)
        else:
            self._client.discard(leg)


class UpstreamClient:
    def __init__(self, timeouts: Timeouts, *, ssl_context: ssl.SSLContext | None, max_connections: int,
                 max_idle: int = 32, keepalive_expiry: float = 5.0) -> None:  # fmt: skip
        self.timeouts = timeouts
        self._ssl = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, int, bool], list[Leg]] = {}
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
        leg: Leg | None = None
        try:
            leg = self._idle_leg(origin) or await self._connect(origin)
            leg.begin(head_only=method == "HEAD")
            fields = [("host", host), *headers]
            if content is None:
                leg.write(request_head(method, target, fields))
                leg.sent = True
            elif isinstance(content, bytes):
                if not any(k.lower() == "content-length" for k, _ in headers):
                    fields.append(("content-length", str(len(content))))
                leg.write(request_head(method, target, fields) + content)
                leg.sent = True
            else:
                await self._stream_body(leg, method, target, fields, content)
            event = await leg.next_event(t.read)  # the leg queues the final head first (1xx skipped)
            return UpstreamResponse(self, origin, leg, cast(Head, event), t.read)
        except BaseException:
            self._slots.release()
            if leg is not None:
                _close(leg)
            raise

    async def _stream_body(self, leg: Leg, method: str, target: str, fields: list[tuple[str, str]],
                           content: AsyncIterator[bytes]) -> None:  # fmt: skip
        chunked = not any(k.lower() == "content-length" for k, _ in fields)
        if chunked:
            fields.append(("transfer-encoding", "chunked"))
        leg.write(request_head(method, target, fields))
        async for data in content:
            if leg.failure is not None:
                break  # answered or dropped early: what it said is read next
            if not data:
                continue  # an empty chunk would end a chunked body
            leg.write(chunk(data) if chunked else data)
            try:
                await leg.drained(self.timeouts.write)
            except TimeoutError:
                raise UpstreamTimedOut("upstream stopped reading the request body") from None
        if leg.failure is None:
            if chunked:
                leg.write(LAST_CHUNK)
            leg.sent = True

    def _idle_leg(self, origin: tuple[str, int, bool]) -> Leg | None:
        idle = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            leg = idle.pop()
            if leg.failure is None and now - leg.idle_since < self._expiry and not _readable(leg):
                return leg
            _close(leg)
        return None

    async def _connect(self, origin: tuple[str, int, bool]) -> Leg:
        host, port, tls = origin
        loop = asyncio.get_running_loop()
        context = (self._ssl or ssl.create_default_context()) if tls else None
        try:
            async with asyncio.timeout(self.timeouts.connect):
                _, leg = await loop.create_connection(Leg, host, port, ssl=context)
        except TimeoutError:
            raise UpstreamTimedOut("upstream connect timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"upstream unreachable: {type(exc).__name__}") from None
        return leg

    def release(self, origin: tuple[str, int, bool], leg: Leg) -> None:
        self._slots.release()
        idle = self._idle.setdefault(origin, [])
        if self._closed or len(idle) >= self._max_idle:
            _close(leg)
            return
        leg.idle_since = asyncio.get_running_loop().time()
        idle.append(leg)

    def discard(self, leg: Leg) -> None:
        self._slots.release()
        _close(leg)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for leg in idle:
                _close(leg)
        self._idle.clear()


def _readable(leg: Leg) -> bool:
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


def _close(leg: Leg) -> None:
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
