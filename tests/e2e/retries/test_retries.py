"""Failed out-of-band responses are retried invisibly (issue: retries), seen through the official SDK:
the client sees one response.created and one response.done per response.create, its own metadata,
never the proxy's key; exhausted retries show the real failure once; cancels stop retrying."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

from openai import AsyncOpenAI

from realtime_proxy.core.retry import METADATA_KEY
from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.realtime_client import RawClient

FAST_RETRY = {"backoff_base": 0.01, "backoff_cap": 0.05}


def oob_request(tag: str, **response: Any) -> dict[str, Any]:
    return {
        "type": "response.create",
        "event_id": f"client_{tag}",
        "response": {
            "conversation": "none",
            "output_modalities": ["text"],
            "instructions": f"summarise {tag}",
            "metadata": {"response_type": "out-of-band", "tag": tag},
            **response,
        },
    }


async def read_raw_until(connection: Any, done_count: int, seconds: float = 10) -> list[dict[str, Any]]:
    """Raw client-side frames (parsed) until `done_count` response.done events were seen."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        while sum(f["type"] == "response.done" for f in frames) < done_count:
            raw = await connection.recv_bytes()
            assert METADATA_KEY.encode() not in raw  # the proxy's key never reaches the client
            frames.append(json.loads(raw))
            connection.parse_event(raw)  # and every frame is a valid typed SDK event
    return frames


def upstream_creates(proxy: RunningProxy) -> list[dict[str, Any]]:
    frames = [json.loads(f) for f in proxy.fake.connections[-1].received if isinstance(f, str)]
    return [f for f in frames if f.get("type") == "response.create"]


