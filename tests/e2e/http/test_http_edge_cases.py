"""Plain HTTP through the proxy at the edges: keep-alive and pipelining, a GET on the realtime path,
oversized and slow requests, disconnects on either side mid-stream, streamed uploads, inject mode.
Each has a defined outcome, and no connection is left behind on either leg."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.helpers import eventually

AUTH = f"Authorization: Bearer {API_KEY}\r\n"
TOKEN = "proxy-token-HTTP-7"
REAL_KEY = "sk-real-HTTPKEY-123456"


async def exchange_raw(port: int, data: bytes, *, until_closed: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read() if until_closed else await reader.read(65536)
    finally:
        writer.close()


def statuses(raw: bytes) -> list[int]:
    """Status codes of every response in a raw stream (bodies here never contain a status line)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def http_lines(proxy: RunningProxy) -> list[dict[str, object]]:
    return [line for line in proxy.log_lines() if line.get("event") == "http_request"]


async def no_connections_left(proxy: RunningProxy, *, upstream: bool = True) -> None:
    """No client connection left on the proxy; with `upstream`, none left at the fake either (a
    request broken off must close its upstream connection, not return it to the pool)."""
    await eventually(lambda: not proxy.server.http.connections and not (upstream and proxy.fake._http_live))


async def test_keep_alive_and_pipelined_requests_on_one_connection(proxy: RunningProxy) -> None:
    get = f"GET /v1/models HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()
    last = f"GET /v1/models HTTP/1.1\r\nHost: x\r\n{AUTH}Connection: close\r\n\r\n".encode()
    async with asyncio.timeout(10):
        raw = await exchange_raw(proxy.port, get + get + last)
    assert statuses(raw) == [200, 200, 200]
    assert len(proxy.fake.http.records) == 3
    await no_connections_left(proxy, upstream=False)  # the upstream leg keeps its pooled connection


async def test_head_is_answered_without_a_body_and_the_connection_kept(proxy: RunningProxy) -> None:
    head = f"HEAD /v1/models HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()
    anonymous_head = b"HEAD /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    last = f"GET /v1/models HTTP/1.1\r\nHost: x\r\n{AUTH}Connection: close\r\n\r\n".encode()
    async with asyncio.timeout(10):
        raw = await exchange_raw(proxy.port, head + anonymous_head + last)
    assert statuses(raw) == [404, 401, 200]  # the fake serves GET only; no key: 401
    assert raw.count(b'"error"') == 0 and raw.count(b'"object":"list"') == 1  # only the GET had a body


async def test_plain_get_on_the_realtime_path_opens_no_websocket(proxy: RunningProxy) -> None:
    request = f"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\n{AUTH}Connection: close\r\n\r\n"
    async with asyncio.timeout(10):
        raw = await exchange_raw(proxy.port, request.encode())
    assert statuses(raw) == [426]  # the upstream's answer to a plain GET there, relayed
    assert proxy.fake.connections == [] and proxy.fake.refused == []
    assert [(r.method, r.path) for r in proxy.fake.http.records] == [("GET", "/v1/realtime")]


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_session_config_is_413_and_never_forwarded(
    proxy: RunningProxy, chunked: bool
) -> None:
    big = b'{"session": {"instructions": "' + b"x" * (1024 * 1024 + 1) + b'"}}'
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(big)}"
    head = f"POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\n{AUTH}{framing}\r\nConnection: close\r\n"
    head += "\r\n"
    body = f"{len(big):x}\r\n".encode() + big + b"\r\n0\r\n\r\n" if chunked else big
    async with asyncio.timeout(10):
        raw = await exchange_raw(proxy.port, head.encode() + body)
    assert statuses(raw) == [413]
    assert orjson.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_too_large"
    assert proxy.fake.http.records == []
    await no_connections_left(proxy, upstream=False)


