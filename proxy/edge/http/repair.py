"""The session configs of the Realtime HTTP routes through the same rule chain as `session.update`.

Pure: bytes in, bytes out. Nothing is re-serialised unless a rule changed something, so a valid
request is forwarded byte for byte; a multipart offer has only its `session` part replaced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from proxy.core.rules import ChainResult, RuleChain
from proxy.core.session_state import SessionState
from proxy.edge.http.multipart import boundary_of, named_part
from proxy.edge.http.routes import BodyKind

# Rules that would add fields a translation session does not have (its config has no `type`).
NOT_FOR_TRANSLATIONS = frozenset({"session_type_missing"})


@dataclass(frozen=True, slots=True)
class Repaired:
    body: bytes  # what to forward
    result: ChainResult | None = None  # None: no session config found, nothing was run


def translation_chain(chain: RuleChain) -> RuleChain:
    return RuleChain(
        [rule for rule in chain.rules if rule.name not in NOT_FOR_TRANSLATIONS],
        observe_only=chain.observe_only,
    )


def _run(chain: RuleChain, session: dict[str, Any]) -> ChainResult:
    return chain.apply({"type": "session.update", "session": session}, SessionState())


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def repair_body(kind: BodyKind, content_type: str, body: bytes, chain: RuleChain) -> Repaired:
    if kind is BodyKind.SECRET_REQUEST:
        request = _json_object(body)
        if request is None or not isinstance(request.get("session"), dict):
            return Repaired(body)
        result = _run(chain, request["session"])
        if not result.changed:
            return Repaired(body, result)
        return Repaired(orjson.dumps({**request, "session": result.event["session"]}), result)
    if kind is BodyKind.SESSION:
        session = _json_object(body)
        if session is None:
            return Repaired(body)
        result = _run(chain, session)
        return Repaired(orjson.dumps(result.event["session"]) if result.changed else body, result)
    if kind is BodyKind.OFFER:
        return _repair_offer(content_type, body, chain)
    return Repaired(body)


def _repair_offer(content_type: str, body: bytes, chain: RuleChain) -> Repaired:
    boundary = boundary_of(content_type)  # a bare application/sdp offer has no session to repair
    span = named_part(body, boundary, "session") if boundary else None
    if span is None:
        return Repaired(body)
    start, end = span
    session = _json_object(body[start:end])
    if session is None:
        return Repaired(body)
    result = _run(chain, session)
    if not result.changed:
        return Repaired(body, result)
    return Repaired(body[:start] + orjson.dumps(result.event["session"]) + body[end:], result)
