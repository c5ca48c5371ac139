"""Admission of plain HTTP requests to the upstream (edge/http/admission.py), through the
in-process proxy and a slow fake: at most `http.max_concurrent_requests` in flight, the rest
queue for `http.queue_timeout`, then get 503 with Retry-After and an API-shaped body."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import API_KEY, ProxyFactory, sample

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def burst(base_url: str, count: int) -> list[httpx.Response]:
    async with asyncio.timeout(10), httpx.AsyncClient(base_url=base_url, headers=AUTH) as client:
        return list(await asyncio.gather(*(client.get("/models") for _ in range(count))))


async def test_requests_past_the_bound_and_the_queue_get_503(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(http={"max_concurrent_requests": 2, "queue_timeout": 0.05})
    proxy.fake.http.reply_delay = 0.3
    responses = await burst(proxy.base_url, 5)
    assert sorted(r.status_code for r in responses) == [200, 200, 503, 503, 503]
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == {
        "message": "The proxy has too many requests in flight; retry later.",
        "type": "server_error",
        "param": None,
        "code": "proxy_overloaded",
    }
    assert len(proxy.fake.http.records) == 2  # the refused ones never reached the upstream
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_http_admissions_total", result="rejected") == 3
    assert sample(samples, "realtime_proxy_http_admissions_total", result="immediate") == 2


async def test_queued_requests_are_served_when_a_slot_frees(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(http={"max_concurrent_requests": 2, "queue_timeout": 5})
    proxy.fake.http.reply_delay = 0.1
    responses = await burst(proxy.base_url, 5)
    assert [r.status_code for r in responses] == [200] * 5
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_http_admissions_total", result="queued") == 3
