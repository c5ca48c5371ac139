"""Failure behaviour through the real proxy in front of the fake upstream: upstream TCP drop mid-response,
upstream stops answering pings, handshake hang, upstream close 1011/4000/1001 with a reason, client
vanishing without a Close frame, SIGTERM on a real `python -m realtime_proxy`. After each, the other side
got a clear close code and reason, `realtime_proxy_sessions_total` counted the session exactly once, and
nothing leaked (no relay left, asyncio task count back to baseline; open fds for subprocesses)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import ProxyFactory, RunningProxy
from tests.e2e.helpers import (
    AUTH,
    SECRET,
    EchoUpstream,
    closed_with,
    eventually,
    open_session,
    proxy_process,
    raw_upgrade,
)


async def sessions_counted(proxy: RunningProxy) -> dict[str, float]:
    samples = await proxy.scrape()
    return {k: v for k, v in samples.items() if k.startswith("realtime_proxy_sessions_total{") and v}


async def assert_clean(proxy: RunningProxy, baseline_tasks: int, outcome: str) -> None:
    """Exactly one session counted with `outcome`, no relay and no extra asyncio task left behind."""
    await eventually(lambda: not proxy.server.relays and len(asyncio.all_tasks()) <= baseline_tasks)
    assert await sessions_counted(proxy) == {f'realtime_proxy_sessions_total{{outcome="{outcome}"}}': 1.0}
    assert SECRET not in proxy.logs.getvalue()
    assert SECRET not in repr(await proxy.scrape())


async def test_upstream_drops_tcp_mid_response(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(
        continuity={"mode": "off"}
    )  # resumed otherwise: tests/e2e/continuity/test_continuity.py
    baseline = len(asyncio.all_tasks())
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        await client.send(
            json.dumps({"type": "response.create", "response": {"output_modalities": ["audio"]}})
        )
        while "delta" not in json.loads(await client.recv())["type"]:
            pass
        await fake.drop_all()
        assert await closed_with(client) == (1011, "upstream connection lost")
    await assert_clean(proxy, baseline, "upstream_lost")


async def test_upstream_stops_answering_pings(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(ping_interval=0.1, ping_timeout=0.2, continuity={"mode": "off"})
    baseline = len(asyncio.all_tasks())
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        fake.stop_answering_pings()
        assert await closed_with(client) == (1011, "keepalive ping timeout")
    # The fake stopped reading, so it never notices the proxy hung up: end its side of the socket.
    await fake.drop_all()
    await assert_clean(proxy, baseline, "upstream_lost")


async def test_upstream_handshake_hangs(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(handshake_timeout=0.2)
    fake.handshake_delay = 0.6
    baseline = len(asyncio.all_tasks())
    status, body = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime")
    assert status == 504 and SECRET not in body.decode()
    samples = await proxy.scrape()
    assert samples['realtime_proxy_upstream_handshakes_total{result="timeout"}'] == 1.0
    assert await sessions_counted(proxy) == {}  # no session was opened
    await eventually(lambda: len(asyncio.all_tasks()) <= baseline + 1)  # + the fake's sleeping handshake


@pytest.mark.parametrize(
    ("code", "reason"), [(1011, "upstream exploded"), (4000, "beta"), (1001, "going away")]
)
async def test_upstream_closes_with_reason(
    make_proxy: ProxyFactory, fake: FakeUpstream, code: int, reason: str
) -> None:
    proxy = await make_proxy(continuity={"mode": "off"})  # 1011/1001 are resumed otherwise
    baseline = len(asyncio.all_tasks())
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        await fake.close_all(code, reason)
        assert await closed_with(client) == (code, reason)
    await assert_clean(proxy, baseline, "upstream_closed")


async def test_client_disappears_without_close(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    baseline = len(asyncio.all_tasks())
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        client.transport.abort()
        record = fake.connections[-1]
        await record.wait_closed()
    assert (record.close_code, record.close_reason) == (1001, "client connection lost")
    await assert_clean(proxy, baseline, "client_lost")


async def test_client_closes_normally(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    baseline = len(asyncio.all_tasks())
    async with asyncio.timeout(10):
        client = await open_session(proxy)
        await client.close(1000, "done")
        record = fake.connections[-1]
        await record.wait_closed()
    assert (record.close_code, record.close_reason) == (1000, "done")
    await assert_clean(proxy, baseline, "client_closed")


# -- subprocess: fds and SIGTERM ---------------------------------------------------------------


async def test_subprocess_faults_release_fds() -> None:
    args = ("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
    async with EchoUpstream() as upstream, proxy_process(*args, "--upstream-url", upstream.url) as running:
        url = f"ws://127.0.0.1:{running.port}/v1/realtime?model=m"
        async with asyncio.timeout(15):
            # Warm up once so lazily opened fds (epoll, imports) are in the baseline.
            async with connect(url) as client:
                await client.send("warm")
                assert await client.recv() == "warm"
            await (await upstream.next_conn()).closed.wait()
            await eventually(lambda: any('"session_closed"' in line for line in running.lines))
            baseline = running.fds()
            for _ in range(3):
                # Upstream TCP drop: the client gets 1011 (SDKs reconnect on it).
                client = await connect(url)
                conn = await upstream.next_conn()
                conn.ws.transport.abort()
                assert await closed_with(client) == (1011, "upstream connection lost")
                # Client vanishes: the upstream gets 1001.
                client = await connect(url)
                conn = await upstream.next_conn()
                client.transport.abort()
                await conn.closed.wait()
                assert conn.close_code == 1001
            await eventually(lambda: running.fds() <= baseline)
            await eventually(lambda: sum('"session_closed"' in line for line in running.lines) == 7)
        lost = [json.loads(line) for line in running.lines if '"session_closed"' in line]
        assert (
            sorted(e["outcome"] for e in lost)
            == ["client_closed"] + ["client_lost"] * 3 + ["upstream_lost"] * 3
        )


async def test_sigterm_drains_then_closes_1001() -> None:
    grace = 1.0
    env = {"REALTIME_PROXY_SHUTDOWN_GRACE": str(grace), "OPENAI_API_KEY": SECRET}
    args = ("--fake-upstream", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
    async with proxy_process(*args, module=True, env=env) as running, asyncio.timeout(20):
        url = f"ws://127.0.0.1:{running.port}/v1/realtime?model=gpt-realtime"
        client = await connect(url, additional_headers=AUTH)
        assert json.loads(await client.recv())["type"] == "session.created"
        started = time.monotonic()
        running.proc.terminate()
        await eventually(lambda: any('"shutdown_started"' in line for line in running.lines))
        # No new handshakes: the listener is closed.
        with pytest.raises(OSError):
            await connect(url, additional_headers=AUTH)
        # The open session keeps working during the grace period.
        await client.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert json.loads(await client.recv())["type"] == "session.updated"
        assert await closed_with(client) == (1001, "proxy shutting down")
        assert time.monotonic() - started >= grace * 0.9
        assert await running.proc.wait() == 0
    closed = [json.loads(line) for line in running.lines if '"session_closed"' in line]
    assert [e["outcome"] for e in closed] == ["shutdown"]
    assert not any(SECRET in line for line in running.lines)
