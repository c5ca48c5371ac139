"""Request targets are classified as the upstream will receive them (edge/target.py), through the
in-process proxy and the fake: in inject mode a fragment, dot segment, `;` parameter or encoded
slash never smuggles a route past `http.inject_routes` / `auth.inject_paths` with the key."""

from __future__ import annotations

import asyncio
import hashlib

import orjson
import pytest

from tests.conftest import API_KEY, ProxyFactory
from tests.e2e.helpers import raw_upgrade

TOKEN = "proxy-token-TARGETS-1"
REAL_KEY = "sk-real-TARGETKEY-55555"
INJECT = {"mode": "inject", "token_sha256": [hashlib.sha256(TOKEN.encode()).hexdigest()]}


async def raw_request(port: int, method: str, target: str, token: str) -> tuple[int, bytes]:
    """One request written by hand (an HTTP client would drop the fragment itself)."""
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        writer.write(f"{head}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        raw = await reader.read()
        writer.close()
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    return int(head_bytes.split(b" ", 2)[1]), body


@pytest.fixture
def real_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", REAL_KEY)


@pytest.mark.usefixtures("real_key_env")
@pytest.mark.parametrize(
    "method, target",
    [
        ("DELETE", "/v1/files/f#/realtime/calls/x/hangup"),
        ("GET", "/v1/files#/realtime/client_secrets"),
        ("POST", "/v1/fine_tuning/jobs#/realtime/calls"),
        ("GET", "/v1/realtime/calls/x/../../../files"),
        ("GET", "/v1/realtime/calls/x/%2e%2e/%2E%2E/../organization/admin_api_keys"),
        ("DELETE", "/v1/files/f;/realtime/calls/x/hangup"),
        ("DELETE", "/v1/files%2Ff/realtime/calls/x/hangup"),
        ("POST", "/v1//realtime/calls/x/hangup"),
    ],
)
async def test_inject_mode_refuses_ambiguous_targets_before_the_upstream(
    make_proxy: ProxyFactory, method: str, target: str
) -> None:
    proxy = await make_proxy(auth=INJECT)
    status, body = await raw_request(proxy.port, method, target, TOKEN)
    assert status == 400, body
    error = orjson.loads(body)["error"]
    assert error["code"] == "invalid_request_target"
    assert error["message"] == "The request target is not a plain absolute path."  # fixed text
    assert proxy.fake.http.records == []  # nothing reached the upstream, key or not


@pytest.mark.usefixtures("real_key_env")
async def test_inject_mode_still_serves_a_plain_realtime_route(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(auth=INJECT)
    status, _ = await raw_request(proxy.port, "POST", "/v1/realtime/calls/rtc_1/hang%75p", TOKEN)
    assert status == 200  # an encoded unreserved character is decoded, once, and classified so
    (record,) = proxy.fake.http.records
    assert record.path == "/v1/realtime/calls/rtc_1/hangup"
    assert record.headers["authorization"] == f"Bearer {REAL_KEY}"


@pytest.mark.usefixtures("real_key_env")
async def test_inject_mode_websocket_handshake_with_a_fragment_is_refused(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(auth=INJECT)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, body = await raw_upgrade(proxy.port, "/v1/realtime/../realtime?model=gpt-realtime", auth)
    assert (status, orjson.loads(body)["error"]["code"]) == (400, "invalid_request_target")
    status, body = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime#x", auth)
    assert status == 400
    assert proxy.fake.connections == [] and proxy.fake.refused == []


async def test_passthrough_forwards_the_target_it_classified(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy()
    status, body = await raw_request(proxy.port, "GET", "/v1/realtime/../models#frag", API_KEY)
    assert status == 200, body
    (record,) = proxy.fake.http.records
    assert record.path == "/v1/models"  # dot segments resolved once, the fragment dropped
    lines = [line for line in proxy.log_lines() if line.get("event") == "http_request"]
    assert lines[-1]["route"] == "other"
