"""Frames and bytes by direction and event type, as plain ints.

The hot path adds to per-direction dicts (no locks, no label lookups, no tuple per frame); the
metrics edge reads them at scrape time. One instance is shared by every session of a process.
"""

from __future__ import annotations

from enum import StrEnum

from realtime_proxy.api.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES


class TrafficDirection(StrEnum):
    """The `direction` label of the message metrics (published values)."""

    CLIENT_TO_UPSTREAM = "client_to_upstream"
    UPSTREAM_TO_CLIENT = "upstream_to_client"


DIRECTIONS = tuple(TrafficDirection)
C2U, U2C = TrafficDirection.CLIENT_TO_UPSTREAM, TrafficDirection.UPSTREAM_TO_CLIENT
_EXTRA_LABELS = ("other", "invalid", "binary")


class DirectionCounts:
    __slots__ = ("bytes", "frames")

    def __init__(self, known: frozenset[str]) -> None:
        self.frames: dict[str, int] = dict.fromkeys((*sorted(known), *_EXTRA_LABELS), 0)
        self.bytes = 0


class TrafficCounts:
    def __init__(self) -> None:
        self.by_direction = {
            C2U: DirectionCounts(CLIENT_EVENT_TYPES),
            U2C: DirectionCounts(SERVER_EVENT_TYPES),
        }

    @property
    def frames(self) -> dict[tuple[str, str], int]:
        """Frames by (direction, label): a view for scrapes and tests, not for the hot path."""
        return {(d, label): n for d, c in self.by_direction.items() for label, n in c.frames.items()}

    @property
    def bytes(self) -> dict[str, int]:
        return {d: c.bytes for d, c in self.by_direction.items()}
