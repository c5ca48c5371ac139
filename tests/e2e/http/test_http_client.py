"""The upstream HTTP client (edge/http/client.py) against a real HTTP/1.1 server on loopback: the
proxy's own server side, with a handler per test, so keep-alive and closes are real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from realtime_proxy.edge.http.client import Timeouts, UpstreamClient, UpstreamError, UpstreamTimedOut
from realtime_proxy.edge.http.connection import ConnectionLimits, HttpConnection
from realtime_proxy.edge.http.exchange import Exchange

Handler = Callable[[Exchange], Awaitable[None]]
FAST = Timeouts(connect=2.0, read=2.0, write=2.0, pool=0.2)


class Upstream:
    def __init__(self, handler: Handler, keepalive: float = 30.0) -> None:
        self.handler, self.keepalive = handler, keepalive
        self.connections: set[HttpConnection] = set()
        self.opened = 0
        self.server: asyncio.Server | None = None

    def factory(self) -> HttpConnection:
        self.opened += 1
        return HttpConnection(
            self.handler, ConnectionLimits(keepalive_timeout=self.keepalive), self.connections
        )

    async def __aenter__(self) -> str:
        self.server = await asyncio.get_running_loop().create_server(self.factory, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        for connection in list(self.connections):
            connection.abort()
        self.server.close()
        await self.server.wait_closed()


async def echo(exchange: Exchange) -> None:
    body = await exchange.read_all(1 << 20)
    await exchange.respond(200, exchange.head.target.encode() + b" " + body)


async def get(client: UpstreamClient, url: str, body: bytes | AsyncIterator[bytes] | None = None) -> bytes:
    response = await client.request("POST" if body is not None else "GET", url, [], body)
    try:
        return b"".join([chunk async for chunk in response.chunks()])
    finally:
        await response.aclose()


async def test_connections_are_kept_alive_and_reused() -> None:
    upstream = Upstream(echo)
    client = UpstreamClient(FAST, ssl_context=None, max_connections=4)
    async with asyncio.timeout(5), upstream as base:
        assert await get(client, base + "/a?x=1") == b"/a?x=1 "
        assert await get(client, base + "/b", b"body") == b"/b body"
        assert upstream.opened == 1
        await client.aclose()


async def test_an_idle_connection_the_upstream_closed_is_not_used_again() -> None:
    upstream = Upstream(echo)
    client = UpstreamClient(FAST, ssl_context=None, max_connections=4)
    async with asyncio.timeout(5), upstream as base:
        assert await get(client, base + "/1") == b"/1 "
        ((leg,),) = client._idle.values()
        assert leg.transport is not None
        leg.transport.pause_reading()  # the loop will not tell the protocol: only the kernel knows
        for connection in list(upstream.connections):
            connection.close_if_idle()  # as its keep-alive timer does
        while upstream.connections:
            await asyncio.sleep(0.01)
        assert await get(client, base + "/2") == b"/2 "
        assert upstream.opened == 2
        await client.aclose()


async def test_a_streamed_request_body_is_sent_chunked() -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"three"):
            yield part

    upstream = Upstream(echo)
    client = UpstreamClient(FAST, ssl_context=None, max_connections=4)
    async with asyncio.timeout(5), upstream as base:
        assert await get(client, base + "/up", body()) == b"/up one two three"
        assert await get(client, base + "/again") == b"/again "  # the connection survived
        assert upstream.opened == 1
        await client.aclose()


async def test_a_response_closed_before_its_end_closes_the_connection() -> None:
    async def long(exchange: Exchange) -> None:
        await exchange.start(200, [(b"content-length", b"8")])
        await exchange.send(b"half")
        await asyncio.sleep(10)  # never finishes: the client leaves

    upstream = Upstream(long)
    client = UpstreamClient(FAST, ssl_context=None, max_connections=1)
    async with asyncio.timeout(5), upstream as base:
        response = await client.request("GET", base + "/", [], None)
        assert await anext(response.chunks()) == b"half"
        await response.aclose()
        await response.aclose()  # once only: the slot is not released twice
        while upstream.connections:
            await asyncio.sleep(0.01)
        assert client._slots._value == 1
        await client.aclose()


async def test_no_free_slot_in_time_is_a_timeout_and_silence_is_a_read_timeout() -> None:
    async def silent(exchange: Exchange) -> None:
        await asyncio.sleep(10)

    upstream = Upstream(silent)
    client = UpstreamClient(
        Timeouts(connect=2, read=0.2, write=2, pool=0.1), ssl_context=None, max_connections=1
    )
    async with asyncio.timeout(5), upstream as base:
        first = asyncio.create_task(client.request("GET", base + "/", [], None))
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamTimedOut, match="free upstream connection"):
            await client.request("GET", base + "/", [], None)
        with pytest.raises(UpstreamTimedOut, match="read timeout"):
            await first
        assert client._slots._value == 1
        await client.aclose()


async def test_a_peer_that_is_not_http_is_an_upstream_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    client = UpstreamClient(FAST, ssl_context=None, max_connections=1)
    async with asyncio.timeout(5), server:
        with pytest.raises(UpstreamError, match=r"HTTP/1\.1"):
            await client.request("GET", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/", [], None)
        assert client._slots._value == 1
