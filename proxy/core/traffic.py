"""Frames and bytes by direction and event type, as plain ints.

The hot path adds to a dict (no locks, no label lookups); the metrics edge reads it at scrape time.
"""

from __future__ import annotations

from proxy.core.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES

DIRECTIONS = ("client_to_upstream", "upstream_to_client")
C2U, U2C = DIRECTIONS


class TrafficCounts:
    def __init__(self) -> None:
        self.frames: dict[tuple[str, str], int] = {}
        self.bytes: dict[str, int] = dict.fromkeys(DIRECTIONS, 0)
        for event_type in CLIENT_EVENT_TYPES | {"other", "invalid", "binary"}:
            self.frames[(C2U, event_type)] = 0
        for event_type in SERVER_EVENT_TYPES | {"other", "invalid", "binary"}:
            self.frames[(U2C, event_type)] = 0

    def add(self, direction: str, label: str, size: int) -> None:
        key = (direction, label)
        self.frames[key] = self.frames.get(key, 0) + 1
        self.bytes[direction] += size
