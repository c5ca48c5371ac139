"""Classification: the first step for every text frame. Sniffs the event type from the leading
bytes (audio is never parsed), counts the frame, and parses it only when some stage declared its
type. An event nested deeper than any real one is left unparsed: it goes on untouched and the API
answers it (the rules never see it, so no rule or encoder depth limit can end the session)."""

from __future__ import annotations

from typing import Any

from proxy.core.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES, label_for, parse_object, sniff_type
from proxy.core.stage import Direction, Message
from proxy.core.traffic import C2U, U2C, TrafficCounts

MAX_EVENT_DEPTH = 64  # real Realtime events nest < 20 deep; JSON encoders give up near 255

_COUNTED = {"client": (C2U, CLIENT_EVENT_TYPES), "server": (U2C, SERVER_EVENT_TYPES)}


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than `limit` (iterative: no recursion limit to hit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class Classifier:
    def __init__(self, traffic: TrafficCounts) -> None:
        self.traffic = traffic

    def count_binary(self, direction: Direction, frame: bytes) -> None:
        self.traffic.add(_COUNTED[direction][0], "binary", len(frame))

    def message(self, direction: Direction, frame: str, parsed_types: frozenset[str]) -> Message:
        event_type = sniff_type(frame)
        event: dict[str, Any] | None = None
        if event_type is None or event_type in parsed_types:
            event = parse_object(frame)
            if event is not None and nesting_depth_exceeds(event, MAX_EVENT_DEPTH):
                event = None
            if event_type is None and event is not None and isinstance(event.get("type"), str):
                event_type = event["type"]
        counter, known = _COUNTED[direction]
        self.traffic.add(counter, label_for(event_type, known), len(frame))
        return Message(direction, frame, event_type, event)