async def test_two_failures_then_success_look_like_one_response(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(retry=FAST_RETRY)
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.recv()  # session.created
        proxy.fake.fail_next_out_of_band(2)
        await connection.send(oob_request("a"))
        frames = await read_raw_until(connection, 1)
    created = [f for f in frames if f["type"] == "response.created"]
    done = [f for f in frames if f["type"] == "response.done"]
    assert len(created) == 1 and len(done) == 1
    assert created[0]["response"]["id"] == done[0]["response"]["id"]
    assert done[0]["response"]["status"] == "completed"
    assert done[0]["response"]["metadata"] == {"response_type": "out-of-band", "tag": "a"}
    assert created[0]["response"]["metadata"] == {"response_type": "out-of-band", "tag": "a"}
    attempts = upstream_creates(proxy)
    assert len(attempts) == 3
    assert attempts[0]["event_id"] == "client_a"
    assert len({a["event_id"] for a in attempts}) == 3  # re-sends carry fresh, client-invisible ids
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_oob_retries_total", outcome="recovered") == 1
    assert sample(samples, "realtime_proxy_oob_retry_attempts_count") == 1
    assert sample(samples, "realtime_proxy_oob_retry_attempts_sum") == 3
    outcome = next(line for line in proxy.log_lines() if line["event"] == "retry_outcome")
    assert outcome["outcome"] == "recovered" and outcome["attempts"] == 3
    assert len([line for line in proxy.log_lines() if line["event"] == "retry_attempt"]) == 2


async def test_every_attempt_failing_shows_the_failure_once(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(retry=FAST_RETRY)
    proxy.fake.fail_all_out_of_band = True
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.recv()
        await connection.send(oob_request("b"))
        frames = await read_raw_until(connection, 1)
        # Nothing more arrives for this response after the failure.
        await connection.send({"type": "input_audio_buffer.clear"})
        after: list[str] = []
        async with asyncio.timeout(5):
            while not after or after[-1] != "input_audio_buffer.cleared":
                after.append(json.loads(await connection.recv_bytes())["type"])
        assert not [t for t in after if t.startswith("response.")]
    done = [f for f in frames if f["type"] == "response.done"]
    assert len(done) == 1 and sum(f["type"] == "response.created" for f in frames) == 1
    assert done[0]["response"]["status"] == "failed"
    assert done[0]["response"]["status_details"]["error"]["type"] == "server_error"
    assert done[0]["response"]["metadata"] == {"response_type": "out-of-band", "tag": "b"}
    assert len(upstream_creates(proxy)) == 3  # max_attempts
    assert sample(await proxy.scrape(), "realtime_proxy_oob_retries_total", outcome="exhausted") == 1


async def test_parallel_and_in_band_responses_interleaved_with_retries(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(retry=FAST_RETRY)
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.recv()
        proxy.fake.fail_next_out_of_band(2)
        await connection.send(oob_request("p1"))
        await connection.send(oob_request("p2"))
        await connection.send({"type": "response.create", "event_id": "inband"})  # audio, in-band
        frames = await read_raw_until(connection, 3, seconds=15)
    by_response: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for frame in frames:
        response_id = frame.get("response_id") or (frame.get("response") or {}).get("id")
        if response_id:
            by_response[response_id].append(frame)
    assert len(by_response) == 3  # the failed attempts left no trace on the client
    # Each response's events reached the client exactly as the upstream sent them, in order.
    sent = [json.loads(f) for f in proxy.fake.connections[-1].sent]
    for response_id, events in by_response.items():
        upstream_events = [
            f for f in sent if (f.get("response_id") or (f.get("response") or {}).get("id")) == response_id
        ]
        assert [e["type"] for e in events] == [e["type"] for e in upstream_events]
        assert [e.get("delta") for e in events] == [e.get("delta") for e in upstream_events]
        assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.done"
        assert events[-1]["response"]["status"] == "completed"
    tags = sorted((e[-1]["response"]["metadata"] or {}).get("tag", "in-band") for e in by_response.values())
    assert tags == ["in-band", "p1", "p2"]


async def first_attempt_failed(proxy: RunningProxy) -> None:
    """Wait until the upstream failed the first attempt: the proxy is now waiting out its backoff."""
    async with asyncio.timeout(5):
        while not any('"response.done"' in f for f in proxy.fake.connections[-1].sent):
            await asyncio.sleep(0.01)


async def test_client_close_while_retry_pending_stops_retrying(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(retry={"backoff_base": 0.4, "backoff_cap": 0.4})
    proxy.fake.fail_all_out_of_band = True
    client = await RawClient.open(proxy.realtime_url)
    await client.send(oob_request("c"))
    await first_attempt_failed(proxy)
    await client.close()
    # Once the upstream leg is closed no retry can reach it; the pure test
    # test_close_cancels_pending_timers_and_reports_every_tracked_request proves the timer is cancelled.
    async with asyncio.timeout(5):
        await proxy.fake.connections[-1].wait_closed()
    assert len(upstream_creates(proxy)) == 1
    assert sample(await proxy.scrape(), "realtime_proxy_oob_retries_total", outcome="cancelled") == 1


async def test_client_cancel_of_a_response_in_backoff(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(retry={"backoff_base": 0.4, "backoff_cap": 0.4})
    proxy.fake.fail_all_out_of_band = True
    client = await RawClient.open(proxy.realtime_url)
    await client.send(oob_request("d"))
    await first_attempt_failed(proxy)
    failed_id = next(
        json.loads(f)["response"]["id"] for f in proxy.fake.connections[-1].sent if '"response.done"' in f
    )
    await client.send({"type": "response.cancel", "response_id": failed_id})
    created = await client.until("response.created")
    done = await client.until("response.done")
    assert created["response"]["id"] == done["response"]["id"] == failed_id
    assert done["response"]["status"] == "cancelled"
    assert sample(await proxy.scrape(), "realtime_proxy_oob_retries_total", outcome="cancelled") == 1
    await client.close()
    async with asyncio.timeout(5):
        await proxy.fake.connections[-1].wait_closed()
    # Nothing after the failed attempt reached the upstream: no retry, no cancel of a response that
    # no longer runs. That the backoff timer is cancelled rather than raced is proven without a clock
    # by test_cancel_during_backoff_synthesizes_the_cancellation (its CancelTimer, on_timer -> []).
    assert len(upstream_creates(proxy)) == 1
    assert not any(
        json.loads(f).get("type") == "response.cancel"
        for f in proxy.fake.connections[-1].received
        if isinstance(f, str)
    )


async def test_metadata_with_sixteen_keys_is_not_tracked(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(retry=FAST_RETRY)
    proxy.fake.fail_next_out_of_band(1)
    client = await RawClient.open(proxy.realtime_url)
    request = oob_request("e")
    request["response"]["metadata"] = {f"k{i}": "v" for i in range(16)}
    await client.send(request)
    done = await client.until("response.done")
    assert done["response"]["status"] == "failed"  # not retried: the proxy could not correlate it
    await client.close()
    assert len(upstream_creates(proxy)) == 1
    assert sample(await proxy.scrape(), "realtime_proxy_oob_retries_total", outcome="untracked") == 1


async def test_in_band_failures_are_not_retried_by_default(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    done = await client.until("response.done")
    assert done["response"]["status"] == "completed"
    assert upstream_creates(proxy)[0] == {
        "type": "response.create",
        "response": {"output_modalities": ["text"]},
        "event_id": "proxy_evt_1",  # turn-taking names in-band creates, to attribute errors
    }
    await client.close()


async def test_escalation_repairs_a_retry_even_with_the_rule_off(make_proxy: ProxyFactory) -> None:
    """tool_choice_object switched off: the first attempt fails like the seed report; the re-send gets the
    escalation rule, with the session's own tools, and completes."""
    proxy = await make_proxy(retry=FAST_RETRY, rules={"tool_choice_object": {"enabled": False}})
    client = await RawClient.open(proxy.realtime_url)
    tool = {"type": "function", "name": "return_response", "parameters": {"type": "object"}}
    await client.send({"type": "session.update", "session": {"type": "realtime", "tools": [tool]}})
    await client.until("session.updated")
    await client.send(oob_request("esc", tool_choice={"type": "function", "name": "return_response"}))
    done = await client.until("response.done")
    assert done["response"]["status"] == "completed"
    assert done["response"]["output"][0]["name"] == "return_response"
    await client.close()
    first, second = upstream_creates(proxy)
    assert first["response"]["tool_choice"] == {"type": "function", "name": "return_response"}
    assert second["response"]["tool_choice"] == "required"
    assert second["response"]["tools"] == [tool]
    # The escalation's repair is a rewrite like any other: one log line for the rule and event,
    # counting its two changes (tool_choice, and the session's tools copied in).
    escalated = [line for line in proxy.log_lines() if line["event"] == "rewrite"]
    assert [(r["rule"], r["via"], r["client_event_id"], r["count"]) for r in escalated] == [
        ("tool_choice_object", "retry_escalation", "client_esc", 2)
    ]
    assert sample(await proxy.scrape(), "realtime_proxy_rewrites_total", rule="tool_choice_object") == 2


async def test_one_client_event_id_on_every_line_of_a_repaired_retried_request(
    make_proxy: ProxyFactory,
) -> None:
    """The client sent no event_id; the proxy's own id for the event is the same on its rewrite line and
    on its retry lines."""
    proxy = await make_proxy(retry=FAST_RETRY)
    client = await RawClient.open(proxy.realtime_url)
    proxy.fake.fail_next_out_of_band(1)
    request = oob_request("ids", modalities=["text"])
    del request["event_id"], request["response"]["output_modalities"]
    await client.send(request)
    done = await client.until("response.done")
    assert done["response"]["status"] == "completed"
    await client.close()
    async with asyncio.timeout(5):
        while proxy.server.relays:
            await asyncio.sleep(0.01)
    events = ("rewrite", "retry_attempt", "retry_outcome")
    lines = [line for line in proxy.log_lines() if line["event"] in events]
    assert [line["event"] for line in lines] == list(events)
    ids = {line["client_event_id"] for line in lines}
    assert len(ids) == 1 and next(iter(ids)).startswith("proxy_evt_")