async def test_oversized_request_head_is_431(proxy: RunningProxy) -> None:
    head = f"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: {'y' * 70000}".encode()  # still incomplete
    async with asyncio.timeout(10):
        raw = await exchange_raw(proxy.port, head)
    assert statuses(raw) == [431]
    assert proxy.fake.http.records == []


@pytest.mark.parametrize("path", ["/v1/uploads/stream", "/v1/realtime/client_secrets"])
async def test_stalled_request_body_is_408(make_proxy: ProxyFactory, path: str) -> None:
    proxy = await make_proxy(http={"client_idle_timeout": 0.3})
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 100\r\n\r\n".encode()
    async with asyncio.timeout(10):
        raw = await exchange_raw(proxy.port, head + b'{"session":')
    assert statuses(raw) == [408]
    await no_connections_left(proxy)
    (line,) = http_lines(proxy)
    assert (line["status"], line["outcome"]) == (408, "refused")
    assert all(record.outcome != "complete" for record in proxy.fake.http.records)


async def test_stalled_second_request_head_is_408(make_proxy: ProxyFactory) -> None:
    # The listener bounds the first head; later heads on a kept-alive connection are bounded here.
    proxy = await make_proxy(http={"header_timeout": 0.3})
    first = f"GET /v1/models HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()
    async with asyncio.timeout(10):
        raw = await exchange_raw(proxy.port, first + b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
    assert statuses(raw) == [200, 408]
    assert len(proxy.fake.http.records) == 1


async def test_upstream_silent_past_the_read_timeout_is_504(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(http={"upstream_read_timeout": 0.3})
    proxy.fake.http.reply_delay = 5.0
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=proxy.base_url) as client:
        response = await client.get("/models", headers={"Authorization": f"Bearer {API_KEY}"})
    assert (response.status_code, response.json()["error"]["code"]) == (504, "upstream_timeout")
    await eventually(lambda: proxy.fake.http.records[-1].outcome == "client_gone")  # the request was dropped


async def test_client_leaving_mid_stream_closes_the_upstream_request(proxy: RunningProxy) -> None:
    proxy.fake.http.sse_interval = 0.2
    body = b'{"model": "gpt-4o-mini", "input": "hi", "stream": true}'
    request = (
        f"POST /v1/responses HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    async with asyncio.timeout(10):
        writer.write(request)
        assert b"response.created" in await reader.readuntil(b"response.created")
        writer.close()  # gone before the stream ends
        await eventually(lambda: proxy.fake.http.records[-1].outcome == "client_gone")
    assert not proxy.fake.http.stream_finished.is_set()
    await no_connections_left(proxy)
    (line,) = http_lines(proxy)
    assert (line["status"], line["outcome"]) == (200, "client_disconnected")


async def test_upstream_dropping_mid_stream_cuts_the_client_response(proxy: RunningProxy) -> None:
    proxy.fake.http.drop_stream_after = 3
    received = b""
    async with httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream(
                "POST", "/responses", json={"model": "m", "input": "hi", "stream": True},
                headers={"Authorization": f"Bearer {API_KEY}"},
            ) as response:  # fmt: skip
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    received += chunk
    assert received.count(b"event: ") == 3  # what arrived before the drop was delivered
    await no_connections_left(proxy)
    (line,) = http_lines(proxy)
    assert (line["status"], line["outcome"]) == (200, "upstream_disconnected")


async def test_client_not_reading_a_download_is_cut_off(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(http={"client_idle_timeout": 0.3})
    request = f"GET /v1/files/file_1/content?bytes={256 * 1024 * 1024} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n"
    _reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port, limit=1024)
    writer.transport.pause_reading()  # a client that never reads: kernel buffers fill, then the proxy's
    try:
        writer.write(request.encode())
        async with asyncio.timeout(10):
            await eventually(lambda: bool(http_lines(proxy)), timeout=10)
            await no_connections_left(proxy)
    finally:
        writer.close()
    (line,) = http_lines(proxy)
    assert (line["status"], line["outcome"]) == (200, "client_stalled")
    assert proxy.fake.http.records[-1].outcome == "client_gone"
    assert line["bytes_out"] < 256 * 1024 * 1024


async def test_upload_streams_through_without_waiting_for_the_whole_body(proxy: RunningProxy) -> None:
    chunk, count = b"z" * 65536, 64  # 4 MiB

    async def body() -> AsyncIterator[bytes]:
        yield chunk
        await proxy.fake.http.stream_started.wait()  # the upstream already has the first chunk
        for _ in range(count - 1):
            yield chunk

    async with asyncio.timeout(10), httpx.AsyncClient(base_url=proxy.base_url) as client:
        response = await client.post(
            "/uploads/stream", content=body(), headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert response.json() == {"object": "upload", "bytes": len(chunk) * count}
    samples = await proxy.scrape()
    assert (
        sample(samples, "realtime_proxy_http_bytes_total", route="other", direction="request")
        == len(chunk) * count
    )


@pytest.fixture
def real_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", REAL_KEY)


@pytest.mark.usefixtures("real_key_env")
async def test_inject_mode_checks_the_token_and_limits_the_key_to_realtime_routes(
    make_proxy: ProxyFactory,
) -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    proxy = await make_proxy(auth={"mode": "inject", "token_sha256": [digest]})
    session = {"session": {"type": "realtime"}}
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=proxy.base_url) as client:
        wrong = await client.post(
            "/realtime/client_secrets", json=session, headers={"Authorization": "Bearer no"}
        )
        other = await client.get("/models", headers={"Authorization": f"Bearer {TOKEN}"})
        minted = await client.post(
            "/realtime/client_secrets", json=session, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_api_key")
    assert (other.status_code, other.json()["error"]["code"]) == (403, "route_not_allowed")
    assert minted.status_code == 200
    (record,) = proxy.fake.http.records
    assert record.headers["authorization"] == f"Bearer {REAL_KEY}"
    assert "accept-encoding" not in record.headers  # answers come uncompressed, to be scrubbed
    proxy.fake.api_key = "sk-another-key"  # the upstream now refuses the injected key, quoting it
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=proxy.base_url) as client:
        refused = await client.post(
            "/realtime/client_secrets", json=session, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert refused.status_code == 401 and "[REDACTED]" in refused.json()["error"]["message"]
    assert REAL_KEY[-4:] not in refused.text  # the API's masked quote keeps the key's last characters
    assert TOKEN not in proxy.logs.getvalue() and REAL_KEY not in proxy.logs.getvalue()


async def test_origin_allow_list_applies_to_http(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(auth={"allowed_origins": ["https://app.example"]})
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=proxy.base_url, headers=auth) as client:
        foreign = await client.get("/models", headers={"Origin": "https://evil.example"})
        allowed = await client.get("/models", headers={"Origin": "https://app.example"})
        server = await client.get("/models")
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (403, "origin_not_allowed")
    assert (allowed.status_code, server.status_code) == (200, 200)
    assert len(proxy.fake.http.records) == 2


async def test_shutdown_lets_a_stream_in_flight_finish(proxy: RunningProxy) -> None:
    proxy.fake.http.sse_interval = 0.05
    body = {"model": "m", "input": "hi", "stream": True}
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=proxy.base_url) as client:
        idle = await client.get("/models", headers={"Authorization": f"Bearer {API_KEY}"})  # then kept alive
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=proxy.base_url) as streaming:
            async with streaming.stream("POST", "/responses", json=body, headers=headers) as response:
                chunks = response.aiter_raw()
                received = await anext(chunks)
                shutdown = asyncio.create_task(proxy.server.shutdown(grace=5))
                async for chunk in chunks:
                    received += chunk
            await shutdown
    assert idle.status_code == 200
    assert received.count(b"event: ") == 8 and b"response.completed" in received  # all of it
    assert not proxy.server.http.connections  # the idle one closed at once, the busy one once done
