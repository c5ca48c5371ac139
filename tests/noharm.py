"""The do-no-harm harness: one valid client event through the real core (shipped defaults) of a session
on a given route and model, and a verdict on what the proxy did with it.

Shared by the property test (tests/unit/test_do_no_harm.py) and the differential run
(scripts/differential.py). It judges the proxy from the OUTSIDE: a rule's evidence is read from its
metadata (`routes`, `session_types`, `models`) by this module's own family logic, not by the engine's."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from realtime_proxy.api import validation
from realtime_proxy.api.errors import ApiError
from realtime_proxy.core.actions import Refusal, Rewrite, ToClient, ToUpstream
from realtime_proxy.core.rules import rule_by_name
from realtime_proxy.edge.session_builder import PendingSession, SessionBuilder
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.settings import Settings

MODELS: tuple[str | None, ...] = (
    "gpt-realtime",
    "gpt-realtime-2025-08-28",
    "gpt-realtime-2",
    "gpt-realtime-mini",
    "gpt-realtime-1.5",
    "gpt-realtime-2.1",
    None,  # a sideband socket, or a client that names none
)
# route -> request target ({m}: the model); the first six are the routes the proxy understands.
TARGETS: dict[str, str] = {
    "realtime": "/v1/realtime?model={m}",
    "transcription": "/v1/realtime?intent=transcription",
    "translation": "/v1/realtime/translations?model=gpt-realtime-translate",
    "sideband": "/v1/realtime?call_id=rtc_1",
    "azure": "/openai/v1/realtime?model={m}",
    "azure_preview": "/openai/realtime?api-version=2025-04-01-preview&deployment={m}",
    "live": "/v1/live/sessions",
    "other": "/v1/chat/stream?model={m}",
}
UNTOUCHED = ("live", "other")
SESSION_TYPE = {"transcription": "transcription", "translation": "translation"}
TOOL = {"type": "function", "name": "lookup", "description": "Look up", "parameters": {"type": "object"}}
_BUILDER = SessionBuilder(Settings(), Metrics(), random.Random(0))
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def target(route: str, model: str | None) -> str:
    path = TARGETS[route]
    if model is None or route in ("transcription", "translation", "sideband", "live"):
        return path.replace("?model={m}", "").replace("&deployment={m}", "").replace("{m}", "")
    return path.replace("{m}", model)


def family(model: str | None) -> str | None:
    return None if model is None else _SNAPSHOT.sub("", model.lower())


def evidence_covers(rule_name: str, route: str, model: str | None) -> bool:
    """Whether a rule's recorded evidence covers this route and model (its metadata, read here)."""
    rule = rule_by_name(rule_name)
    models = getattr(rule, "models", ())
    return route in rule.routes and (not models or family(model) in models)


@dataclass
class Verdict:
    outcome: str  # "unchanged" | "changed" | "tagged" | "refused" | "held"
    rules: list[str] = field(default_factory=list)  # rules that changed or refused it
    harmful: str | None = None  # why, when it is


class Session:
    """A core on `route` for `model`, primed as the API would prime it (session.created)."""

    def __init__(self, route: str, model: str | None) -> None:
        self.route, self.model = route, model
        request = target(route, model)
        context = _BUILDER.chain.session_context(request, {})
        query = dict(p.split("=", 1) for p in request.partition("?")[2].split("&") if "=" in p)
        pending = PendingSession(False, "s", 0.0, "t", model, request.partition("?")[0], context, query)
        self.core = _BUILDER.build_core(pending)
        self.now = 0.0
        if route != "sideband":  # a sideband socket joins a session already configured elsewhere
            kind = SESSION_TYPE.get(route, "realtime")
            pcm = {"type": "audio/pcm", "rate": 24000}
            session = {"type": kind, "id": "sess_1", "object": "realtime.session", "tools": [TOOL]}
            session["audio"] = {"input": {"format": pcm}, "output": {"format": pcm, "voice": "marin"}}
            if model is not None:
                session["model"] = model
            self.server({"type": "session.created", "event_id": "e0", "session": session})

    def server(self, event: dict[str, Any]) -> list[Any] | None:
        self.now += 0.01
        return self.core.from_upstream(orjson.dumps(event).decode(), self.now)

    def client(self, frame: str) -> list[Any] | None:
        self.now += 0.01
        return self.core.from_client(frame, self.now)


