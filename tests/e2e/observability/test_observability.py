"""Observability acceptance: a full SDK session through the proxy, then exact values scraped from
/metrics over HTTP; and a grep of every log line for a known secret and audio payload."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import pytest
from openai import AsyncOpenAI

from realtime_proxy.core.tracker import token_counts
from tests.conftest import ProxyFactory, RunningProxy, sample
from tests.e2e.realtime_client import RETURN_RESPONSE_TOOL, RawClient

SECRET = "sk-proj-KNOWNSECRET0123456789"
EPHEMERAL = "ek_68af2d0c1a2b3c4d5e6f7a8b9c0d1e2f"


# Prices chosen so every token kind has its own weight (USD per 1M tokens).
PRICE = {
    "text_input": 1.0,
    "text_cached_input": 0.5,
    "text_output": 3.0,
    "audio_input": 10.0,
    "audio_cached_input": 0.25,
    "audio_output": 30.0,
    "image_input": 7.0,
    "image_cached_input": 0.7,
}


def usd_at_price(usage: dict[str, Any]) -> float:
    """The bill for one usage block at PRICE, from the API's own fields (independent of the proxy)."""
    inputs, outputs = usage["input_token_details"], usage["output_token_details"]
    cached = inputs["cached_tokens_details"]
    total = 0.0
    for modality in ("text", "audio"):
        fresh = inputs[f"{modality}_tokens"] - cached[f"{modality}_tokens"]
        total += (
            fresh * PRICE[f"{modality}_input"]
            + cached[f"{modality}_tokens"] * PRICE[f"{modality}_cached_input"]
        )
        total += outputs[f"{modality}_tokens"] * PRICE[f"{modality}_output"]
    return total / 1_000_000


async def until_done(connection: Any) -> Any:
    async with asyncio.timeout(10):
        async for event in connection:
            if event.type == "response.done":
                return event
    raise AssertionError("connection ended before response.done")


def sent_by_fake(proxy: RunningProxy) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in proxy.fake.connections[-1].sent]


