"""Session continuity, measured (issue 25): an SDK session through the proxy whose upstream the fake
drops after every response. Reports the time to resume (the proxy's `upstream_resumed` resume_s:
from the drop to the new upstream taking traffic), items and bytes replayed, and the mirror's size.

Run with `python -m bench.resume [--turns 20]` (in-process proxy and fake on loopback)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import tracemalloc
from typing import Any

from openai import AsyncOpenAI

from realtime_proxy.core.conversation import ConversationMirror
from realtime_proxy.edge.server import ProxyServer
from realtime_proxy.fake_upstream import FakeUpstream
from realtime_proxy.observe.logs import configure_logging
from realtime_proxy.settings import load_settings

USER_TEXT = "Could you tell me a little more about that, with one concrete example please? " * 2


async def run(turns: int) -> dict[str, Any]:
    logs = io.StringIO()
    configure_logging(log_format="json", level="info", stream=logs)
    async with FakeUpstream(delta_interval=0.0) as fake:
        fake.drop_after_responses = 1
        flags = {"host": "127.0.0.1", "port": 0, "upstream_url": fake.url, "ping_interval": 0}
        flags["continuity"] = {"max_resumptions": 100}
        server = ProxyServer(load_settings(None, environ={}, flags=flags), rng=random.Random(1))
        await server.start()
        client = AsyncOpenAI(api_key="sk-bench", websocket_base_url=f"ws://127.0.0.1:{server.port}/v1")
        mirror_bytes = 0
        async with client.realtime.connect(model="gpt-realtime") as connection:
            await connection.session.update(
                session={"type": "realtime", "output_modalities": ["text"], "instructions": "Be helpful."}
            )
            for _ in range(turns):
                item = {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": USER_TEXT}],
                }
                await connection.conversation.item.create(item=item)
                await connection.response.create()
                async with asyncio.timeout(30):
                    async for event in connection:
                        if event.type == "response.done":
                            break
            relay = next(iter(server.relays))
            mirror: ConversationMirror = relay.core.inner.mirror  # type: ignore[attr-defined]
            mirror_bytes = mirror.bytes
            mirror_items = len(mirror.items)
            await connection.close()
        await server.shutdown(grace=0)
    resumed = [
        e for e in map(json.loads, logs.getvalue().splitlines()) if e.get("event") == "upstream_resumed"
    ]
    return {"resumed": resumed, "mirror_bytes": mirror_bytes, "mirror_items": mirror_items}


def heap_per_item(items: int) -> float:
    """Python heap held by the mirror per item of this benchmark's size (tracemalloc)."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    mirror = ConversationMirror(max_bytes=1 << 30)
    for n in range(items):
        role, kind = ("user", "input_text") if n % 2 == 0 else ("assistant", "output_text")
        item = {
            "id": f"item_{n:020d}",
            "type": "message",
            "role": role,
            "content": [{"type": kind, "text": USER_TEXT}],
        }
        mirror.on_event("conversation.item.done", {"item": item})
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return grown / items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.turns))
    resumed = result["resumed"]
    times = sorted(e["resume_s"] for e in resumed)
    print(f"resumptions: {len(resumed)}")
    print(f"time to resume: median {statistics.median(times) * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
    last = resumed[-1]
    print(f"last replay: {last['items']} items, {last['bytes']} bytes (config included)")
    print(f"per item replayed: {(last['bytes'] / max(last['items'], 1)):.0f} bytes")
    print(f"mirror at the end: {result['mirror_items']} items, {result['mirror_bytes']} bytes serialised")
    print(f"mirror heap per item: {heap_per_item(400):.0f} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
