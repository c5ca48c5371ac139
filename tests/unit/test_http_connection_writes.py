"""The server side's writes: an answer made in one go is one write (head and body together); a
streamed one goes out before the handler waits; a handler that never waits still meets the
transport's back-pressure (at most 64 KiB held). Against a transport that records its writes."""

from __future__ import annotations

import asyncio
from typing import Any

from realtime_proxy.edge.http.connection import ConnectionLimits, HttpConnection
from realtime_proxy.edge.http.exchange import Exchange

GET = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def serve(handler: Any, request: bytes = GET) -> tuple[HttpConnection, RecordingTransport]:
    connection = HttpConnection(handler, ConnectionLimits())
    transport = RecordingTransport()
    connection.connection_made(transport)
    connection.data_received(request)
    assert connection.task is not None
    async with asyncio.timeout(2):
        await connection.task
    return connection, transport


async def test_an_answer_made_in_one_go_is_one_write() -> None:
    async def handler(exchange: Exchange) -> None:
        await exchange.respond(200, b'{"object": "list"}')

    connection, transport = await serve(handler)
    (only,) = transport.writes
    assert only.startswith(b"HTTP/1.1 200 OK\r\n") and only.endswith(b'\r\n\r\n{"object": "list"}')
    connection.connection_lost(None)


async def test_a_streamed_answer_goes_out_before_the_handler_waits() -> None:
    seen_while_waiting: list[bytes] = []
    go_on = asyncio.Event()

    async def handler(exchange: Exchange) -> None:
        await exchange.start(200, [(b"content-type", b"text/event-stream")])
        await exchange.send(b"data: 1\n\n")
        waiting = asyncio.ensure_future(go_on.wait())
        await asyncio.sleep(0)  # the flush scheduled by the writes runs first
        await asyncio.sleep(0)
        seen_while_waiting.extend(transport.writes)
        go_on.set()
        await waiting
        await exchange.send(b"data: 2\n\n")
        await exchange.finish()

    connection = HttpConnection(handler, ConnectionLimits())
    transport = RecordingTransport()
    connection.connection_made(transport)
    connection.data_received(GET)
    assert connection.task is not None
    async with asyncio.timeout(2):
        await connection.task
    # head and first event in one write, while the handler waited; the rest at the end
    assert len(seen_while_waiting) == 1
    assert seen_while_waiting[0].startswith(b"HTTP/1.1 200") and b"data: 1" in seen_while_waiting[0]
    assert b"".join(transport.writes).endswith(b"data: 2\n\n\r\n0\r\n\r\n")
    connection.connection_lost(None)


async def test_a_handler_that_never_waits_still_writes_every_64_kib() -> None:
    chunk = b"z" * 16384

    async def handler(exchange: Exchange) -> None:
        await exchange.start(200, [(b"content-length", str(len(chunk) * 32).encode())])
        for _ in range(32):  # 512 KiB, no suspension in between
            await exchange.send(chunk)
        await exchange.finish()

    connection, transport = await serve(handler)
    assert len(transport.writes) >= 8
    assert max(len(w) for w in transport.writes) <= 64 * 1024 + 1024  # + the head
    assert sum(len(w) for w in transport.writes) > len(chunk) * 32
    connection.connection_lost(None)


async def wait_closed(transport: RecordingTransport) -> None:
    async with asyncio.timeout(2):
        while not transport.closing:
            await asyncio.sleep(0.01)


async def test_the_one_timer_closes_an_idle_connection_and_refuses_a_slow_head() -> None:
    async def handler(exchange: Exchange) -> None:
        await exchange.respond(200, b"{}")

    limits = ConnectionLimits(keepalive_timeout=0.05, header_timeout=0.05)
    idle = HttpConnection(handler, limits)
    idle.connection_made(idle_transport := RecordingTransport())
    await wait_closed(idle_transport)  # keep-alive timeout, nothing sent
    assert idle_transport.writes == []

    slow = HttpConnection(handler, limits)
    slow.connection_made(slow_transport := RecordingTransport())
    slow.data_received(GET)  # one whole exchange: the timer moves to the next keep-alive period
    assert slow.task is not None
    await slow.task
    slow.data_received(b"GET /v1/models HTTP/1.1\r\n")  # then a head that never ends
    await wait_closed(slow_transport)
    assert slow_transport.writes[-1].startswith(b"HTTP/1.1 408 ")
    for connection in (idle, slow):
        connection.connection_lost(None)
