"""The health/metrics endpoint answers HEAD with the GET's headers and no body (RFC 9110 9.3.2)."""

from __future__ import annotations

import asyncio

import pytest

from realtime_proxy.edge.health import HealthServer
from realtime_proxy.observe.metrics import Metrics


async def raw_request(port: int, method: str, path: str) -> bytes:
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()  # the server closes after one answer
        writer.close()
        await writer.wait_closed()
        return answer


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/nowhere"])
async def test_head_gets_the_get_headers_without_a_body(path: str) -> None:
    health = HealthServer(Metrics().registry, lambda: False)
    await health.start("127.0.0.1", 0)
    try:
        get = await raw_request(health.port, "GET", path)
        head = await raw_request(health.port, "HEAD", path)
    finally:
        await health.stop()
    get_head, get_body = get.split(b"\r\n\r\n", 1)
    head_head, head_body = head.split(b"\r\n\r\n", 1)
    assert get_body and head_body == b""
    assert head_head == get_head  # same status line, type and Content-Length
    assert f"Content-Length: {len(get_body)}".encode() in head_head
