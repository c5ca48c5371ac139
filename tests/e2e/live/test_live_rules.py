"""Live repairs through the proxy (issue 22): a Live model asked for on the Realtime route is answered
once by the proxy, naming the Live route (rule live_model_on_realtime, on by default); off, the
client gets the API's own refusal. gpt-live-transcribe is a Realtime model and goes on."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from realtime_proxy.api.events import LIVE_CLIENT_EVENTS as SUPPORTED
from realtime_proxy.commands.lint import main as lint_main
from realtime_proxy.commands.probe_cases import PROBES
from realtime_proxy.core.rules import rule_by_name
from tests.conftest import API_KEY, ProxyFactory, RunningProxy, sample
from tests.e2e.live.test_live_sdk import DELEGATION, until

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def test_live_model_on_the_realtime_route_is_answered_naming_the_live_route(
    proxy: RunningProxy,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{proxy.ws_base}/realtime?model=gpt-live-1", additional_headers=AUTH)
    assert refused.value.response.status_code == 400
    error = json.loads(refused.value.response.body)["error"]
    assert error["code"] == "invalid_model" and "/v1/live/sessions" in error["message"]
    assert proxy.fake.connections == [] and proxy.fake.refused == []  # answered before any upstream contact
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_upstream_handshakes_total", result="rejected_model") == 1
    assert sample(samples, "realtime_proxy_refusals_total", rule="live_model_on_realtime") == 1


async def test_with_the_rule_off_the_apis_own_refusal_is_relayed(make_proxy: ProxyFactory) -> None:
    proxy = await make_proxy(rules={"live_model_on_realtime": {"enabled": False}})
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{proxy.ws_base}/realtime?model=gpt-live-1", additional_headers=AUTH)
    assert refused.value.response.status_code == 400
    error = json.loads(refused.value.response.body)["error"]
    assert error["code"] == "invalid_model" and "/v1/live/sessions" not in error["message"]
    assert len(proxy.fake.refused) == 1


async def test_a_live_model_in_a_realtime_session_update_is_refused_with_the_live_route(
    proxy: RunningProxy,
) -> None:
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.realtime.connect(model="gpt-realtime") as connection:
        async with asyncio.timeout(5):
            assert (await connection.recv()).type == "session.created"
        await connection.send(
            {
                "type": "session.update",
                "event_id": "u1",
                "session": {"type": "realtime", "model": "gpt-live-1.1"},
            }
        )
        async with asyncio.timeout(5):
            error = await connection.recv()
    assert error.type == "error" and error.error.code == "invalid_model"
    assert error.error.event_id == "u1" and "/v1/live/sessions" in error.error.message
    assert all('"session.update"' not in str(f) for f in proxy.fake.connections[-1].received)


async def test_early_commands_are_held_until_session_started_when_the_rule_is_on(
    make_proxy: ProxyFactory,
) -> None:
    proxy = await make_proxy(rules={"live_hold_until_started": {"enabled": True}})
    proxy.fake.live_start_delay = 0.05
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.live.connect() as connection:
        await connection.session.start(session={"model": "gpt-live-1", "delegation": DELEGATION})
        await connection.response.create(event_id="early")  # without waiting for session.started
        events = await until(connection, "session.output_audio.delta")
    assert "error" not in [e.type for e in events]
    received = [json.loads(f)["type"] for f in proxy.fake.connections[-1].received]
    assert received[:2] == ["session.start", "response.create"]
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_live_early_commands_total", action="held") == 1


async def test_without_the_gate_an_early_command_gets_the_apis_error(proxy: RunningProxy) -> None:
    proxy.fake.live_start_delay = 0.05
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    async with client.live.connect() as connection:
        await connection.session.start(session={"model": "gpt-live-1", "delegation": DELEGATION})
        await connection.response.create(event_id="early")
        events = await until(connection, "error")
    assert events[-1].error.client_event_id == "early"
    samples = await proxy.scrape()
    assert sample(samples, "realtime_proxy_live_early_commands_total", action="would_hold") == 1


async def test_a_recorded_live_session_lints_with_lives_rules(
    make_proxy: ProxyFactory, tmp_path: Path
) -> None:
    proxy = await make_proxy(record_dir=str(tmp_path))
    client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=proxy.ws_base)
    output = {"type": "function_call_output", "call_id": "call_1", "output": "{}"}
    async with client.live.connect() as connection:
        await connection.session.start(session={"model": "gpt-live-1", "delegation": DELEGATION})
        await until(connection, "session.started")
        await connection.session.input_audio.append(audio="AAAA")
        await connection.send_raw(json.dumps({"type": "conversation.item.create", "item": output}))  # type: ignore[attr-defined]
        await until(connection, "error")
    async with asyncio.timeout(5):
        while proxy.server.relays:
            await asyncio.sleep(0.01)
    (recording,) = tmp_path.glob("*.jsonl")
    assert "AAAA" not in recording.read_text()  # audio is recorded as its length only
    code, out = lint_cli(recording)
    assert code == 1
    assert out.splitlines() == [
        "#3 conversation.item.create: unfixable: invalid_value: Invalid value: 'conversation.item.create'. "
        "Supported values are: " + ", ".join(f"'{t}'" for t in SUPPORTED[:-1]) + ", and 'session.close'.",
        f"{recording}: 3 client events, 1 unfixable",
    ]
    config = tmp_path / "proxy.toml"
    config.write_text("[rules.live_function_output_item]\nenabled = true\n")
    code, out = lint_cli(recording, "--config", str(config))
    assert out.splitlines() == [
        "#3 conversation.item.create: live_function_output_item would rewrite type: "
        '"conversation.item.create" -> "response.item.create"',
        "    prevents: " + rule_by_name("live_function_output_item").prevents,
        f"{recording}: 3 client events, 1 rewrite",
    ]


def lint_cli(path: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = lint_main([str(path), *args])
    return code, out.getvalue()


async def test_live_function_output_item_reproduces_directly_and_is_repaired_through_the_proxy(
    make_proxy: ProxyFactory,
) -> None:
    (probe,) = [p for p in PROBES if p.rule == "live_function_output_item"]
    assert probe.live_start is not None
    proxy = await make_proxy(rules={"live_function_output_item": {"enabled": True}})
    answers = []
    for base in (proxy.fake.url, proxy.ws_base.removesuffix("/v1")):
        async with asyncio.timeout(5), connect(f"{base}{probe.path}", additional_headers=AUTH) as ws:
            await ws.send(json.dumps(probe.live_start))
            assert json.loads(await ws.recv())["type"] == "session.started"
            await ws.send(json.dumps({**probe.event, "event_id": "probe"}))
            await ws.send(json.dumps({"type": "session.close"}))  # answered in order after the probe
            answers.append([json.loads(frame)["type"] async for frame in ws])
    direct, through = answers
    assert direct[:2] == ["session.usage.updated", "error"]  # invalid_value: conversation.item.create
    assert through == ["session.usage.updated", "session.closed"]
    assert json.loads(proxy.fake.connections[-1].received[1])["type"] == "response.item.create"
