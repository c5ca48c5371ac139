"""Rules for the Live API (`/v1/live/sessions`) and for Live habits on the Realtime route.

Field evidence is thin (Live launched 2026-09), so only the handshake refusal ships on: the API
refuses a Live model on /v1/realtime whatever the proxy does, and the proxy's answer names the
route to use. The others ship off; the start gate's observation runs even when its rule is off.
"""

from __future__ import annotations

import re
from typing import Any

from realtime_proxy.core.rules.model import Refuse, Rule, RuleRewrite
from realtime_proxy.core.session_state import SessionState

LIVE: frozenset[str] = frozenset({"live"})
# `gpt-live-1`, `gpt-live-1.1` and their snapshots; `gpt-live-transcribe` is a Realtime
# transcription model (https://docs.litellm.ai/docs/live_sessions) and is not matched.
_LIVE_MODEL = re.compile(r"gpt-live-\d")
LIVE_ROUTE = "/v1/live/sessions"


def is_live_model(model: str | None) -> bool:
    return model is not None and _LIVE_MODEL.match(model) is not None


def live_model_refusal(model: str) -> str:
    """The proxy's one answer to a Live model on the Realtime route (HTTP 400, invalid_model)."""
    return (
        f"The model '{model}' is a Live API model and cannot be opened on the Realtime route: connect "
        f"to {LIVE_ROUTE} (the SDK's client.live.connect()) and name the model in session.start."
    )


def _live_model_in_session_update(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    """The handshake is checked in edge.admit; a session.update naming a Live model is refused here."""
    session = event.get("session")
    model = session.get("model") if isinstance(session, dict) else None
    if isinstance(model, str) and is_live_model(model):
        raise Refuse("invalid_model", live_model_refusal(model), "session.model")


def _armed_by_the_gate(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    """The Live start gate (core.live_gate) holds the commands; session.start arms it."""


LIVE_MODEL_ON_REALTIME = Rule(
    name="live_model_on_realtime",
    description="A gpt-live-* model asked for on /v1/realtime is refused by the proxy at the handshake "
    f"(HTTP 400 invalid_model, before any upstream contact) or in session.update, naming {LIVE_ROUTE}.",
    lossless=True,  # the handshake would fail upstream anyway: only the answer's wording changes
    default_enabled=True,
    event_types=frozenset({"session.update"}),
    prevents="invalid_model (the Realtime API refuses Live models; its answer does not name the Live route)",
    apply=_live_model_in_session_update,
    routes=frozenset({"realtime", "azure"}),
    evidence="https://docs.litellm.ai/docs/live_sessions ('OpenAI rejects a Live model on /v1/realtime with "
    "invalid_model'); https://github.com/hurttlocker/o8/issues/2166 (probed 2026-09-10: the realtime "
    "endpoint rejects gpt-live-1 with invalid_model)",
)


def _function_output_to_response_item(
    event: dict[str, Any], state: SessionState, out: list[RuleRewrite]
) -> None:
    item = event.get("item")
    if not isinstance(item, dict) or item.get("type") != "function_call_output":
        return  # only tool results have a Live equivalent the proxy can name with certainty
    kept = {k: item[k] for k in ("type", "call_id", "output") if k in item}
    event["type"] = "response.item.create"
    out.append(
        RuleRewrite(
            "live_function_output_item", "type", "conversation.item.create", "response.item.create", True
        )
    )
    for field in sorted(set(event) - {"type", "event_id", "item"}):  # previous_item_id: no Live equivalent
        out.append(RuleRewrite("live_function_output_item", field, event.pop(field), None, True))
    for field in sorted(set(item) - set(kept)):  # the Realtime item's `id`, `object`, `status`
        out.append(RuleRewrite("live_function_output_item", f"item.{field}", item[field], None, True))
    event["item"] = kept


LIVE_FUNCTION_OUTPUT_ITEM = Rule(
    name="live_function_output_item",
    description="On Live, a Realtime conversation.item.create carrying a function_call_output becomes "
    "response.item.create with the same call_id and output (the Responses backend's tool result).",
    lossless=True,
    default_enabled=False,  # two reports from one project so far: off until confirmed elsewhere
    event_types=frozenset({"conversation.item.create"}),
    prevents="invalid_value: Invalid value: 'conversation.item.create'. Supported values are: "
    "'session.start', ... 'response.item.create', 'response.create', and 'session.close'. (then the "
    "next response.create fails with function_call_outputs_required)",
    apply=_function_output_to_response_item,
    routes=LIVE,
    evidence="https://github.com/MemberJunction/MJ/pull/4397 (the API's invalid_value frame, then "
    "function_call_outputs_required); https://github.com/MemberJunction/MJ/pull/4512 (the same trap); "
    "openai/types/live/response_item_create_event.py",
)

LIVE_HOLD_UNTIL_STARTED = Rule(
    name="live_hold_until_started",
    description="On Live, commands sent after session.start and before session.started are held (up to 64) "
    "and sent, in order, once session.started (or an error) arrives. Off: they are only counted "
    '(realtime_proxy_live_early_commands_total{action="would_hold"}).',
    lossless=True,
    default_enabled=False,  # the SDK's types say to wait; no field report of the failure yet
    event_types=frozenset({"session.start"}),
    prevents="the API's error for a command sent before session.started",
    apply=_armed_by_the_gate,
    routes=LIVE,
    evidence="openai/types/live/session_start_event.py ('Send this event before other commands and wait "
    "for session.started'); https://github.com/BasedHardware/omi/pull/13475 (clients wait for "
    "session.started without a bound)",
)

LIVE_RULES: tuple[Rule, ...] = (LIVE_MODEL_ON_REALTIME, LIVE_FUNCTION_OUTPUT_ITEM, LIVE_HOLD_UNTIL_STARTED)
