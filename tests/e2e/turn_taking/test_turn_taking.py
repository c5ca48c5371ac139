"""Turn-taking (issue 11), seen through the official SDK: the three failures users report happen when
the fake upstream is reached directly, and do not happen through the proxy (orchestration on by
default). Each test runs both routes against the same fake and asserts what each route shows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection

from realtime_proxy.fake_upstream import FakeUpstream
from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.helpers import eventually
from tests.e2e.realtime_client import RETURN_RESPONSE_TOOL

LOOKUP_TOOL = {**RETURN_RESPONSE_TOOL, "name": "lookup", "description": "Look something up"}
TEXT = {"output_modalities": ["text"]}
ORCHESTRATION = "realtime_proxy_orchestration_total"


@pytest.fixture(params=["direct", "proxy"])
async def route(request: pytest.FixtureRequest, fake: FakeUpstream, make_proxy: ProxyFactory) -> str:
    return str(request.param)


async def base_url(route: str, fake: FakeUpstream, make_proxy: ProxyFactory) -> tuple[str, Any]:
    if route == "direct":
        return f"{fake.url}/v1", None
    proxy: RunningProxy = await make_proxy()
    return proxy.ws_base, proxy


@asynccontextmanager
async def sdk_session(url: str) -> AsyncIterator[AsyncRealtimeConnection]:
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=url)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        async with asyncio.timeout(5):
            assert (await connection.recv()).type == "session.created"
        yield connection


async def read_until(
    connection: AsyncRealtimeConnection, stop: Callable[[list[dict[str, Any]]], bool], seconds: float = 10
) -> list[dict[str, Any]]:
    """Raw client-side events (each also parsed by the SDK) until `stop(events so far)`."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        while not stop(events):
            raw = await connection.recv_bytes()
            connection.parse_event(raw)  # every frame is a valid typed SDK event
            events.append(json.loads(raw))
    return events


def of_type(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == event_type]


def upstream_received(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in fake.connections[-1].received if isinstance(frame, str)]


async def tool_turn(connection: AsyncRealtimeConnection) -> list[str]:
    """Two parallel calls made, their response done; the call ids."""
    tools = [RETURN_RESPONSE_TOOL, LOOKUP_TOOL]
    await connection.session.update(
        session={"type": "realtime", "output_modalities": ["text"], "tools": tools}
    )
    await read_until(connection, lambda seen: bool(of_type(seen, "session.updated")))
    await connection.response.create(response={"tool_choice": "required"})
    done = (await read_until(connection, lambda seen: bool(of_type(seen, "response.done"))))[-1]
    return [item["call_id"] for item in done["response"]["output"]]


async def test_second_in_band_create_while_one_is_active(
    route: str, fake: FakeUpstream, make_proxy: ProxyFactory
) -> None:
    url, proxy = await base_url(route, fake, make_proxy)
    async with sdk_session(url) as connection:
        await connection.response.create(event_id="first", response=TEXT)
        await connection.response.create(event_id="second", response=TEXT)
        # Two answers: a response.done or an error each.
        events = await read_until(
            connection, lambda seen: len(of_type(seen, "response.done")) + len(of_type(seen, "error")) == 2
        )
    errors = [event["error"] for event in of_type(events, "error")]
    if route == "direct":
        assert [(e["code"], e["event_id"]) for e in errors] == [
            ("conversation_already_has_active_response", "second")
        ]
        assert errors[0]["message"].startswith(
            "Conversation already has an active response in progress: resp_"
        )
        return
    assert errors == []
    assert [done["response"]["status"] for done in of_type(events, "response.done")] == ["completed"] * 2
    kinds = [e["type"] for e in events if e["type"] in ("response.created", "response.done")]
    assert kinds == ["response.created", "response.done"] * 2  # one after the other
    creates = [e for e in upstream_received(fake) if e["type"] == "response.create"]
    assert [c["event_id"] for c in creates] == ["first", "second"]
    samples = await proxy.scrape()
    assert sample(samples, ORCHESTRATION, action="held") == 1
    assert sample(samples, ORCHESTRATION, action="released") == 1
    assert sample(samples, "realtime_proxy_orchestration_held_seconds_count") == 1
    held = next(line for line in proxy.log_lines() if line["event"] == "response_held")
    assert held["client_event_id"] == "second"


