"""Classification: the type is sniffed (audio never parsed), counted, and parsed only when declared."""

from __future__ import annotations

from typing import Any

import pytest

from realtime_proxy.core.classify import MAX_EVENT_DEPTH, parse_declared
from realtime_proxy.core.rules import build_chain
from realtime_proxy.core.session import SessionCore


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_frames_are_counted_by_direction_and_type() -> None:
    core = SessionCore(build_chain())
    core.from_client('{"type":"session.update","session":{}}', 0.0)
    core.from_client('{"type":"input_audio_buffer.append","audio":"AA"}', 0.0)
    core.from_client('{"type":"made.up"}', 0.0)
    core.from_upstream("not json", 0.0)
    frames = {key: n for key, n in core.traffic.frames.items() if n}
    assert frames == {
        ("client_to_upstream", "session.update"): 1,
        ("client_to_upstream", "input_audio_buffer.append"): 1,
        ("client_to_upstream", "other"): 1,
        ("upstream_to_client", "invalid"): 1,
    }
    assert core.traffic.bytes == {"client_to_upstream": 39 + 48 + 18, "upstream_to_client": 8}


def test_type_that_does_not_lead_is_found_by_parsing() -> None:
    frame = '{"event_id":"x","a":1,"type":"error"}'
    assert parse_declared(frame, None) == ("error", {"event_id": "x", "a": 1, "type": "error"})
    assert parse_declared("[1]", None) == (None, None)
    assert parse_declared('{"type":"session.update"}', "session.update") == (
        "session.update",
        {"type": "session.update"},
    )


@pytest.mark.parametrize("depth", [MAX_EVENT_DEPTH, 300, 600, 1000])
def test_events_nested_deeper_than_any_real_one_stay_unparsed(depth: int) -> None:
    # Built as text: JSON encoders themselves refuse such depths.
    frame = '{"type":"session.update","session":' + '{"a":' * depth + "1" + "}" * depth + "}"
    assert parse_declared(frame, "session.update") == ("session.update", None)


def test_events_at_the_depth_limit_are_parsed() -> None:
    depth = MAX_EVENT_DEPTH - 1  # with the event's own braces: exactly the limit
    frame = '{"type":"session.update","session":' + '{"a":' * depth + "1" + "}" * depth + "}"
    event_type, event = parse_declared(frame, "session.update")
    assert event_type == "session.update" and event is not None and "session" in event
