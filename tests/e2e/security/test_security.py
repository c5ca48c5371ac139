"""Security through the real proxy: auth inject mode (Bearer token or browser key subprotocol accepted,
the token never forwarded or echoed, the upstream sees only the real key from env or file; missing/wrong
token -> 401 JSON before any upstream connection), the Origin allow-list (403), passthrough keeps the
client's key; TLS towards clients (--tls-cert/--tls-key on a real CLI) and towards a private-CA upstream
(upstream_ca_bundle; without it -> 502); no secret in any log line, metric or handshake error body."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import ProxyFactory, RunningProxy
from tests.e2e.helpers import (
    SECRET,
    EchoUpstream,
    error_body,
    http_get,
    proxy_process,
    raw_upgrade,
    self_signed,
)

TOKEN = "proxy-token-TOPSECRET-42"
REAL_KEY = "sk-real-UPSTREAMKEY-987654"
KEY_PROTO = "openai-insecure-api-key."


def inject(**extra: object) -> dict[str, object]:
    return {"mode": "inject", "token_sha256": [hashlib.sha256(TOKEN.encode()).hexdigest()], **extra}


async def metrics_text(proxy: RunningProxy) -> str:
    status, body = await http_get(proxy.health.port, "/metrics")
    assert status == 200
    return body.decode()


async def assert_no_secrets(proxy: RunningProxy, *extra: bytes, secrets: tuple[str, ...] = ()) -> None:
    haystacks = [proxy.logs.getvalue(), await metrics_text(proxy), *(b.decode() for b in extra)]
    for secret in (SECRET, TOKEN, REAL_KEY, *secrets):
        for text in haystacks:
            assert secret not in text


async def session_created(url: str, **kwargs: object) -> str | None:
    async with asyncio.timeout(10), connect(url, **kwargs) as client:  # type: ignore[arg-type]
        assert json.loads(await client.recv())["type"] == "session.created"
        return client.subprotocol


@pytest.fixture
def real_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", REAL_KEY)


@pytest.mark.usefixtures("real_key_env")
async def test_inject_bearer_token(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(auth=inject())
    await session_created(proxy.realtime_url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
    headers = fake.connections[-1].headers
    assert headers["authorization"] == f"Bearer {REAL_KEY}"
    assert not any(TOKEN in v for v in headers.values())
    await assert_no_secrets(proxy)


@pytest.mark.usefixtures("real_key_env")
async def test_inject_browser_subprotocol_not_forwarded_or_echoed(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy(auth=inject())
    chosen = await session_created(proxy.realtime_url, subprotocols=["realtime", KEY_PROTO + TOKEN])
    assert chosen == "realtime"
    record = fake.connections[-1]
    assert record.subprotocols_offered == ["realtime"]
    assert record.headers["authorization"] == f"Bearer {REAL_KEY}"
    assert not any(TOKEN in v for v in record.headers.values())
    await assert_no_secrets(proxy)


async def test_inject_key_from_file_as_api_key_header(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(REAL_KEY + "\n")
    proxy = await make_proxy(auth=inject(upstream_key_file=str(key_file), upstream_key_header="api-key"))
    await session_created(proxy.realtime_url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
    headers = fake.connections[-1].headers
    assert headers["api-key"] == REAL_KEY and "authorization" not in headers


@pytest.mark.usefixtures("real_key_env")
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}, {"api-key": TOKEN}],
)
async def test_inject_refuses_missing_or_wrong_token(
    make_proxy: ProxyFactory, fake: FakeUpstream, headers: dict[str, str]
) -> None:
    proxy = await make_proxy(auth=inject())
    status, body = await raw_upgrade(
        proxy.port, "/v1/realtime?model=gpt-realtime", {"Authorization": ""} | headers
    )
    assert status == 401
    assert error_body(body)["error"]["code"] == "invalid_api_key"
    assert fake.connections == [] and fake.refused == []  # refused before any upstream connection
    await assert_no_secrets(proxy, body)


@pytest.mark.usefixtures("real_key_env")
async def test_inject_wrong_browser_token_401(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(auth=inject())
    with pytest.raises(InvalidStatus) as info:
        async with asyncio.timeout(10):
            await connect(proxy.realtime_url, subprotocols=["realtime", KEY_PROTO + "nope"])  # type: ignore[list-item]
    assert info.value.response.status_code == 401
    assert fake.connections == []


async def test_origin_allow_list(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(auth={"allowed_origins": ["https://app.example"]})
    status, body = await raw_upgrade(proxy.port, "/v1/realtime", {"Origin": "https://evil.example"})
    assert status == 403 and error_body(body)["error"]["code"] == "origin_not_allowed"
    assert fake.connections == []
    auth = {"Authorization": f"Bearer {SECRET}"}
    await session_created(proxy.realtime_url, additional_headers=auth, origin="https://app.example")
    await session_created(proxy.realtime_url, additional_headers=auth)  # non-browser clients send none
    assert "origin" not in fake.connections[0].headers  # never forwarded


async def test_passthrough_keeps_client_key(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    await session_created(proxy.realtime_url, additional_headers={"Authorization": f"Bearer {SECRET}"})
    assert fake.connections[-1].headers["authorization"] == f"Bearer {SECRET}"
    chosen = await session_created(proxy.realtime_url, subprotocols=["realtime", KEY_PROTO + SECRET])
    assert chosen == "realtime"
    assert fake.connections[-1].subprotocols_offered == ["realtime", KEY_PROTO + SECRET]
    # A refused handshake (fake's 401 masks the key) and a session: nothing leaks.
    status, body = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime", {"Authorization": ""})
    assert status == 401
    await assert_no_secrets(proxy, body)


# -- TLS ---------------------------------------------------------------------------------------


async def test_tls_towards_clients(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    args = ("--fake-upstream", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
    async with proxy_process(*args, "--tls-cert", str(cert), "--tls-key", str(key)) as running:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"wss://127.0.0.1:{running.port}/v1/realtime?model=gpt-realtime"
        auth = {"Authorization": f"Bearer {SECRET}"}
        async with asyncio.timeout(10), connect(url, ssl=context, additional_headers=auth) as client:
            assert json.loads(await client.recv())["type"] == "session.created"
            await client.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
            assert json.loads(await client.recv())["type"] == "session.updated"
        # A client that does not trust the proxy's certificate cannot connect.
        with pytest.raises(ssl.SSLCertVerificationError):
            async with asyncio.timeout(10):
                await connect(url, ssl=ssl.create_default_context())
        assert await running.stop() == 0
    assert not any(SECRET in line for line in running.lines)


async def test_tls_private_ca_upstream(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "upstream")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    async with EchoUpstream(ssl_context=server_ctx) as upstream:
        assert upstream.url.startswith("wss://")
        trusted = await make_proxy(upstream_url=upstream.url, upstream_ca_bundle=str(cert))
        async with asyncio.timeout(10), connect(trusted.realtime_url) as client:
            await client.send("over tls")
            assert await client.recv() == "over tls"
        untrusted = await make_proxy(upstream_url=upstream.url)
        status, body = await raw_upgrade(untrusted.port, "/v1/realtime?model=gpt-realtime")
        assert status == 502 and error_body(body)["error"]["code"] == "upstream_unreachable"
        assert len(upstream.conns) == 1  # verification failed before any WebSocket handshake
        await assert_no_secrets(untrusted, body)
