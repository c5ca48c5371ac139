"""Rules v2 end to end: every probe case fails at the fake without the proxy and is accepted
through it; unknown tools are forwarded; the truncate margin and audio-less truncates; the
transcription handshake; `[models]` aliases and per-model switches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from realtime_proxy.commands.probe_cases import PROBES, Probe
from tests.conftest import ProxyFactory, RunningProxy, sample
from tests.e2e.realtime_client import RawClient

ANSWERS = {
    "error",
    "response.done",
    "session.updated",
    "conversation.item.added",
    "input_audio_buffer.committed",
}


def received(proxy: RunningProxy, event_type: str) -> list[dict[str, Any]]:
    frames = proxy.fake.connections[-1].received
    return [e for e in (json.loads(f) for f in frames if isinstance(f, str)) if e.get("type") == event_type]


async def answer_to(client: RawClient, probe: Probe) -> dict[str, Any]:
    for setup in probe.setup:
        await client.send(setup)
        if setup["type"] == "conversation.item.create":
            assert (await client.until("conversation.item.added"))["type"] == "conversation.item.added"
    await client.send({**probe.event, "event_id": "probe"})
    return await client.until(*ANSWERS)


def accepted(answer: dict[str, Any], probe: Probe) -> bool:
    if answer["type"] == "response.done":
        return bool(answer["response"]["status"] != "failed")
    return answer["type"] in probe.accepted


REALTIME_PROBES = [p for p in PROBES if p.live_start is None]  # Live's: tests/e2e/live/test_live_rules.py


@pytest.mark.parametrize("probe", REALTIME_PROBES, ids=[p.rule for p in REALTIME_PROBES])
async def test_failure_reproduces_directly_and_is_repaired_through_the_proxy(
    proxy: RunningProxy, probe: Probe
) -> None:
    target = probe.target("gpt-realtime")
    direct = await RawClient.open(f"{proxy.fake.url}{target}")
    failed = await answer_to(direct, probe)
    assert not accepted(failed, probe), failed
    await direct.close()

    through = await RawClient.open(f"ws://127.0.0.1:{proxy.port}{target}")
    answer = await answer_to(through, probe)
    await through.close()
    lines = proxy.log_lines()
    if probe.rule == "empty_commit":  # the repair is the API's own answer, without the round trip
        assert answer["type"] == "error" and answer["error"]["event_id"] == "probe"
        assert [line["rule"] for line in lines if line["event"] == "refusal"] == ["empty_commit"]
        return
    assert accepted(answer, probe), answer
    rules = {line["rule"] for line in lines if line["event"] == "rewrite"}
    assert probe.rule in rules
    assert sample(await proxy.scrape(), "realtime_proxy_rewrites_total", rule=probe.rule) >= 1


async def test_transcription_model_moves_from_the_query_into_the_session(proxy: RunningProxy) -> None:
    client = await RawClient.open(
        f"ws://127.0.0.1:{proxy.port}/v1/realtime?intent=transcription&model=whisper-1"
    )
    assert proxy.fake.connections[-1].query == {"intent": "transcription"}
    await client.send({"type": "session.update", "session": {"type": "transcription"}})
    updated = await client.until("session.updated")
    assert updated["session"]["audio"]["input"]["transcription"] == {"model": "whisper-1"}
    # Later updates are the client's own: the model went in once.
    await client.send({"type": "session.update", "session": {"type": "transcription", "include": None}})
    await client.until("session.updated")
    assert "audio" not in received(proxy, "session.update")[-1]["session"]
    await client.close()


async def test_dry_run_leaves_the_transcription_query_alone(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(dry_run=True)
    client = await RawClient.open(
        f"ws://127.0.0.1:{proxy.port}/v1/realtime?intent=transcription&model=whisper-1"
    )
    assert proxy.fake.connections[-1].query == {"intent": "transcription", "model": "whisper-1"}
    await client.close()


async def test_tool_choice_naming_an_unseen_tool_is_forwarded_when_tools_are_incomplete(
    make_proxy: ProxyFactory,
) -> None:
    """A prompt template may define the tool: the proxy cannot know, so it does not refuse."""
    proxy = await make_proxy(retry={"enabled": False})  # retries tag the event's metadata
    client = await RawClient.open(proxy.realtime_url)
    event = {
        "type": "response.create",
        "event_id": "rc_1",
        "response": {
            "conversation": "none",
            "prompt": {"id": "pmpt_1"},
            "tool_choice": {"type": "function", "name": "from_the_prompt"},
        },
    }
    await client.send(event)
    await client.until("response.done")
    await client.close()
    assert received(proxy, "response.create") == [event]
    assert [line for line in proxy.log_lines() if line["event"] == "refusal"] == []


async def test_in_band_object_tool_choice_passes_unchanged_by_default(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    await client.send({"type": "session.update", "session": {"type": "realtime", "tools": [tool]}})
    await client.until("session.updated")
    # With an id of its own: turn-taking names in-band creates sent without one.
    event = {
        "type": "response.create",
        "event_id": "e1",
        "response": {"tool_choice": {"type": "function", "name": "lookup"}},
    }
    await client.send(event)
    done = await client.until("response.done")
    assert done["response"]["status"] == "completed", done
    await client.close()
    assert received(proxy, "response.create") == [event]


async def audio_item(client: RawClient) -> str:
    await client.send({"type": "response.create"})
    done = await client.until("response.done")
    assert done["response"]["status"] == "completed", done
    return str(done["response"]["output"][0]["id"])


async def test_truncate_at_the_delivered_end_fails_directly_and_is_clamped_through_the_proxy(
    proxy: RunningProxy,
) -> None:
    proxy.fake.audio_shortfall_ms = 85  # the server's item is shorter than the audio sent (pipecat #2106)
    direct = await RawClient.open(f"{proxy.fake.url}/v1/realtime?model=gpt-realtime")
    item_id = await audio_item(direct)
    truncate = {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 100,
    }
    await direct.send(truncate)
    error = await direct.until("conversation.item.truncated")
    assert error["type"] == "error" and error["error"]["code"] == "item_truncate_invalid_audio_end_ms"
    await direct.close()

    client = await RawClient.open(proxy.realtime_url)
    item_id = await audio_item(client)
    await client.send({**truncate, "item_id": item_id})  # the client heard all 100 ms it received
    truncated = await client.until("conversation.item.truncated")
    assert truncated["type"] == "conversation.item.truncated" and truncated["audio_end_ms"] == 0
    await client.close()


async def test_truncate_of_an_item_without_audio_is_answered_by_the_proxy(proxy: RunningProxy) -> None:
    async def text_item(client: RawClient) -> str:
        await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        done = await client.until("response.done")
        return str(done["response"]["output"][0]["id"])

    direct = await RawClient.open(f"{proxy.fake.url}/v1/realtime?model=gpt-realtime")
    truncate = {"type": "conversation.item.truncate", "content_index": 0, "audio_end_ms": 0, "event_id": "t1"}
    await direct.send({**truncate, "item_id": await text_item(direct)})
    expected = (await direct.until("conversation.item.truncated"))["error"]
    assert expected["code"] == "unsupported_content_type"
    await direct.close()

    client = await RawClient.open(proxy.realtime_url)
    await client.send({**truncate, "item_id": await text_item(client)})
    error = await client.until("conversation.item.truncated")
    assert {k: error["error"][k] for k in ("code", "message", "event_id")} == {
        k: expected[k] for k in ("code", "message", "event_id")
    }
    await client.close()
    assert received(proxy, "conversation.item.truncate") == []


async def test_model_alias_and_per_model_switch(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(
        models={
            "aliases": {"gpt-4o-realtime-preview": "gpt-realtime-2"},
            "rules": {"gpt-realtime-2": {"drop_temperature": False}},
        }
    )
    client = await RawClient.open(f"ws://127.0.0.1:{proxy.port}/v1/realtime?model=gpt-4o-realtime-preview")
    assert proxy.fake.connections[-1].query == {"model": "gpt-realtime-2"}
    event = {"type": "session.update", "session": {"type": "realtime", "temperature": 0.7}}
    await client.send(event)
    error = await client.until("session.updated")  # the rule is off for this model: the API refuses
    assert error["type"] == "error" and "temperature" in error["error"]["message"]
    await client.close()
    assert received(proxy, "session.update") == [event]
    other = await RawClient.open(proxy.realtime_url)  # gpt-realtime: the rule still runs
    await other.send(event)
    assert (await other.until("session.updated"))["type"] == "session.updated"
    await other.close()


async def test_transcription_model_stays_in_the_query_when_its_rule_is_off_for_that_model(
    make_proxy: ProxyFactory,
) -> None:
    proxy = await make_proxy(models={"rules": {"whisper-1": {"transcription_handshake_model": False}}})
    client = await RawClient.open(
        f"ws://127.0.0.1:{proxy.port}/v1/realtime?intent=transcription&model=whisper-1"
    )
    assert proxy.fake.connections[-1].query == {"intent": "transcription", "model": "whisper-1"}
    await client.close()
