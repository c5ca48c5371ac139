"""Every catalogue entry (shared/PROTOCOL.md) sent broken through the proxy: the fake upstream, as
strict as the GA API, accepts the repaired event. Plus refusals, dry-run, rule failures and error
attribution."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from realtime_proxy.core.rules import Rule
from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.realtime_client import RawClient, pcm_silence_b64

SEED_PATH = Path(__file__).parents[2] / "data" / "seed_response_create.json"  # verbatim from the seed report


def seed_event() -> dict[str, Any]:
    """The exact failing event of shared/seed-report.txt."""
    return json.loads(SEED_PATH.read_text())


def upstream_received(proxy: RunningProxy, event_type: str) -> list[dict[str, Any]]:
    frames = proxy.fake.connections[-1].received
    events = [json.loads(f) for f in frames if isinstance(f, str)]
    return [e for e in events if e.get("type") == event_type]


async def test_seed_event_completes_through_the_proxy_with_the_sdk(proxy: RunningProxy) -> None:
    seed = seed_event()
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.send(copy.deepcopy(seed))
        async with asyncio.timeout(10):
            async for event in connection:
                if event.type == "response.done":
                    break
    assert event.response.status == "completed"
    call = event.response.output[0]
    assert call.type == "function_call" and call.name == "return_response"
    assert event.response.metadata == {"response_type": "out-of-band"}
    sent = upstream_received(proxy, "response.create")[-1]["response"]
    assert sent["tool_choice"] == "required"
    assert sent["tools"] == seed["response"]["tools"]


async def test_seed_event_without_the_proxy_fails_at_the_fake(proxy: RunningProxy) -> None:
    """The fake reproduces the bug, so the test above proves the repair and not a lenient fake."""
    client = await RawClient.open(f"{proxy.fake.url}/v1/realtime?model=gpt-realtime")
    await client.send(seed_event())
    done = await client.until("response.done")
    assert done["response"]["status"] == "failed"
    assert done["response"]["status_details"]["error"]["type"] == "server_error"
    await client.close()


SESSION_CASES: list[tuple[str, dict[str, Any], Any]] = [
    (
        "modalities_to_output_modalities",
        {"type": "realtime", "modalities": ["audio", "text"]},
        lambda s: s["output_modalities"] == ["audio"],
    ),
    ("session_type_missing", {"instructions": "be brief"}, lambda s: s["instructions"] == "be brief"),
    (
        "flat_audio_settings",
        {"type": "realtime", "voice": "cedar", "turn_detection": None, "speed": 1.1},
        lambda s: s["audio"]["output"]["voice"] == "cedar" and s["audio"]["output"]["speed"] == 1.1,
    ),
    (
        "audio_format_strings",
        {"type": "realtime", "input_audio_format": "g711_ulaw", "audio": {"output": {"format": "pcm16"}}},
        lambda s: (
            s["audio"]["input"]["format"] == {"type": "audio/pcmu"}
            and s["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
        ),
    ),
    (
        "drop_temperature",
        {"type": "realtime", "temperature": 0.7, "instructions": "x"},
        lambda s: s["instructions"] == "x" and "temperature" not in s,
    ),
    (
        "max_response_output_tokens",
        {"type": "realtime", "max_response_output_tokens": 300},
        lambda s: s["max_output_tokens"] == 300,
    ),
    (
        "chat_completions_tools",
        {
            "type": "realtime",
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "description": "d",
                        "parameters": {"type": "object", "properties": {}},
                    },
                }
            ],
        },
        lambda s: s["tools"][0]["name"] == "lookup",
    ),
    ("tool_choice_null", {"type": "realtime", "tool_choice": None}, lambda s: s["tool_choice"] == "auto"),
]


@pytest.mark.parametrize(("rule", "session", "check"), SESSION_CASES, ids=[c[0] for c in SESSION_CASES])
async def test_broken_session_update_is_repaired(
    proxy: RunningProxy, rule: str, session: dict[str, Any], check: Any
) -> None:
    client = await RawClient.open(proxy.realtime_url)
    await client.send({"type": "session.update", "event_id": "evt_1", "session": session})
    answer = await client.until("session.updated")
    assert answer["type"] == "session.updated", answer
    assert check(answer["session"])
    await client.close()
    rewrites = [line for line in proxy.log_lines() if line["event"] == "rewrite"]
    assert any(line["rule"] == rule and line["client_event_id"] == "evt_1" for line in rewrites)
    assert sample(await proxy.scrape(), "realtime_proxy_rewrites_total", rule=rule) >= 1


@pytest.mark.parametrize(
    ("role", "part_type", "expected"),
    [("user", "text", "input_text"), ("system", "text", "input_text"), ("assistant", "text", "output_text")],
)
async def test_content_part_types_by_role(
    proxy: RunningProxy, role: str, part_type: str, expected: str
) -> None:
    client = await RawClient.open(proxy.realtime_url)
    item = {"type": "message", "role": role, "content": [{"type": part_type, "text": "hello"}]}
    await client.send({"type": "conversation.item.create", "item": item})
    added = await client.until("conversation.item.added")
    assert added["type"] == "conversation.item.added", added
    assert added["item"]["content"][0]["type"] == expected
    await client.close()


async def test_function_call_output_object_becomes_string(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    item = {"type": "function_call_output", "call_id": "call_1", "output": {"temp": 21, "unit": "C"}}
    await client.send({"type": "conversation.item.create", "item": item})
    added = await client.until("conversation.item.added")
    assert added["type"] == "conversation.item.added", added
    assert json.loads(added["item"]["output"]) == {"temp": 21, "unit": "C"}
    await client.close()


async def test_response_create_beta_fields(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    await client.send(
        {
            "type": "response.create",
            "response": {
                "modalities": ["text"],
                "temperature": 0.5,
                "max_response_output_tokens": 500,
                "tool_choice": None,
            },
        }
    )
    done = await client.until("response.done")
    assert done["type"] == "response.done", done
    assert done["response"]["status"] == "completed"
    assert done["response"]["output_modalities"] == ["text"]
    await client.close()


async def _audio_response(client: RawClient) -> str:
    """Run an in-band audio response; return the id of its audio item."""
    await client.send({"type": "response.create"})
    done = await client.until("response.done")
    assert done["type"] == "response.done" and done["response"]["status"] == "completed", done
    return done["response"]["output"][0]["id"]


async def test_voice_change_after_audio_keeps_the_rest(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    await _audio_response(client)
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "instructions": "new", "audio": {"output": {"voice": "cedar"}}},
        }
    )
    updated = await client.until("session.updated")
    assert updated["type"] == "session.updated", updated
    assert updated["session"]["instructions"] == "new"
    assert updated["session"]["audio"]["output"]["voice"] == "marin"
    await client.close()


async def test_truncate_past_delivered_audio_is_clamped(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    item_id = await _audio_response(client)
    await client.send(
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 60_000}
    )
    truncated = await client.until("conversation.item.truncated")
    assert truncated["type"] == "conversation.item.truncated", truncated
    assert truncated["audio_end_ms"] == 0  # the fake delivers 100 ms; the rule keeps a 100 ms margin
    await client.close()


async def test_commit_of_too_little_audio_is_answered_like_the_api(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    await client.send({"type": "input_audio_buffer.append", "audio": pcm_silence_b64(40)})
    await client.send({"type": "input_audio_buffer.commit", "event_id": "commit_1"})
    error = await client.until("input_audio_buffer.committed")
    assert error["type"] == "error"
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert error["error"]["event_id"] == "commit_1"
    assert "Expected at least 100ms" in error["error"]["message"]
    assert upstream_received(proxy, "input_audio_buffer.commit") == []
    # Enough audio: the commit goes through and the API commits it.
    await client.send({"type": "input_audio_buffer.append", "audio": pcm_silence_b64(200)})
    await client.send({"type": "input_audio_buffer.commit", "event_id": "commit_2"})
    committed = await client.until("input_audio_buffer.committed")
    assert committed["type"] == "input_audio_buffer.committed", committed
    await client.close()


async def test_tool_choice_naming_no_tool_is_refused(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    await client.send(
        {
            "type": "response.create",
            "event_id": "rc_1",
            "response": {"conversation": "none", "tool_choice": {"type": "function", "name": "missing"}},
        }
    )
    error = await client.until("response.created")
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["code"] == "invalid_tool_choice"
    assert error["error"]["event_id"] == "rc_1"
    assert "missing" in error["error"]["message"]
    await client.close()
    assert upstream_received(proxy, "response.create") == []
    assert sample(await proxy.scrape(), "realtime_proxy_refusals_total", rule="tool_choice_object") == 1


async def test_dry_run_reports_but_forwards_the_original(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(dry_run=True)
    client = await RawClient.open(proxy.realtime_url)
    await client.send({"type": "session.update", "session": {"type": "realtime", "temperature": 0.7}})
    error = await client.until("session.updated")
    assert error["type"] == "error" and "temperature" in error["error"]["message"]
    await client.close()
    assert upstream_received(proxy, "session.update")[-1]["session"]["temperature"] == 0.7
    rewrite = next(line for line in proxy.log_lines() if line["event"] == "rewrite")
    assert rewrite["rule"] == "drop_temperature" and rewrite["applied"] is False


def _explode(event: dict[str, Any], state: Any, rewrites: list[Any]) -> None:
    raise RuntimeError("rule bug")


async def test_a_rule_that_raises_forwards_the_original(make_proxy: ProxyFactory) -> None:
    boom = Rule(
        name="explodes",
        description="test rule that always raises",
        lossless=True,
        default_enabled=True,
        event_types=frozenset({"session.update"}),
        prevents="nothing",
        apply=_explode,
    )
    proxy = await make_proxy(extra_rules=(boom,))
    client = await RawClient.open(proxy.realtime_url)
    original = {"type": "session.update", "session": {"type": "realtime", "modalities": ["text"]}}
    await client.send(original)
    answer = await client.until("session.updated")
    assert answer["type"] == "error"  # the unrepaired original reached the API, which refused it
    await client.send({"type": "session.update", "session": {"type": "realtime", "instructions": "ok"}})
    assert (await client.until("session.updated"))["type"] == "session.updated"  # the session carries on
    await client.close()
    assert upstream_received(proxy, "session.update")[0] == original
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_rule_errors_total", rule="explodes") == 2


async def test_a_test_rule_plugs_into_the_hook(make_proxy: ProxyFactory) -> None:
    """The client->upstream hook: an extra rule rewrites through the same chain as built-in ones."""

    def shout(event: dict[str, Any], state: Any, rewrites: list[Any]) -> None:
        from realtime_proxy.core.rules import RuleRewrite

        session = event.get("session")
        if isinstance(session, dict) and isinstance(session.get("instructions"), str):
            before = session["instructions"]
            session["instructions"] = before.upper()
            if before != session["instructions"]:
                rewrites.append(RuleRewrite("shout", "session.instructions", before, before.upper(), False))

    rule = Rule(
        name="shout",
        description="upper-case instructions",
        lossless=False,
        default_enabled=True,
        event_types=frozenset({"session.update"}),
        prevents="nothing",
        apply=shout,
    )
    proxy = await make_proxy(extra_rules=(rule,))
    client = await RawClient.open(proxy.realtime_url)
    await client.send({"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}})
    updated = await client.until("session.updated")
    assert updated["session"]["instructions"] == "HI"
    await client.close()


async def test_upstream_error_is_attributed_and_the_added_event_id_removed(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    # Repaired (modalities) but still invalid (an unknown parameter no rule fixes).
    await client.send(
        {"type": "session.update", "session": {"type": "realtime", "modalities": ["text"], "bogus": 1}}
    )
    error = await client.until("session.updated")
    assert error["type"] == "error"
    assert error["error"]["event_id"] is None  # the client sent no id, so it sees none
    sent = upstream_received(proxy, "session.update")[-1]
    assert sent["event_id"].startswith("proxy_evt_")  # the proxy added one for attribution
    await client.close()
    line = next(line for line in proxy.log_lines() if line["event"] == "upstream_error")
    assert line["rules"] == ["modalities_to_output_modalities"]
    assert line["client_event_id"] == sent["event_id"]


async def test_unrepaired_events_pass_byte_for_byte(proxy: RunningProxy) -> None:
    client = await RawClient.open(proxy.realtime_url)
    raw = '{"type":"session.update",  "session": {"type":"realtime","instructions":"exact  spacing"}}'
    await client.ws.send(raw)
    await client.until("session.updated")
    await client.close()
    assert raw in proxy.fake.connections[-1].received


async def test_deprecated_queue_setting_still_loads_and_serialises(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(rules={"queue_in_band_responses": True})
    client = await RawClient.open(proxy.realtime_url)
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    statuses = []
    while len(statuses) < 2:
        event = await client.until("response.done")
        assert event["type"] == "response.done", event
        statuses.append(event["response"]["status"])
    assert statuses == ["completed", "completed"]
    await client.close()


async def test_without_turn_taking_the_api_refuses_the_second(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(orchestration={"mode": "off"})
    client = await RawClient.open(proxy.realtime_url)
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    first = await client.until("response.done")
    assert first["type"] == "error"
    assert first["error"]["code"] == "conversation_already_has_active_response"
    await client.close()