async def test_parallel_tool_calls_each_followed_by_a_create(
    route: str, fake: FakeUpstream, make_proxy: ProxyFactory
) -> None:
    fake.parallel_function_calls = 2
    url, proxy = await base_url(route, fake, make_proxy)
    async with sdk_session(url) as connection:
        calls = await tool_turn(connection)
        assert len(calls) == 2
        # What agent frameworks do: each tool's output, then a response.create of its own.
        for call_id in calls:
            output = {"type": "function_call_output", "call_id": call_id, "output": '{"ok": true}'}
            await connection.conversation.item.create(item=output)
            await connection.response.create()
        events = await read_until(connection, lambda seen: bool(of_type(seen, "response.done")))
        if route == "proxy":
            # A new turn's create: a duplicate answer, had there been one, would come before it.
            await connection.response.create(response={"metadata": {"turn": "next"}})
            events += await read_until(connection, lambda seen: bool(of_type(seen, "response.done")))
    errors = [event["error"] for event in of_type(events, "error")]
    received = upstream_received(fake)
    output_at = [i for i, e in enumerate(received) if e["type"] == "conversation.item.create"]
    answers_at = [i for i, e in enumerate(received) if e["type"] == "response.create" and i > output_at[0]]
    if route == "direct":
        assert [e["code"] for e in errors] == ["conversation_already_has_active_response"]
        assert answers_at[0] < output_at[1]  # the first answer went out with half the tool results
        return
    assert errors == []
    assert answers_at[0] > output_at[1]  # one answer, once every output was in
    assert [received[i].get("response") for i in answers_at] == [None, {"metadata": {"turn": "next"}}]
    assert [d["response"]["metadata"] for d in of_type(events, "response.done")] == [None, {"turn": "next"}]
    samples = await proxy.scrape()
    assert sample(samples, ORCHESTRATION, action="held") == 1
    assert sample(samples, ORCHESTRATION, action="coalesced") == 1
    assert sample(samples, ORCHESTRATION, action="released") == 1
    coalesced = [line for line in proxy.log_lines() if line["event"] == "create_coalesced"]
    # The SDK sends no event ids: each create carries the proxy's own on every log line.
    assert [(c["client_event_id"], c["into"], c["calls"], c["applied"]) for c in coalesced] == [
        ("proxy_evt_3", "proxy_evt_2", 2, True)
    ]


async def test_cancel_sent_before_response_created(
    route: str, fake: FakeUpstream, make_proxy: ProxyFactory
) -> None:
    fake.response_delay = 0.05
    url, proxy = await base_url(route, fake, make_proxy)
    async with sdk_session(url) as connection:
        await connection.response.create(event_id="answer", response=TEXT)
        await connection.response.cancel(event_id="stop")
        events = await read_until(connection, lambda seen: bool(of_type(seen, "response.done")))
    errors = [event["error"] for event in of_type(events, "error")]
    status = of_type(events, "response.done")[0]["response"]["status"]
    if route == "direct":
        assert [(e["code"], e["event_id"]) for e in errors] == [("response_cancel_not_active", "stop")]
        assert status == "completed"  # the response the user interrupted played on
        return
    assert errors == []
    assert status == "cancelled"
    created = of_type(events, "response.created")[0]["response"]["id"]
    cancels = [e for e in upstream_received(fake) if e["type"] == "response.cancel"]
    assert cancels == [{"type": "response.cancel", "event_id": "stop", "response_id": created}]
    samples = await proxy.scrape()
    assert sample(samples, ORCHESTRATION, action="cancel_held") == 1
    assert sample(samples, ORCHESTRATION, action="cancel_released") == 1
    held = next(line for line in proxy.log_lines() if line["event"] == "cancel_held")
    assert held["client_event_id"] == "stop"


# -- modes and interplay (through the proxy only) ----------------------------------------------------


