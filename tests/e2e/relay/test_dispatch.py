"""The listener reads the request head itself and dispatches: a request that is not a WebSocket
upgrade never opens an upstream connection; it goes to the HTTP handler (`http_factory`) when there
is one, else gets a small JSON 426/404 (HEAD: no body); an oversized head gets 431."""

from __future__ import annotations

import asyncio

import pytest

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import ProxyFactory
from tests.e2e.helpers import error_body


async def exchange(port: int, request: bytes) -> bytes:
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        raw = await reader.read()
        writer.close()
    return raw


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


@pytest.mark.parametrize(
    ("request_head", "status", "code"),
    [
        # A GET with a key but no Upgrade once opened a real upstream WebSocket before answering 426.
        (b"GET /v1/realtime HTTP/1.1\r\nSec-WebSocket-Key: a2V5a2V5aw==\r\n", 426, "upgrade_required"),
        (b"POST /v1/realtime/calls HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n", 404, "not_found"),
        (b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\n", 426, "upgrade_required"),
    ],
)  # fmt: skip
async def test_plain_requests_get_json_and_no_upstream(
    make_proxy: ProxyFactory, fake: FakeUpstream, request_head: bytes, status: int, code: str
) -> None:
    proxy = await make_proxy()
    proxy.server.http_factory = None  # the listener's own answer when no HTTP handler is wired
    got, headers, body = parse(await exchange(proxy.port, request_head + b"\r\n{}"))
    assert got == status
    assert headers["content-type"] == "application/json"
    assert error_body(body)["error"]["code"] == code
    assert fake.connections == [] and fake.refused == []


async def test_head_gets_no_body(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    proxy.server.http_factory = None  # the listener's own answer when no HTTP handler is wired
    got, headers, body = parse(await exchange(proxy.port, b"HEAD /v1/realtime HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert (got, body) == (426, b"")
    assert int(headers["content-length"]) > 0


async def test_oversized_head_gets_431(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    request = b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    got, _, body = parse(await exchange(proxy.port, request))
    assert got == 431 and error_body(body)["error"]["code"] == "request_header_fields_too_large"
    assert fake.connections == []


class Recorder(asyncio.Protocol):
    """A stand-in HTTP handler: echoes what it was handed, then closes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.received += data
        if self.received.endswith(b"BODY"):
            body = b"got:" + self.received
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            self.transport.close()


async def test_non_upgrade_requests_are_handed_to_the_http_factory(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy()
    proxy.server.http_factory = Recorder
    request = b"POST /v1/realtime/calls HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nBODY"
    got, _, body = parse(await exchange(proxy.port, request))
    assert (got, body) == (200, b"got:" + request)  # the head and what followed it, byte for byte
    assert fake.connections == []
