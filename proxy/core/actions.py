"""What the pure core asks the relay to do, and what it reports for logs and metrics.

The core never touches sockets, clocks or loggers: it returns these values and the relay
carries them out in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Frame = str | bytes  # str = WebSocket text frame, bytes = binary frame


@dataclass(frozen=True, slots=True)
class ToUpstream:
    frame: Frame


@dataclass(frozen=True, slots=True)
class ToClient:
    frame: Frame


@dataclass(frozen=True, slots=True)
class Later:
    """Call the core's `on_timer(token, now)` after `delay` seconds (e.g. a retry backoff)."""

    delay: float
    token: str


@dataclass(frozen=True, slots=True)
class CancelTimer:
    token: str


@dataclass(frozen=True, slots=True)
class Observation:
    """Something worth a log line and/or a metric. `kind` is a short stable name
    (e.g. "rewrite", "refusal", "rule_error", "retry_attempt", "retry_outcome",
    "upstream_error", "response_done"); `fields` carries JSON-safe details (never audio or secrets)."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)


Action = ToUpstream | ToClient | Later | CancelTimer | Observation