async def test_observe_mode_counts_and_forwards_as_sent(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    proxy = await make_proxy(orchestration={"mode": "observe"})
    async with sdk_session(proxy.ws_base) as connection:
        await connection.response.create(response=TEXT)
        await connection.response.create(event_id="second", response=TEXT)
        events = await read_until(connection, lambda seen: bool(of_type(seen, "response.done")))
    errors = [e["error"] for e in of_type(events, "error")]
    assert [(e["code"], e["event_id"]) for e in errors] == [
        ("conversation_already_has_active_response", "second")
    ]
    creates = [e for e in upstream_received(fake) if e["type"] == "response.create"]
    assert creates == [
        {"type": "response.create", "response": TEXT},  # no id added in observe mode
        {"type": "response.create", "event_id": "second", "response": TEXT},
    ]
    samples = await proxy.scrape()
    assert sample(samples, ORCHESTRATION, action="would_hold") == 1
    assert sample(samples, ORCHESTRATION, action="held") == 0
    held = next(line for line in proxy.log_lines() if line["event"] == "response_held")
    assert (held["client_event_id"], held["applied"]) == ("second", False)


async def test_a_held_create_is_repaired_once_and_the_summary_counts_turns(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """A beta-shaped second create (`modalities`) is repaired on arrival and goes upstream repaired."""
    proxy = await make_proxy()
    async with sdk_session(proxy.ws_base) as connection:
        await connection.response.create(response=TEXT)
        await connection.send(
            {"type": "response.create", "event_id": "beta", "response": {"modalities": ["text"]}}
        )
        events = await read_until(connection, lambda seen: len(of_type(seen, "response.done")) == 2)
    assert of_type(events, "error") == []
    creates = [e for e in upstream_received(fake) if e["type"] == "response.create"]
    assert creates[1] == {
        "type": "response.create",
        "event_id": "beta",
        "response": {"output_modalities": ["text"]},
    }
    await eventually(lambda: not proxy.server.relays)
    rewrites = [line for line in proxy.log_lines() if line["event"] == "rewrite"]
    assert [(r["client_event_id"], r["rule"]) for r in rewrites] == [
        ("beta", "modalities_to_output_modalities")
    ]
    summary = next(line for line in proxy.log_lines() if line["event"] == "session_closed")
    assert summary["orchestration"] == {"held": 1, "released": 1}


async def test_out_of_band_retries_run_alongside_held_in_band_creates(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    proxy = await make_proxy(retry={"backoff_base": 0.01, "backoff_cap": 0.02})
    fake.fail_next_out_of_band(1)
    oob = {"conversation": "none", "output_modalities": ["text"], "metadata": {"tag": "oob"}}
    async with sdk_session(proxy.ws_base) as connection:
        await connection.response.create(event_id="first", response=TEXT)
        await connection.response.create(event_id="second", response=TEXT)
        await connection.response.create(event_id="side", response=oob)  # type: ignore[arg-type]
        events = await read_until(connection, lambda seen: len(of_type(seen, "response.done")) == 3)
    assert of_type(events, "error") == []
    dones = of_type(events, "response.done")
    assert sorted(d["response"]["status"] for d in dones) == ["completed"] * 3
    assert [d["response"]["metadata"] for d in dones].count({"tag": "oob"}) == 1
    creates = [e for e in upstream_received(fake) if e["type"] == "response.create"]
    assert [c["event_id"] for c in creates][:2] == ["first", "side"]  # out-of-band: sent at once
    assert len(creates) == 4  # and once more after its failure
    in_band = [
        e["type"]
        for e in events
        if e["type"] in ("response.created", "response.done") and e["response"]["conversation_id"]
    ]
    assert in_band == ["response.created", "response.done"] * 2  # "second" waited for "first"
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_oob_retries_total", outcome="recovered") == 1
    assert sample(samples, ORCHESTRATION, action="held") == 1


async def test_a_missing_tool_output_times_out_through_the_relay_timer(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    fake.parallel_function_calls = 2
    proxy = await make_proxy(orchestration={"tool_output_timeout": 0.2})
    async with sdk_session(proxy.ws_base) as connection:
        calls = await tool_turn(connection)
        output = {"type": "function_call_output", "call_id": calls[0], "output": "{}"}
        await connection.conversation.item.create(item=output)
        await connection.response.create(event_id="answer")
        events = await read_until(connection, lambda seen: bool(of_type(seen, "response.done")))
    assert of_type(events, "error") == []
    released = next(line for line in proxy.log_lines() if line["event"] == "response_released")
    assert (released["client_event_id"], released["reason"]) == ("answer", "tool_output_timeout")
    assert released["held_seconds"] >= 0.2


async def test_a_client_closing_with_creates_held_sends_nothing_more(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    fake.parallel_function_calls = 2
    proxy = await make_proxy()
    async with sdk_session(proxy.ws_base) as connection:
        calls = await tool_turn(connection)
        output = {"type": "function_call_output", "call_id": calls[0], "output": "{}"}
        await connection.conversation.item.create(item=output)
        await connection.response.create(event_id="answer")
        await read_until(connection, lambda seen: bool(of_type(seen, "conversation.item.done")))
        await eventually(lambda: any(line["event"] == "response_held" for line in proxy.log_lines()))
    await eventually(lambda: not proxy.server.relays)
    dropped = next(line for line in proxy.log_lines() if line["event"] == "create_dropped")
    assert (dropped["client_event_id"], dropped["reason"]) == ("answer", "closed")
    assert [e["event_id"] for e in upstream_received(fake) if e["type"] == "response.create"] == [
        "proxy_evt_1"
    ]
    assert sample(await proxy.scrape(), ORCHESTRATION, action="dropped") == 1


async def test_cancel_of_a_create_still_held_answers_cancelled_without_the_api(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    fake.parallel_function_calls = 2
    proxy = await make_proxy()
    async with sdk_session(proxy.ws_base) as connection:
        calls = await tool_turn(connection)
        output = {"type": "function_call_output", "call_id": calls[0], "output": "{}"}
        await connection.conversation.item.create(item=output)
        await connection.response.create(event_id="answer", response={"metadata": {"turn": "tools"}})
        await connection.response.cancel(event_id="stop")
        # Read through the SDK's own parser: the proxy's response.done is a valid typed event.
        events = await read_until(connection, lambda seen: bool(of_type(seen, "response.done")))
    assert of_type(events, "error") == []
    done = of_type(events, "response.done")[0]["response"]
    assert (done["status"], done["status_details"], done["output"]) == (
        "cancelled",
        {"type": "cancelled", "reason": "client_cancelled"},
        [],
    )
    assert done["id"].startswith("resp_proxy_cancelled_") and done["metadata"] == {"turn": "tools"}
    assert done["conversation_id"].startswith("conv_")
    received = upstream_received(fake)
    assert [e["type"] for e in received if e["type"].startswith("response.")] == ["response.create"]
    dropped = next(line for line in proxy.log_lines() if line["event"] == "create_dropped")
    assert (dropped["client_event_id"], dropped["reason"]) == ("answer", "cancelled")
