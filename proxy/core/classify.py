"""Classification, the first step for every text frame (inlined in `SessionCore._frame`): the event
type is sniffed from the leading bytes (audio is never parsed), the frame counted, and parsed here only
when some stage declared its type or the type did not lead. An event nested deeper than any real
one is left unparsed: it goes on untouched and the API answers it (the rules never see it, so no
rule or encoder depth limit can end the session)."""

from __future__ import annotations

from typing import Any

from proxy.core.events import parse_object

MAX_EVENT_DEPTH = 64  # real Realtime events nest < 20 deep; JSON encoders give up near 255


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


def parse_declared(frame: str, sniffed: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """The event type and parse of a frame some stage declared (or whose type did not lead)."""
    event = parse_object(frame)
    if event is not None and nesting_depth_exceeds(event, MAX_EVENT_DEPTH):
        event = None
    if sniffed is None and event is not None and isinstance(event.get("type"), str):
        sniffed = event["type"]
    return sniffed, event
