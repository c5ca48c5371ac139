"""An upstream that cannot be reached is reported with its cause: the name does not resolve (`dns`),
nothing listens (`refused`), its certificate is not trusted (`tls`), it never answers (`timeout`), or
it answers the WebSocket handshake with an error status (`http_status`) — in the warning line and as
`realtime_proxy_upstream_failures_total{leg,cause}`, for the WebSocket handshake and for plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import ProxyFactory, RunningProxy, sample
from tests.e2e.helpers import AUTH, SECRET, raw_upgrade, self_signed


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def silent_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Accepts connections (and the TLS handshake, with `tls`) and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0, ssl=tls)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def status_server(status: int) -> AsyncIterator[int]:
    """Answers every request with `status` and a JSON error."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"error": {"message": "overloaded"}}'
        writer.write(b"HTTP/1.1 %d Error\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def failure_lines(proxy: RunningProxy, event: str) -> list[dict[str, object]]:
    return [line for line in proxy.log_lines() if line["event"] == event]


async def assert_cause(proxy: RunningProxy, leg: str, cause: str, event: str) -> None:
    samples = await proxy.scrape()
    counted = {
        key: value
        for key, value in samples.items()
        if key.startswith("realtime_proxy_upstream_failures_total{") and value
    }
    assert counted == {f'realtime_proxy_upstream_failures_total{{cause="{cause}",leg="{leg}"}}': 1.0}
    (line,) = failure_lines(proxy, event)
    assert line["cause"] == cause and line["level"] == "warning"
    assert SECRET not in proxy.logs.getvalue()


async def handshake(proxy: RunningProxy) -> int:
    status, _ = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime")
    return status


async def http_request(proxy: RunningProxy) -> int:
    """A plain `GET /v1/models` through the proxy; the status it answers."""
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            auth = AUTH["Authorization"]
            writer.write(f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return int(head.split(b" ", 2)[1])


@pytest.mark.parametrize(("leg", "send", "event"), [
    ("websocket", handshake, "upstream_handshake_failed"),
    ("http", http_request, "upstream_request_failed"),
])  # fmt: skip
async def test_dns_and_refused(make_proxy: ProxyFactory, leg: str, send: object, event: str) -> None:
    assert callable(send)
    for host, cause in (("nonexistent.invalid", "dns"), (f"127.0.0.1:{closed_port()}", "refused")):
        proxy = await make_proxy(upstream_url=f"ws://{host}")
        assert await send(proxy) == 502
        await assert_cause(proxy, leg, cause, event)


@pytest.mark.parametrize(("leg", "send", "event"), [
    ("websocket", handshake, "upstream_handshake_failed"),
    ("http", http_request, "upstream_request_failed"),
])  # fmt: skip
async def test_untrusted_certificate(
    make_proxy: ProxyFactory, tmp_path: Path, leg: str, send: object, event: str
) -> None:
    assert callable(send)
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    async with silent_server(tls) as port:
        proxy = await make_proxy(upstream_url=f"wss://127.0.0.1:{port}")
        assert await send(proxy) == 502
        await assert_cause(proxy, leg, "tls", event)


async def test_handshake_timeout(make_proxy: ProxyFactory) -> None:
    async with silent_server() as port:
        proxy = await make_proxy(upstream_url=f"ws://127.0.0.1:{port}", handshake_timeout=0.2)
        assert await handshake(proxy) == 504
        await assert_cause(proxy, "websocket", "timeout", "upstream_handshake_failed")
        assert sample(await proxy.scrape(), "realtime_proxy_upstream_handshakes_total", result="timeout") == 1


async def test_http_timeout(make_proxy: ProxyFactory) -> None:
    async with silent_server() as port:
        proxy = await make_proxy(upstream_url=f"ws://127.0.0.1:{port}", http={"upstream_read_timeout": 0.2})
        assert await http_request(proxy) == 504
        await assert_cause(proxy, "http", "timeout", "upstream_request_failed")


async def test_handshake_refused_with_a_status(make_proxy: ProxyFactory) -> None:
    async with status_server(503) as port:
        proxy = await make_proxy(upstream_url=f"ws://127.0.0.1:{port}")
        assert await handshake(proxy) == 503  # relayed as the upstream answered
        await assert_cause(proxy, "websocket", "http_status", "upstream_handshake_failed")
        (line,) = failure_lines(proxy, "upstream_handshake_failed")
        assert line["status"] == 503
