"""What a response cost, from its `response.done` usage and a price table (USD per 1M tokens).

Pure: no metrics, no logging. The observer prices each response with `response_cost` and labels
metrics with `model_label`, which keeps the `model` label bounded to the table's models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from realtime_proxy.core.tracker import token_counts

TokenRow = tuple[str, str, bool, int]  # (direction, modality, cached, tokens), as token_counts yields

PRICES_AS_OF = "2026-11-25"
PRICES_SOURCE = "https://developers.openai.com/api/docs/models (each model's page, 'Pricing')"
OTHER_MODEL = "other"


class ModelPrice(BaseModel):
    """USD per 1M tokens. A modality the model does not take costs 0 unless set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text_input: float = Field(0.0, ge=0)
    text_cached_input: float = Field(0.0, ge=0)
    text_output: float = Field(0.0, ge=0)
    audio_input: float = Field(0.0, ge=0)
    audio_cached_input: float = Field(0.0, ge=0)
    audio_output: float = Field(0.0, ge=0)
    image_input: float = Field(0.0, ge=0)
    image_cached_input: float = Field(0.0, ge=0)

    def per_million(self, direction: str, modality: str, cached: bool) -> float:
        name = f"{modality}_{'cached_' if cached else ''}{direction}"
        value = getattr(self, name, 0.0)
        return value if isinstance(value, float) else 0.0


def _price(
    text: tuple[float, float, float], audio: tuple[float, float, float], image: tuple[float, float]
) -> dict[str, float]:
    return {
        "text_input": text[0],
        "text_cached_input": text[1],
        "text_output": text[2],
        "audio_input": audio[0],
        "audio_cached_input": audio[1],
        "audio_output": audio[2],
        "image_input": image[0],
        "image_cached_input": image[1],
    }


# Public list prices as of PRICES_AS_OF, from PRICES_SOURCE: (input, cached input, output) per modality.
# gpt-realtime is priced like its successor gpt-realtime-1.5; gpt-realtime-mini like gpt-realtime-2.1-mini
# (the 2.1-mini page lists them side by side at the same input price).
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-realtime": _price((4.0, 0.4, 16.0), (32.0, 0.4, 64.0), (5.0, 0.5)),
    "gpt-realtime-1.5": _price((4.0, 0.4, 16.0), (32.0, 0.4, 64.0), (5.0, 0.5)),
    "gpt-realtime-2": _price((4.0, 0.4, 24.0), (32.0, 0.4, 64.0), (5.0, 0.5)),
    "gpt-realtime-2.1": _price((4.0, 0.4, 24.0), (32.0, 0.4, 64.0), (5.0, 0.5)),
    "gpt-realtime-mini": _price((0.6, 0.06, 2.4), (10.0, 0.3, 20.0), (0.8, 0.08)),
    "gpt-realtime-2.1-mini": _price((0.6, 0.06, 2.4), (10.0, 0.3, 20.0), (0.8, 0.08)),
    "gpt-4o-realtime-preview": _price((5.0, 2.5, 20.0), (40.0, 2.5, 80.0), (0.0, 0.0)),
    "gpt-4o-mini-realtime-preview": _price((0.6, 0.3, 2.4), (10.0, 0.3, 20.0), (0.0, 0.0)),
}


def model_key(model: str | None, table: Mapping[str, Any]) -> str:
    """The table entry a model name bills as: exact, else the longest entry the name extends with a
    dated snapshot suffix (`gpt-realtime-2025-08-28` -> `gpt-realtime`), else OTHER_MODEL."""
    if not model:
        return OTHER_MODEL
    if model in table:
        return model
    best = ""
    for name in table:
        rest = model[len(name) :]
        if model.startswith(name) and rest[:1] == "-" and rest[1:5].isdigit() and len(name) > len(best):
            best = name
    return best or OTHER_MODEL


def tokens_cost(rows: Iterable[TokenRow], price: ModelPrice) -> float:
    return (
        sum(
            count * price.per_million(direction, modality, cached)
            for direction, modality, cached, count in rows
        )
        / 1e6
    )


def response_cost(usage: Any, price: ModelPrice) -> float:
    """USD for one `response.done` usage block."""
    return tokens_cost(token_counts(usage), price)


class SessionCost:
    """One session's running cost. `label` is the bounded `model` label value for its metrics."""

    __slots__ = ("label", "price", "priced", "table", "total_usd")

    def __init__(self, model: str | None, table: Mapping[str, ModelPrice]) -> None:
        self.table = table
        self.label = model_key(model, table)
        self.price = table.get(self.label)
        self.total_usd = 0.0
        self.priced = 0  # responses priced so far

    def learn(self, model: str | None) -> None:
        """The model the server named (session.created), for a session whose handshake named none (a
        sideband `?call_id=` socket). Only before the first response: a session keeps one label."""
        if self.label == OTHER_MODEL and not self.priced and model:
            self.label = model_key(model, self.table)
            self.price = self.table.get(self.label)

    def add(self, rows: Iterable[TokenRow]) -> float:
        """Cost of one response's token rows (0 for a model without a price), added to the total."""
        cost = tokens_cost(rows, self.price) if self.price is not None else 0.0
        self.priced += 1
        self.total_usd += cost
        return cost
