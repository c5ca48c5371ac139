"""What a Live session cost: Live bills per second of session, not per token.

`session.usage.updated` reports cumulative billable seconds (with an active/paused breakdown on
WebRTC); the observer prices each increase with the model's per-minute rates. Delegated Responses
tokens are billed by the Responses API at that model's token prices and are not counted here.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from realtime_proxy.observe.cost import OTHER_MODEL, model_key

LIVE_PRICES_AS_OF = "2026-11-20"
LIVE_PRICES_SOURCE = (
    "https://developers.openai.com/api/docs/models/gpt-live-1.1 ('Live session duration', per minute); "
    "https://developers.openai.com/api/docs/guides/voice-latency-cost (billed per second, not rounded)"
)


class LivePrice(BaseModel):
    """USD per minute of Live session: active (inference running), paused (WebRTC standby)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    active_per_minute: float = Field(0.0, ge=0)
    paused_per_minute: float = Field(0.0, ge=0)


# gpt-live-1 and gpt-live-1.1 are priced alike (the 1.1 model page, as of LIVE_PRICES_AS_OF).
DEFAULT_LIVE_PRICES: dict[str, dict[str, float]] = {
    "gpt-live-1": {"active_per_minute": 0.05, "paused_per_minute": 0.02},
    "gpt-live-1.1": {"active_per_minute": 0.05, "paused_per_minute": 0.02},
}


def default_live_prices() -> dict[str, LivePrice]:
    return {name: LivePrice(**price) for name, price in DEFAULT_LIVE_PRICES.items()}


class LiveCost:
    """One Live session's running cost; `label` is the bounded `model` label of its metrics."""

    def __init__(self, table: Mapping[str, LivePrice]) -> None:
        self.table = table
        self.label = OTHER_MODEL
        self.total_usd = 0.0

    def learn(self, model: str | None) -> None:
        """The session's model (session.start, then session.started): labels the next usage."""
        if model:
            self.label = model_key(model, self.table)

    def add(self, active_seconds: float, paused_seconds: float) -> float:
        price = self.table.get(self.label)
        if price is None:
            return 0.0
        cost = (active_seconds * price.active_per_minute + paused_seconds * price.paused_per_minute) / 60
        self.total_usd += cost
        return cost
