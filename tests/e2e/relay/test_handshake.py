"""The client handshake through the real proxy: refused upstream handshakes relay status, JSON body and
only the allow-listed headers (Retry-After, x-request-id; never Set-Cookie); each result is counted in
realtime_proxy_upstream_handshakes_total; the browser flow (realtime + key subprotocol) answers
`realtime` and never echoes the key; beta clients in "reject" mode get 400 without an upstream
connection; /readyz turns 503 once shutdown starts."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import ProxyFactory
from tests.e2e.helpers import SECRET, error_body, http_get, raw_upgrade

BODY = b'{"error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"slow down"}}'


async def _refusing_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 7\r\n"
        b"x-request-id: req_123\r\nSet-Cookie: track=1\r\nX-Internal: secret-host\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    )
    await writer.drain()
    writer.close()


async def test_refusal_headers_allow_list(make_proxy: ProxyFactory) -> None:
    server = await asyncio.start_server(_refusing_upstream, "127.0.0.1", 0)
    try:
        proxy = await make_proxy(upstream_url=f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        with pytest.raises(InvalidStatus) as info:
            async with asyncio.timeout(10):
                await connect(proxy.realtime_url)
        response = info.value.response
        assert (response.status_code, response.body) == (429, BODY)
        assert response.headers["Retry-After"] == "7" and response.headers["x-request-id"] == "req_123"
        assert "Set-Cookie" not in response.headers and "X-Internal" not in response.headers
    finally:
        server.close()
        await server.wait_closed()


async def test_handshake_results_counted(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    for status in (401, 429, 503):
        fake.refuse_handshake = (status, {"error": {"message": "no"}})
        assert (await raw_upgrade(proxy.port, "/v1/realtime?model=m"))[0] == status
    fake.refuse_handshake = None
    assert (await raw_upgrade(proxy.port, "/v1/realtime?model=m"))[0] == 101
    samples = await proxy.scrape()
    for result in ("refused_401", "refused_429", "refused_5xx", "ok"):
        assert samples[f'realtime_proxy_upstream_handshakes_total{{result="{result}"}}'] == 1.0


async def test_browser_subprotocols(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    offered = [f"openai-insecure-api-key.{SECRET}", "realtime"]
    async with asyncio.timeout(10), connect(proxy.realtime_url, subprotocols=offered) as client:  # type: ignore[arg-type]
        assert client.subprotocol == "realtime"
        assert json.loads(await client.recv())["type"] == "session.created"
    record = fake.connections[-1]
    assert record.subprotocols_offered == offered and record.subprotocol_selected == "realtime"
    assert SECRET not in proxy.logs.getvalue()


async def test_beta_reject_mode(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(compat={"beta_clients": "reject"})
    status, body = await raw_upgrade(proxy.port, "/v1/realtime?model=m", {"OpenAI-Beta": "realtime=v1"})
    assert status == 400 and error_body(body)["error"]["code"] == "beta_api_shape_disabled"
    assert fake.connections == [] and fake.refused == []


async def test_readyz_during_shutdown(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy()
    assert (await http_get(proxy.health.port, "/readyz"))[0] == 200
    await proxy.server.shutdown(grace=0)
    assert (await http_get(proxy.health.port, "/readyz"))[0] == 503
    assert (await http_get(proxy.health.port, "/healthz"))[0] == 200
