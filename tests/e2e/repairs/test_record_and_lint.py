"""--record-dir captures client events (audio as a length, secrets redacted) and lint reads them back
with the same findings the live proxy acted on."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path

from realtime_proxy.commands.lint import lint_events, read_events
from realtime_proxy.core.rules import build_chain
from tests.conftest import API_KEY, ProxyFactory
from tests.e2e.realtime_client import RawClient


async def test_recorded_session_lints_like_the_live_proxy(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    proxy = await make_proxy(record_dir=str(tmp_path))
    client = await RawClient.open(proxy.realtime_url)
    audio = base64.b64encode(os.urandom(48 * 200)).decode()
    await client.send(
        {"type": "session.update", "session": {"modalities": ["text"], "instructions": API_KEY}}
    )
    await client.until("session.updated")
    await client.send({"type": "input_audio_buffer.append", "audio": audio})
    await client.send({"type": "input_audio_buffer.commit"})
    await client.until("input_audio_buffer.committed")
    await client.close()
    async with asyncio.timeout(5):
        while proxy.server.relays:
            await asyncio.sleep(0.01)
    [recording] = list(tmp_path.glob("*.jsonl"))
    text = recording.read_text()
    assert API_KEY not in text and audio[:40] not in text
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["type"] for e in events] == [
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
    ]
    report = lint_events(read_events(recording), build_chain())
    rules = sorted({f.rule for f in report.findings})
    live = sorted({line["rule"] for line in proxy.log_lines() if line["event"] == "rewrite"})
    assert rules == live == ["modalities_to_output_modalities", "session_type_missing"]
    # 200 ms of recorded audio (kept as a length) is enough: lint does not flag the commit.
    assert not [f for f in report.findings if f.rule == "empty_commit"]