async def test_full_session_metrics_are_exact(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(
        retry={"backoff_base": 0.01, "backoff_cap": 0.02}, prices={"gpt-realtime": PRICE}
    )
    client = AsyncOpenAI(api_key=SECRET, websocket_base_url=proxy.ws_base)
    audio_chunk = base64.b64encode(bytes(960)).decode()  # 20 ms of PCM16 at 24 kHz
    async with client.realtime.connect(model="gpt-realtime") as connection:
        await connection.recv()  # session.created
        # A beta-shaped update: one rewrite (modalities -> output_modalities).
        await connection.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "modalities": ["text"], "tools": [RETURN_RESPONSE_TOOL]},
            }
        )
        async with asyncio.timeout(5):
            assert (await connection.recv()).type == "session.updated"
        await connection.response.create(response={"tool_choice": "none"})  # text
        assert (await until_done(connection)).response.status == "completed"
        await connection.response.create(response={"tool_choice": "required"})  # function call
        assert (await until_done(connection)).response.output[0].type == "function_call"
        for _ in range(10):
            await connection.input_audio_buffer.append(audio=audio_chunk)
        await connection.input_audio_buffer.commit()
        await connection.response.create(response={"output_modalities": ["audio"], "tool_choice": "none"})
        assert (await until_done(connection)).response.status == "completed"
        proxy.fake.fail_next_out_of_band(1)  # one failed attempt, retried invisibly
        await connection.response.create(
            response={"conversation": "none", "tool_choice": "none", "output_modalities": ["text"]}
        )
        assert (await until_done(connection)).response.status == "completed"
    async with asyncio.timeout(5):
        while proxy.server.relays:
            await asyncio.sleep(0.01)

    upstream_dones = [e for e in sent_by_fake(proxy) if e["type"] == "response.done"]
    assert [d["response"]["status"] for d in upstream_dones].count("failed") == 1
    m = await proxy.scrape()
    assert sample(m, "realtime_proxy_sessions_active") == 0
    assert sample(m, "realtime_proxy_sessions_total", outcome="client_closed") == 1
    assert sample(m, "realtime_proxy_upstream_handshakes_total", result="ok") == 1
    assert sample(m, "realtime_proxy_upstream_connect_seconds_count") == 1
    assert sample(m, "realtime_proxy_session_duration_seconds_count") == 1
    assert (
        sample(
            m,
            "realtime_proxy_messages_total",
            direction="client_to_upstream",
            event_type="input_audio_buffer.append",
        )
        == 10
    )
    assert (
        sample(
            m, "realtime_proxy_messages_total", direction="client_to_upstream", event_type="response.create"
        )
        == 4
    )
    deltas = sum(e["type"] == "response.output_audio.delta" for e in sent_by_fake(proxy))
    assert (
        sample(
            m,
            "realtime_proxy_messages_total",
            direction="upstream_to_client",
            event_type="response.output_audio.delta",
        )
        == deltas
        > 0
    )
    assert sample(m, "realtime_proxy_rewrites_total", rule="modalities_to_output_modalities") == 1
    assert sample(m, "realtime_proxy_rewrites_total", rule="tool_choice_object") == 0
    assert sample(m, "realtime_proxy_oob_retries_total", outcome="recovered") == 1
    assert sample(m, "realtime_proxy_oob_retry_attempts_count") == 1
    assert sample(m, "realtime_proxy_oob_retry_attempts_sum") == 2
    assert sample(m, "realtime_proxy_oob_retry_added_seconds_count") == 1
    model = {"model": "gpt-realtime"}
    assert sample(m, "realtime_proxy_responses_total", status="completed", error_type="none", **model) == 4
    assert (
        sample(m, "realtime_proxy_responses_total", status="failed", error_type="server_error", **model) == 1
    )
    assert sample(m, "realtime_proxy_response_duration_seconds_count", status="completed") == 4
    assert sample(m, "realtime_proxy_time_to_first_delta_seconds_count", modality="text") == 2
    assert sample(m, "realtime_proxy_time_to_first_delta_seconds_count", modality="function_call") == 1
    assert sample(m, "realtime_proxy_time_to_first_delta_seconds_count", modality="audio") == 1
    expected_tokens: dict[tuple[str, str, str], int] = {}
    for done in upstream_dones:
        for direction, modality, cached, count in token_counts(done["response"]["usage"]):
            key = (direction, modality, "true" if cached else "false")
            expected_tokens[key] = expected_tokens.get(key, 0) + count
    assert expected_tokens  # the fake reports real usage
    for (direction, modality, cached), count in expected_tokens.items():
        assert (
            sample(
                m,
                "realtime_proxy_tokens_total",
                direction=direction,
                modality=modality,
                cached=cached,
                **model,
            )
            == count
        )
    # Cost: the fake's usage at the configured prices, worked out here from the raw usage fields.
    expected_usd = sum(usd_at_price(done["response"]["usage"]) for done in upstream_dones)
    assert expected_usd > 0
    assert sample(m, "realtime_proxy_cost_usd_total", **model) == pytest.approx(expected_usd, rel=1e-12)
    assert sample(m, "realtime_proxy_cost_usd_total", model="other") == 0
    last_limits = [e for e in sent_by_fake(proxy) if e["type"] == "rate_limits.updated"][-1]["rate_limits"]
    for entry in last_limits:
        assert sample(m, "realtime_proxy_rate_limit_remaining", name=entry["name"]) == entry["remaining"]
        assert sample(m, "realtime_proxy_rate_limit_limit", name=entry["name"]) == entry["limit"]
    assert sample(m, "realtime_proxy_closes_total", side="client", code="1000") == 1
    # Pre-initialised series exist at 0 before anything happened to them.
    assert 'realtime_proxy_oob_retries_total{outcome="exhausted"}' in m
    assert sample(m, "realtime_proxy_rule_errors_total", rule="empty_commit") == 0

    summary = next(line for line in proxy.log_lines() if line["event"] == "session_closed")
    assert (
        summary["frames_from_client"]
        == sample(
            m, "realtime_proxy_messages_total", direction="client_to_upstream", event_type="response.create"
        )
        + 10
        + 1
        + 1
    )  # creates + appends + commit + session.update
    assert summary["rewrites"] == {"modalities_to_output_modalities": 1}
    assert summary["retries"] == {"recovered": 1}
    assert summary["responses"] == {"completed": 4, "failed": 1}
    assert summary["outcome"] == "client_closed" and summary["closed_by"] == "client"
    assert summary["cost_usd"] == round(expected_usd, 6) and summary["priced_as"] == "gpt-realtime"


