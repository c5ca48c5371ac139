"""Reliability defects of the core, through a real `realtime-proxy` process:

- a deeply nested frame (any depth) goes on untouched, the API answers it, the session continues,
  and nothing is logged as a crash;
- one huge event with 100,000 tools produces a bounded number of log lines and does not stall the
  other sessions on the loop; a large one the rules do read reports each rule once, with a count.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.e2e.helpers import EchoUpstream, proxy_process

ARGS = ("--host", "127.0.0.1", "--port", "0", "--metrics-port", "0")
URL = "/v1/realtime?model=gpt-realtime"


def deep_update(depth: int, *, with_rewrite: bool) -> str:
    extra = '"temperature":0.8,' if with_rewrite else ""  # drop_temperature would fire if the rules ran
    return (
        '{"type":"session.update","session":{' + extra + '"x":' + '{"a":' * depth + "1" + "}" * depth + "}}"
    )


def log_events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.parametrize("depth", [64, 255, 300, 600, 5000])
async def test_deeply_nested_frame_is_forwarded_and_the_session_continues(depth: int) -> None:
    async with EchoUpstream() as upstream, proxy_process(*ARGS, "--upstream-url", upstream.url) as proxy:
        async with asyncio.timeout(10), connect(f"ws://127.0.0.1:{proxy.port}{URL}") as client:
            conn = await upstream.next_conn()
            frame = deep_update(depth, with_rewrite=True)
            await client.send(frame)
            assert await client.recv() == frame  # forwarded byte for byte; the upstream answers it
            await client.send('{"type":"input_audio_buffer.clear"}')
            assert await client.recv() == '{"type":"input_audio_buffer.clear"}'  # the session goes on
            assert conn.received == [frame, '{"type":"input_audio_buffer.clear"}']
        await proxy.stop()
    events = log_events(proxy.lines)
    assert not [e for e in events if e.get("level") in ("error", "critical")]
    assert not any("Traceback" in line for line in proxy.lines)
    closed = [e for e in events if e["event"] == "session_closed"]
    assert [(e["outcome"], e["rule_errors"]) for e in closed] == [("client_closed", 0)]


def chat_tools(count: int) -> list[dict[str, Any]]:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    return [
        {"type": "function", "function": {"name": f"tool_{i}", "description": "d", "parameters": schema}}
        for i in range(count)
    ]


async def worst_round_trip(url: str, stop: asyncio.Event) -> float:
    """Echo round trips on a second session until `stop`; the slowest one."""
    worst = 0.0
    async with connect(url) as other:
        while not stop.is_set():
            started = time.perf_counter()
            await other.send('{"type":"input_audio_buffer.clear"}')
            await other.recv()
            worst = max(worst, time.perf_counter() - started)
    return worst


async def test_huge_event_is_bounded_in_log_lines_and_does_not_stall_other_sessions() -> None:
    huge = json.dumps(
        {"type": "session.update", "event_id": "huge", "session": {"tools": chat_tools(100_000)}}
    )
    assert len(huge) > 7 * 1024 * 1024
    async with EchoUpstream() as upstream, proxy_process(*ARGS, "--upstream-url", upstream.url) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}{URL}"
        async with asyncio.timeout(30), connect(url, max_size=None) as client:
            stop = asyncio.Event()
            prober = asyncio.create_task(worst_round_trip(url, stop))
            lines_before = len(proxy.lines)
            await client.send(huge)
            assert await client.recv() == huge  # forwarded as sent
            stop.set()
            worst = await prober
        await proxy.stop()
    assert worst < 1.0, f"another session waited {worst:.2f} s"
    new = log_events(proxy.lines[lines_before:])
    skipped = [e for e in new if e["event"] == "repair_skipped"]
    assert [(e["reason"], e["bytes"]) for e in skipped] == [("too_large", len(huge))]
    lifecycle = ("session_open", "session_closed", "proxy_stopped")
    about_the_event = [
        e["event"] for e in new if e["event"] not in lifecycle and not e["event"].startswith("shutdown")
    ]
    assert about_the_event == ["repair_skipped"]  # one line for the event, never one per tool


async def test_large_event_the_rules_read_is_one_rewrite_line_per_rule() -> None:
    update = json.dumps({"type": "session.update", "event_id": "big", "session": {"tools": chat_tools(3000)}})
    assert len(update) < 1024 * 1024
    async with EchoUpstream() as upstream, proxy_process(*ARGS, "--upstream-url", upstream.url) as proxy:
        async with asyncio.timeout(30), connect(f"ws://127.0.0.1:{proxy.port}{URL}") as client:
            await client.send(update)
            sent = json.loads(await client.recv())
        await proxy.stop()
    assert all("function" not in tool for tool in sent["session"]["tools"])  # repaired, all 3,000
    rewrites = [e for e in log_events(proxy.lines) if e["event"] == "rewrite"]
    assert {(e["rule"], e["count"]) for e in rewrites} >= {("chat_completions_tools", 3000)}
    assert len(rewrites) == len({e["rule"] for e in rewrites})  # one line per rule
