"""Which close code and reason one side gets when the other side's connection ends. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from websockets.frames import Close


class Side(StrEnum):
    """A connection of a session: `closed_by` values and the close-code metrics' `side` label."""

    CLIENT = "client"
    UPSTREAM = "upstream"


class SessionOutcome(StrEnum):
    """How a session ended: the `outcome` label of `realtime_proxy_sessions_total` (published values).

    `<side>_closed`/`<side>_lost` come from `outcome_of`; the rest from the relay's own stops."""

    CLIENT_CLOSED = "client_closed"
    UPSTREAM_CLOSED = "upstream_closed"
    CLIENT_LOST = "client_lost"
    UPSTREAM_LOST = "upstream_lost"
    SHUTDOWN = "shutdown"
    IDLE_TIMEOUT = "idle_timeout"
    MAX_DURATION = "max_duration"
    RATE_LIMITED = "rate_limited"
    PROTOCOL_ERROR = "protocol_error"
    ERROR = "error"


# RFC 6455 §7.4: 1004, 1005, 1006 and 1015 must never be sent in a Close frame.
_UNSENDABLE = frozenset({1004, 1005, 1006, 1015})
MAX_REASON_BYTES = 123


def sendable(code: int) -> bool:
    return code not in _UNSENDABLE and (1000 <= code <= 1014 or 3000 <= code <= 4999)


def clip_reason(reason: str) -> str:
    encoded = reason.encode()
    if len(encoded) <= MAX_REASON_BYTES:
        return reason
    return encoded[:MAX_REASON_BYTES].decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class LegClosed:
    """How a leg ended: the Close frames seen on it (None when the TCP connection just went)."""

    side: Side
    received: Close | None
    sent: Close | None

    @property
    def lost(self) -> bool:
        return self.received is None and self.sent is None

    @property
    def code(self) -> int | None:
        frame = self.received or self.sent
        return frame.code if frame else None


# Close codes the proxy itself sends, by cause (RFC 6455 §7.4.1 and the IANA registry). The
# `openai` SDK reconnects (`on_reconnecting`) on 1001, 1005, 1006, 1011, 1012, 1013 and 1015 only
# (`openai/types/websocket_reconnection.py`), so every upstream failure maps into that set.
UPSTREAM_LOST = (1011, "upstream connection lost")  # the upstream vanished (TCP gone, 1006, 1015)
UPSTREAM_UNAVAILABLE = (1013, "upstream unavailable, try again later")  # resumption refused/unreachable
UPSTREAM_RESTARTING = (1012, "upstream session could not be resumed")  # resumption replay failed


def close_for_peer(ended: LegClosed) -> tuple[int | None, str]:
    """Mirror the code and reason. A Close without a code stays without one (None: an empty Close
    frame, which the peer sees as 1005). Codes that may not be sent become 1011: for the upstream
    that is "internal error" at the gateway, which clients treat as recoverable (1014, "bad
    gateway", is not in the SDKs' reconnect set)."""
    frame = ended.received or ended.sent
    if frame is None:
        if ended.side == Side.UPSTREAM:
            return UPSTREAM_LOST
        return 1001, "client connection lost"
    if frame.code == 1005:  # a Close frame without a code: pass it on code-less
        return None, ""
    if not sendable(frame.code):
        return 1011, clip_reason(frame.reason or f"{ended.side} closed with {frame.code}")
    return frame.code, clip_reason(frame.reason)


# Codes websockets sends itself when a peer breaks the protocol (bad frame, bad UTF-8, too big).
_PROTOCOL_ERRORS = frozenset({1002, 1007, 1009})


def outcome_of(ended: LegClosed) -> SessionOutcome:
    """Session outcome for the side whose connection ended first."""
    if ended.sent is not None and ended.sent.code in _PROTOCOL_ERRORS:
        return SessionOutcome.PROTOCOL_ERROR
    if ended.received is not None:
        return SessionOutcome(f"{ended.side}_closed")
    return SessionOutcome(f"{ended.side}_lost")
