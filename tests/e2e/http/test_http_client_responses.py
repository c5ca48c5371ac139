"""The upstream client against a scripted HTTP/1.1 peer on loopback: response shapes the proxy's own
server never produces (a body read to the close, an answer to HEAD with a length, 1xx, a chunked
body written a few bytes at a time), through real sockets and the real keep-alive pool."""

from __future__ import annotations

import asyncio

from realtime_proxy.edge.http.client import Timeouts, UpstreamClient

FAST = Timeouts(connect=2.0, read=2.0, write=2.0, pool=0.5)


class Scripted:
    """Answers the n-th request head on any connection with `answers[n]` (a list of writes);
    `close` after an answer closes that connection."""

    def __init__(self, *answers: tuple[list[bytes], bool]) -> None:
        self.answers = list(answers)
        self.opened = 0
        self.heads: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                writes, close = self.answers.pop(0)
                for piece in writes:
                    writer.write(piece)
                    await writer.drain()
                if close:
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


async def fetch(client: UpstreamClient, url: str, method: str = "GET") -> tuple[int, bytes]:
    response = await client.request(method, url, [], None)
    try:
        return response.status, b"".join([chunk async for chunk in response.chunks()])
    finally:
        await response.aclose()


async def run(peer: Scripted, *methods: str) -> list[tuple[int, bytes]]:
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    client = UpstreamClient(FAST, ssl_context=None, max_connections=1)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"
    try:
        async with asyncio.timeout(5), server:
            return [await fetch(client, url, method) for method in methods]
    finally:
        await client.aclose()


async def test_a_body_read_to_the_close_then_a_new_connection() -> None:
    peer = Scripted(
        ([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ", b"the close"], True),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], False),
    )
    assert await run(peer, "GET", "GET") == [(200, b"until the close"), (200, b"ok")]
    assert peer.opened == 2


async def test_head_then_get_on_one_connection() -> None:
    peer = Scripted(
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"], False),
        ([b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], False),
    )
    assert await run(peer, "HEAD", "GET") == [(200, b""), (200, b"ok")]
    assert peer.opened == 1
    assert peer.heads[0].startswith(b"HEAD /v1/x HTTP/1.1\r\nhost: 127.0.0.1:")


async def test_a_chunked_body_written_a_few_bytes_at_a_time() -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
    )
    pieces = [response[i : i + 3] for i in range(0, len(response), 3)]
    peer = Scripted((pieces, False), ([b"HTTP/1.1 204 No Content\r\n\r\n"], False))
    assert await run(peer, "GET", "DELETE") == [(200, b"abc0123456789abcdef"), (204, b"")]
    assert peer.opened == 1
