"""Every WebSocket buffer bounded per direction and per source (edge/wire.py), through the
in-process proxy and the fake: a fragment flood is closed with 1009 past `max_fragments`; a
client that pings hard and never reads stops being read once the proxy's answers to it pile up,
and is closed with 1008 after `write_stall_timeout`, with keepalive off (`ping_interval = 0`)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import AsyncIterator

from websockets.exceptions import ConnectionClosed

from tests.conftest import API_KEY, ProxyFactory
from tests.e2e.helpers import closed_with, eventually, open_session


def masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One client frame (clients mask: RFC 6455 §5.3), payload under 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", (0x80 if fin else 0) | opcode, 0x80 | len(payload)) + mask + body


async def test_a_fragment_flood_is_closed_with_1009(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(max_fragments=100)
    client = await open_session(proxy)

    async def fragments() -> AsyncIterator[str]:
        yield '{"type":"input_audio_buffer.clear"'
        for _ in range(1000):
            yield ""  # empty continuation frames: no payload, all overhead
        yield "}"

    try:
        async with asyncio.timeout(5):
            await client.send(fragments())
    except ConnectionClosed:
        pass  # closed mid-flood
    async with asyncio.timeout(5):
        code, reason = await closed_with(client)
    assert (code, reason) == (1009, "message has too many fragments")


async def test_a_fragmented_message_within_the_bound_is_relayed_whole(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(max_fragments=100)
    client = await open_session(proxy)

    async def fragments() -> AsyncIterator[str]:
        for part in ('{"type":"input_audio_buffer', ".clear", '"}'):
            yield part

    async with asyncio.timeout(5):
        await client.send(fragments())
        while True:  # the fake answers the reassembled event
            if '"input_audio_buffer.cleared"' in str(await client.recv()):
                break
    await client.close()


async def test_a_client_that_pings_and_never_reads_is_bounded_then_closed(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(ping_interval=0, write_stall_timeout=0.5)
    async with asyncio.timeout(10):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no autotuning: the kernel holds little
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", proxy.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {API_KEY}\r\n\r\n".encode()
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        writer.transport.pause_reading()  # never reads again: the Pongs can only pile up
        ping = masked(0x9, b"p" * 125)
        writer.write(ping * 80_000)  # 10.5 MB of Pings, 10 MB of Pongs to answer them with
        (relay,) = proxy.server.relays
        client_leg = relay.client
        peak = 0

        def closed() -> bool:
            nonlocal peak
            if client_leg.transport is not None and not client_leg.closed:
                peak = max(peak, client_leg.transport.get_write_buffer_size())
            return not proxy.server.relays

        await eventually(closed, timeout=5, step=0.005)
        writer.transport.abort()
    assert client_leg.ws.close_sent is not None
    assert (client_leg.ws.close_sent.code, client_leg.ws.close_sent.reason) == (
        1008,
        "not reading: write buffer not drained",
    )
    assert peak < 2 * 1024 * 1024  # own_buffer_limit (1 MiB) plus one read's worth of answers
