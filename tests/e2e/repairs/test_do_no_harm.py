"""First, do no harm, through a real proxy: untouched routes (Live, unknown paths) are relayed byte for
byte with nothing held, and a sample of SDK-valid events the core leaves alone reach the fake upstream
exactly as the client sent them (tests/unit/test_do_no_harm.py runs the full property on the core)."""

from __future__ import annotations

import warnings
from typing import Any

from hypothesis import HealthCheck, given, settings
from websockets.asyncio.client import connect

from tests import noharm, sdk_events
from tests.conftest import ProxyFactory, bounded, sample
from tests.e2e.helpers import AUTH, EchoUpstream
from tests.e2e.realtime_client import RawClient


async def _relay_as_is(make_proxy: ProxyFactory, target: str) -> None:
    frames = [
        noharm.odd_frame({"type": "session.start", "session": {"model": "gpt-live-1"}}),
        # What the Realtime rules would rewrite (flat voice) or answer (empty commit): not here.
        noharm.odd_frame({"type": "session.update", "session": {"voice": "alloy", "tool_choice": None}}),
        noharm.odd_frame({"type": "input_audio_buffer.commit"}),
        *(
            noharm.odd_frame({"type": "response.create", "response": {"conversation": "none"}})
            for _ in range(3)
        ),
    ]
    async with EchoUpstream(echo=False) as upstream:
        proxy = await make_proxy(upstream_url=upstream.url, models={"aliases": {"gpt-live-1": "x"}})
        async with bounded(5):
            client = await connect(f"ws://127.0.0.1:{proxy.port}{target}", additional_headers=AUTH)
            conn = await upstream.next_conn()
            for frame in frames:
                await client.send(frame)
            info = '{"type":"info","event_id":"e"}'
            while len(conn.received) < len(frames):
                await conn.ws.send(info)  # Live's own events flow back, untouched too
                assert await client.recv() == info
            await client.close()
    assert conn.path == target  # no alias, no handshake repair
    assert conn.received == frames  # every response.create forwarded: none held for a response.done
    assert [line for line in proxy.log_lines() if line["event"] in ("rewrite", "refusal")] == []
    opened = [line for line in proxy.log_lines() if line["event"] == "session_open"]
    assert opened and opened[0]["route"] == noharm_route(target)
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_sessions_opened_total", route=noharm_route(target)) == 1
    assert sample(samples, "realtime_proxy_sessions_opened_total", route="realtime") == 0


def noharm_route(target: str) -> str:
    return "live" if "/live/sessions" in target else "other"


async def test_a_live_session_is_relayed_byte_for_byte(make_proxy: ProxyFactory) -> None:
    await _relay_as_is(make_proxy, "/v1/live/sessions?model=gpt-live-1")


async def test_an_unknown_path_is_relayed_byte_for_byte(make_proxy: ProxyFactory) -> None:
    await _relay_as_is(make_proxy, "/v1/voice/stream?model=gpt-live-1")


def _sample(per_type: int) -> list[dict[str, Any]]:
    """SDK-valid events the core leaves alone on a gpt-realtime-2 session (response.* excluded: a
    real session's turn-taking depends on the fake's answers)."""
    picked: list[dict[str, Any]] = []
    for td in sdk_events.REALTIME_EVENTS:
        if sdk_events.event_type_of(td).startswith("response."):
            continue

        @settings(
            max_examples=per_type,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(event=sdk_events.typeddict_strategy(td))
        def pick(event: dict[str, Any]) -> None:
            if noharm.judge(noharm.Session("realtime", "gpt-realtime-2"), event).outcome == "unchanged":
                picked.append(event)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pick()
    return picked


async def test_a_sample_of_valid_events_reaches_the_fake_byte_for_byte(make_proxy: ProxyFactory) -> None:
    events = _sample(5)
    assert len(events) > 25
    proxy = await make_proxy()
    client = await RawClient.open(f"ws://127.0.0.1:{proxy.port}/v1/realtime?model=gpt-realtime-2")
    frames = [noharm.odd_frame(event) for event in events]
    for frame in frames:
        await client.ws.send(frame)
    last = noharm.odd_frame({"type": "conversation.item.retrieve", "item_id": "nope", "event_id": "last"})
    await client.ws.send(last)
    async with bounded(5):
        while True:  # the API answers the unknown item last: everything before it has arrived
            event = await client.next_event()
            if event["type"] == "error" and event["error"].get("event_id") == "last":
                break
    await client.close()
    assert proxy.fake.connections[-1].received == [*frames, last]
