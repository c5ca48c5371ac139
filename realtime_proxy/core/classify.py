"""Classification, the first step for every text frame (inlined in `SessionCore._frame`): the event
type is sniffed from the leading bytes (audio is never parsed), the frame counted, and parsed here only
when some stage declared its type or the type did not lead. An event nested deeper than any real
one is left unparsed: it goes on untouched and the API answers it (the rules never see it, so no
rule or encoder depth limit can end the session)."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.events import MAX_REPAIR_DEPTH, parse_guarded

# Real Realtime events nest < 20 deep; the rules recurse and orjson refuses to serialise past 254 levels.
MAX_EVENT_DEPTH = MAX_REPAIR_DEPTH


def parse_declared(frame: str, sniffed: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """The event type and parse of a frame some stage declared (or whose type did not lead).
    Too deep a frame is not parsed at all (checked on the raw text: free for ordinary events)."""
    event = parse_guarded(frame, MAX_EVENT_DEPTH)
    if sniffed is None and event is not None and isinstance(event.get("type"), str):
        sniffed = event["type"]
    return sniffed, event
