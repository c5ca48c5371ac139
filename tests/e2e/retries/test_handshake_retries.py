"""Issue 25, item 2: upstream handshakes refused with 5xx/429, or unreachable, are retried with
jittered backoff (never shorter than Retry-After) before the client gets its 101; other 4xx never."""

from __future__ import annotations

import asyncio
import time

from openai import AsyncOpenAI

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import API_KEY, ProxyFactory, sample
from tests.e2e.helpers import raw_upgrade

RETRIES = "realtime_proxy_upstream_handshake_retries_total"


async def test_sdk_session_opens_after_two_5xx(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    fake.fail_next_handshakes(2, 503, retry_after=0)
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with asyncio.timeout(10), client.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
    assert [r.status for r in fake.refused] == [503, 503] and len(fake.connections) == 1
    samples = await proxy.scrape()
    assert sample(samples, RETRIES, cause="status_5xx") == 2.0
    assert sample(samples, "realtime_proxy_upstream_handshakes_total", result="ok") == 1.0
    retries = [line for line in proxy.log_lines() if line["event"] == "upstream_handshake_retry"]
    assert [(r["attempt"], r["status"], r["cause"]) for r in retries] == [
        (1, 503, "status_5xx"),
        (2, 503, "status_5xx"),
    ]


async def test_429_waits_at_least_retry_after(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    fake.fail_next_handshakes(1, 429, retry_after=0.3)
    started = time.monotonic()
    status, _ = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime")
    assert status == 101 and time.monotonic() - started >= 0.3
    assert sample(await proxy.scrape(), RETRIES, cause="status_429") == 1.0


async def test_retry_after_past_the_budget_answers_at_once(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy()
    fake.fail_next_handshakes(1, 429, retry_after=30)
    started = time.monotonic()
    status, _ = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime")
    assert status == 429 and time.monotonic() - started < 1.0
    assert len(fake.refused) == 1 and sample(await proxy.scrape(), RETRIES, cause="status_429") == 0.0


async def test_exhausted_retries_answer_the_last_status(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    fake.fail_next_handshakes(5, 502, retry_after=0)
    status, _ = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime")
    assert status == 502 and len(fake.refused) == 3  # max_attempts = 3
    assert sample(await proxy.scrape(), "realtime_proxy_upstream_handshakes_total", result="refused_5xx") == 1


async def test_auth_refusals_are_never_retried(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy()
    fake.refuse_handshake = (401, {"error": {"message": "no", "code": "invalid_api_key"}})
    status, _ = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime")
    assert status == 401 and len(fake.refused) == 1
    assert sum(v for k, v in (await proxy.scrape()).items() if k.startswith(RETRIES)) == 0.0


async def test_unreachable_upstream_is_retried_then_502(make_proxy: ProxyFactory) -> None:
    async with FakeUpstream() as gone:
        url = gone.url
    proxy = await make_proxy(upstream_url=url)
    status, _ = await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime")
    assert status == 502
    assert sample(await proxy.scrape(), RETRIES, cause="unreachable") == 2.0


async def test_retries_off(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(handshake_retry={"enabled": False})
    fake.fail_next_handshakes(1, 503, retry_after=0)
    assert (await raw_upgrade(proxy.port, "/v1/realtime?model=gpt-realtime"))[0] == 503
