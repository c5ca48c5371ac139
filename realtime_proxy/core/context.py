"""Where a session is: its route, session type and model, derived from the handshake (pure).

The Realtime API has several WebSocket routes and they do not take the same events (the Azure
preview route even speaks the beta shape): a
translation session's `session.update` has no `type` and takes only `audio.*`
(`openai/types/realtime/realtime_translation_*`), a sideband socket (`?call_id=`) carries no
input audio appends, a transcription socket (`?intent=transcription`) has no responses. Rules
declare the routes and session types they apply to and the chain skips them elsewhere.

The edge derives a `SessionContext` from the client's request target once, stores it on the
session state, and asks `upstream_target` for the request target to open upstream (model
aliases, and the transcription handshake repair: `?intent=transcription&model=X` is refused by
the API, so `model` leaves the query and goes into the session's transcription config).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import parse_qsl, urlencode


class SessionRoute(StrEnum):
    """The route class of a WebSocket session (a bounded metrics label: values are published)."""

    REALTIME = "realtime"
    TRANSCRIPTION = "transcription"
    TRANSLATION = "translation"
    SIDEBAND = "sideband"
    AZURE = "azure"
    AZURE_PREVIEW = "azure_preview"
    LIVE = "live"
    OTHER = "other"


# The routes the proxy understands: rules, turn-taking and retries may act on these only.
ROUTES: Final[tuple[SessionRoute, ...]] = (
    SessionRoute.REALTIME,
    SessionRoute.TRANSCRIPTION,
    SessionRoute.TRANSLATION,
    SessionRoute.SIDEBAND,
    SessionRoute.AZURE,
    SessionRoute.AZURE_PREVIEW,
)
# Relayed as the client asked (no alias, beta translation or handshake repair) and by no Realtime
# stage: the Live API (its own event vocabulary, no `response.done`), which runs its own observing
# core (core.live_session; rules scoped `live` act only when switched on), and every path the proxy
# has never heard of (nothing can hold, rewrite, retry or answer). Counted and logged by route.
UNTOUCHED_ROUTES: Final[tuple[SessionRoute, ...]] = (SessionRoute.LIVE, SessionRoute.OTHER)
ALL_ROUTES: Final[tuple[SessionRoute, ...]] = tuple(SessionRoute)
SESSION_TYPES: Final = ("realtime", "transcription", "translation")


@dataclass(frozen=True, slots=True)
class SessionContext:
    route: SessionRoute = SessionRoute.REALTIME
    model: str | None = None  # the model the session was opened with, after aliasing
    requested_model: str | None = None  # as the client named it (model= or Azure deployment=)
    transcription_model: str | None = None  # moved out of a transcription handshake's query

    @property
    def untouched(self) -> bool:
        """A route the proxy does not understand: relayed as is (see `UNTOUCHED_ROUTES`)."""
        return self.route in UNTOUCHED_ROUTES

    @property
    def implied_session_type(self) -> str | None:
        """The session type the route fixes, None where only session.created can tell.

        A plain /v1/realtime socket opened with an ephemeral key minted for a transcription
        session is a transcription session: the route alone does not say "realtime"."""
        if self.route == "translation":
            return "translation"
        if self.route == "transcription":
            return "transcription"
        return None


_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def model_family(model: str | None) -> str | None:
    """The family a model belongs to, for the rules' `models` scope: a dated snapshot is its family
    (`gpt-realtime-2025-08-28` -> `gpt-realtime`); every other name is its own family, so
    `gpt-realtime-2` and `gpt-realtime-mini` are NOT `gpt-realtime` (different models, different
    evidence). None (a sideband socket names no model, an Azure deployment is the operator's own
    name): no family, so no model-specific rule applies unless `[models.rules]` switches it on."""
    if model is None:
        return None
    return _SNAPSHOT.sub("", model.strip().lower())


def _split(request_target: str) -> tuple[str, list[tuple[str, str]]]:
    path, _, query = request_target.partition("?")
    return path, parse_qsl(query, keep_blank_values=True)


def route_of(path: str, query: Mapping[str, str]) -> SessionRoute:
    """The route table. Realtime sockets end in `/realtime` (any prefix: `/v1/realtime`, Azure's
    `/openai/v1/realtime` and `/openai/realtime`); the query tells sideband, transcription and Azure
    preview apart. `…/live/sessions` is the Live API; anything else is `other`."""
    trimmed = path.rstrip("/")
    if trimmed.endswith("/live/sessions") or "/live/sessions/" in trimmed:
        return SessionRoute.LIVE
    if trimmed.endswith("/realtime/translations"):
        return SessionRoute.TRANSLATION
    if not trimmed.endswith("/realtime"):
        return SessionRoute.OTHER
    if "call_id" in query:
        return SessionRoute.SIDEBAND
    if query.get("intent") == "transcription":
        return SessionRoute.TRANSCRIPTION
    if trimmed.startswith("/openai/v1/"):
        return SessionRoute.AZURE  # Azure OpenAI GA: the GA shape, ?model=<deployment>
    if trimmed.startswith("/openai/") or "deployment" in query:
        # Azure preview (/openai/realtime?api-version=...&deployment=...) speaks the beta shape:
        # GA-shape repairs would break its valid requests ("Unknown parameter: 'session.type'.",
        # https://github.com/pipecat-ai/pipecat/pull/1324).
        return SessionRoute.AZURE_PREVIEW
    return SessionRoute.REALTIME


def session_context(
    request_target: str,
    *,
    aliases: Mapping[str, str] | None = None,
    move_transcription_model: bool = False,
) -> SessionContext:
    """The context of the session a client opens with `request_target` (path and query)."""
    path, pairs = _split(request_target)
    query = dict(pairs)
    route = route_of(path, query)
    requested = query.get("model")
    # Azure deployment names are the operator's own: never aliased.
    model = (aliases or {}).get(requested, requested) if requested is not None else query.get("deployment")
    requested = requested if requested is not None else query.get("deployment")
    moved = route == "transcription" and move_transcription_model and "model" in query
    return SessionContext(
        route=route,
        model=model,
        requested_model=requested,
        transcription_model=query["model"] if moved else None,
    )


def upstream_target(request_target: str, context: SessionContext, aliases: Mapping[str, str]) -> str:
    """The request target to open upstream: the client's, with `model` aliased and, on a
    transcription socket whose model was moved into the session, without `model`.

    Unchanged (the same string) when nothing applies, so the common path stays verbatim."""
    path, pairs = _split(request_target)
    changed = False
    kept: list[tuple[str, str]] = []
    for key, value in pairs:
        if key == "model" and context.transcription_model is not None:
            changed = True
            continue
        if key == "model" and value in aliases:
            kept.append((key, aliases[value]))
            changed = True
            continue
        kept.append((key, value))
    if not changed:
        return request_target
    return f"{path}?{urlencode(kept)}" if kept else path
