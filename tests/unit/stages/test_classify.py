"""Classification: the type is sniffed (audio never parsed), counted, and parsed only when declared."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.core.classify import MAX_EVENT_DEPTH, Classifier, nesting_depth_exceeds
from proxy.core.traffic import TrafficCounts


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = {"a": value}
    return {"k": value} if depth else value


def test_declared_types_are_parsed_and_others_only_sniffed() -> None:
    traffic = TrafficCounts()
    classify = Classifier(traffic)
    parsed = classify.message(
        "client", '{"type":"session.update","session":{}}', frozenset({"session.update"})
    )
    sniffed = classify.message("client", '{"type":"input_audio_buffer.append","audio":"AA"}', frozenset())
    assert (parsed.type, parsed.event) == ("session.update", {"type": "session.update", "session": {}})
    assert (sniffed.type, sniffed.event) == ("input_audio_buffer.append", None)
    assert traffic.frames[("client_to_upstream", "session.update")] == 1
    assert traffic.bytes["client_to_upstream"] == 39 + 48


def test_type_that_does_not_lead_is_found_by_parsing() -> None:
    message = Classifier(TrafficCounts()).message(
        "server", '{"event_id":"x","a":1,"type":"error"}', frozenset()
    )
    assert message.type == "error" and message.event == {"event_id": "x", "a": 1, "type": "error"}


@pytest.mark.parametrize("depth", [MAX_EVENT_DEPTH + 1, 300, 600, 1000])
def test_events_nested_deeper_than_any_real_one_stay_unparsed(depth: int) -> None:
    # Built as text: JSON encoders themselves refuse such depths.
    frame = '{"type":"session.update","session":' + '{"a":' * depth + "1" + "}" * depth + "}"
    message = Classifier(TrafficCounts()).message("client", frame, frozenset({"session.update"}))
    assert (message.type, message.event, message.out()) == ("session.update", None, frame)


def test_depth_check_at_the_limit() -> None:
    assert not nesting_depth_exceeds(nested(MAX_EVENT_DEPTH), MAX_EVENT_DEPTH)
    assert nesting_depth_exceeds(nested(MAX_EVENT_DEPTH + 1), MAX_EVENT_DEPTH)
    assert not nesting_depth_exceeds([[1], {"a": []}], 3)
    assert nesting_depth_exceeds([[[]]], 2)