async def test_no_secret_or_audio_reaches_a_log_line(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(log_event_types=True)
    audio = base64.b64encode(os.urandom(4800)).decode()  # unique: cannot appear by chance
    url = f"{proxy.realtime_url}&api-key={SECRET}"
    client = await RawClient.open(
        url,
        additional_headers={"Authorization": f"Bearer {SECRET}", "api-key": SECRET, "X-Ephemeral": EPHEMERAL},
        subprotocols=["realtime", f"openai-insecure-api-key.{SECRET}"],
    )
    await client.send({"type": "input_audio_buffer.append", "audio": audio})
    await client.send({"type": "input_audio_buffer.commit"})
    await client.until("input_audio_buffer.committed")
    # An upstream error whose text carries a secret; a rewrite; an audio response.
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "instructions": SECRET, "temperature": 1, "bogus": EPHEMERAL},
        }
    )
    await client.until("session.updated")
    # Rewrites whose before/after values carry a secret and a (short) audio payload.
    tool = {"type": "function", "function": {"name": "f", "description": f"key {SECRET}", "parameters": {}}}
    await client.send({"type": "session.update", "session": {"type": "realtime", "tools": [tool]}})
    await client.until("session.updated")
    short_audio = base64.b64encode(os.urandom(60)).decode()
    part = {"type": "audio", "audio": short_audio}
    await client.send(
        {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [part]}}
    )
    await client.until("conversation.item.added")
    await client.send({"type": "response.create"})
    await client.until("response.done")
    await client.close()
    async with asyncio.timeout(5):
        while proxy.server.relays:
            await asyncio.sleep(0.01)
    text = proxy.logs.getvalue()
    assert "session_closed" in text and "rewrite" in text and "upstream_error" in text
    audio_out = [e["delta"] for e in sent_by_fake(proxy) if e["type"] == "response.output_audio.delta"]
    assert audio_out
    forbidden_values = [SECRET, EPHEMERAL, audio[:64], short_audio]
    for forbidden in [*forbidden_values, *(chunk[:64] for chunk in audio_out if len(chunk) > 64)]:
        assert forbidden not in text
    metrics_text = json.dumps(await proxy.scrape())
    assert SECRET not in metrics_text and EPHEMERAL not in metrics_text


async def test_a_sideband_session_is_priced_as_the_model_the_server_names(make_proxy: ProxyFactory) -> None:
    """A `?call_id=` socket names no model; session.created does, and the session is priced as that."""
    proxy = await make_proxy(prices={"gpt-realtime": PRICE})
    client = await RawClient.open(f"{proxy.ws_base}/realtime?call_id=rtc_sideband_1")
    (created,) = client.seen  # session.created, read by open()
    assert created["session"]["model"] == "gpt-realtime"
    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    done = await client.until("response.done")
    assert done["response"]["status"] == "completed"
    await client.close()
    async with asyncio.timeout(5):
        while proxy.server.relays:
            await asyncio.sleep(0.01)
    expected_usd = usd_at_price(done["response"]["usage"])
    assert expected_usd > 0
    m = await proxy.scrape()
    assert sample(m, "realtime_proxy_cost_usd_total", model="gpt-realtime") == pytest.approx(expected_usd)
    assert (
        sample(m, "realtime_proxy_responses_total", status="completed", error_type="none", model="other") == 0
    )
    summary = next(line for line in proxy.log_lines() if line["event"] == "session_closed")
    assert summary["priced_as"] == "gpt-realtime" and summary["model"] is None
