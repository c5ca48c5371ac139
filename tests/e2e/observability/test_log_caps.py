"""Every logged value is capped (observe/logs.py), through the in-process proxy and the fake: a
200 KiB event_id, parameter name or upstream error message lands in `rewrite` and `upstream_error`
lines cut to 1 KiB with its length noted."""

from __future__ import annotations

from tests.conftest import RunningProxy
from tests.e2e.realtime_client import RawClient

HUGE = 200 * 1024


async def test_huge_values_are_logged_capped(proxy: RunningProxy) -> None:
    event_id, name = "ev-" * (HUGE // 3), "p-" * (HUGE // 2)  # not base64: logged as text
    client = await RawClient.open(proxy.realtime_url)
    # Repaired (modalities), then refused upstream for an unknown parameter the API quotes.
    session = {"type": "realtime", "modalities": ["text"], name: 1}
    await client.send({"type": "session.update", "event_id": event_id, "session": session})
    error = await client.until("session.updated")
    assert error["type"] == "error" and name in error["error"]["message"]  # the client sees it whole
    await client.close()
    lines = proxy.logs.getvalue().splitlines()
    assert max(len(line) for line in lines) < 8 * 1024
    logged = {
        line["event"]: line for line in proxy.log_lines() if line["event"] in ("rewrite", "upstream_error")
    }
    assert logged["rewrite"]["client_event_id"] == event_id[:1024] + f"...<{len(event_id)} chars>"
    message = logged["upstream_error"]["message"]
    assert message.endswith(" chars>") and len(message) < 1100