def odd_frame(event: dict[str, Any]) -> str:
    """Spacing no serialiser produces: any re-encoding by the proxy shows."""
    return json.dumps(event, separators=(" ,", " : "), ensure_ascii=False)


def judge(session: Session, event: dict[str, Any]) -> Verdict:
    frame = odd_frame(event)
    actions = session.client(frame)
    if actions is None:  # the core's fast path: forwarded as received
        return Verdict("unchanged")
    sent = [a.frame for a in actions if isinstance(a, ToUpstream)]
    answered = [a for a in actions if isinstance(a, ToClient)]
    rewrites = [a.rule for a in actions if isinstance(a, Rewrite) and a.applied]
    refusals = [a.rule for a in actions if isinstance(a, Refusal) and a.applied]
    if sent == [frame]:
        return Verdict("unchanged")
    if not sent:
        if answered or refusals:
            return _refused(session, event, refusals)
        return Verdict("held", harmful="held on an untouched route" if session.route in UNTOUCHED else None)
    after = orjson.loads(sent[0])
    if not rewrites:
        return _tagged(session, event, after)
    return _changed(session, event, after, rewrites)


def _refused(session: Session, event: dict[str, Any], rules: list[str]) -> Verdict:
    if session.route in UNTOUCHED:
        return Verdict("refused", rules, "answered on an untouched route")
    unproven = [r for r in rules if not evidence_covers(r, session.route, session.model)]
    if unproven:
        return Verdict("refused", rules, f"refused without evidence for this model/route: {unproven}")
    if api_accepts(event, session) is True and not _stateful(rules):
        return Verdict("refused", rules, "refused although the API accepts it")
    return Verdict("refused", rules)


def _stateful(rules: list[str]) -> bool:
    return any(r in ("empty_commit", "truncate_past_audio") for r in rules)


def _tagged(session: Session, event: dict[str, Any], after: dict[str, Any]) -> Verdict:
    """Changed with no rule named: the retry tag or an attribution id (by design, undone on the way
    back) is fine; any other difference, or any byte changed for an untagged event, is not."""
    if session.route in UNTOUCHED:
        return Verdict("tagged", harmful="changed on an untouched route")
    before = json.loads(json.dumps(event))
    if after == before:
        return Verdict("tagged", harmful="re-serialised although nothing changed")
    stripped = json.loads(json.dumps(after))
    response = stripped.get("response")
    if isinstance(response, dict) and isinstance(response.get("metadata"), dict):
        response["metadata"].pop("_proxy_attempt", None)
        if not response["metadata"]:  # the tag went into an absent or null metadata
            if _has_metadata(before):
                response["metadata"] = before["response"]["metadata"]
            else:
                response.pop("metadata")
        if not response and "response" not in before:
            stripped.pop("response")
    if "event_id" not in before:
        stripped.pop("event_id", None)
    if stripped == before:
        return Verdict("tagged")
    return Verdict("tagged", harmful="changed with no rule to answer for it")


def _has_metadata(event: dict[str, Any]) -> bool:
    response = event.get("response")
    return isinstance(response, dict) and "metadata" in response


def _changed(session: Session, event: dict[str, Any], after: dict[str, Any], rules: list[str]) -> Verdict:
    if session.route in UNTOUCHED:
        return Verdict("changed", rules, "rewritten on an untouched route")
    unproven = [r for r in rules if not evidence_covers(r, session.route, session.model)]
    if unproven:
        return Verdict("changed", rules, f"changed without evidence for this model/route: {unproven}")
    lossy = [r for r in rules if not rule_by_name(r).lossless]
    if lossy and api_accepts(event, session) is True and not _stateful(rules):
        return Verdict("changed", rules, f"a valid request changed in meaning by {lossy}")
    return Verdict("changed", rules)


def api_accepts(event: dict[str, Any], session: Session) -> bool | None:
    """What the simulator's validator (the API's refusals the project has evidence for) says of the
    original event; None when it cannot tell without session state."""
    kind = event.get("type")
    try:
        if kind == "session.update" and session.route != "translation":
            current = SESSION_TYPE.get(session.route, "realtime")
            validation.check_session_update(json.loads(json.dumps(event.get("session"))), current)
        elif kind == "response.create":
            validation.check_response_create(json.loads(json.dumps(event.get("response"))))
        elif kind == "conversation.item.create":
            validation.check_item(json.loads(json.dumps(event.get("item"))), "item")
        else:
            return None
    except ApiError:
        return False
    return True
