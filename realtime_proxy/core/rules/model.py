"""The value types rules produce: rewrite records, refusals, and the rule descriptor itself.

Kept apart from `engine` so rule modules can import them without a cycle (the engine imports
every rule module to build the registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from realtime_proxy.core.context import model_family
from realtime_proxy.core.session_state import SessionState


@dataclass(frozen=True, slots=True)
class RuleRewrite:
    """One change a rule made.

    `path` is the field touched, e.g. "response.tool_choice" ("" for the whole event).
    In-place change: `before`/`after` are the old/new values. Removal: `after` is None.
    Move/rename: `path` is the source and `after` is `{"<destination path>": value}`.
    Values are JSON-safe and small (see `brief`): never audio or large schemas."""

    rule: str
    path: str
    before: Any
    after: Any
    lossless: bool


@dataclass(frozen=True, slots=True)
class RuleRefusal:
    """A rule decided the event must not be forwarded; the proxy answers with an `error` event."""

    rule: str
    code: str
    message: str
    param: str | None = None


class Refuse(Exception):
    """Raised by a rule to refuse the event (see `RuleRefusal`)."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


RuleFn = Callable[[dict[str, Any], SessionState, list[RuleRewrite]], None]

# Scopes. Translation sessions take none of the GA conversation shapes and the Azure preview
# route speaks the beta shape: no GA-shape rule may touch them. Sideband sockets carry no
# input audio appends; the empty-commit guard is shape-independent (same events in beta).
GA_ROUTES: frozenset[str] = frozenset({"realtime", "transcription", "sideband", "azure"})
APPEND_ROUTES: frozenset[str] = frozenset({"realtime", "transcription", "azure", "azure_preview"})
REALTIME: frozenset[str] = frozenset({"realtime"})
REALTIME_OR_TRANSCRIPTION: frozenset[str] = frozenset({"realtime", "transcription"})


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # stable snake_case: config key [rules.<name>] and metrics label
    description: str
    lossless: bool
    default_enabled: bool
    event_types: frozenset[str]
    prevents: str  # the API error this prevents (code and/or message); "{path}": the field rewritten
    apply: RuleFn  # mutates the working copy, appends Rewrites, may raise Refuse
    # Where it applies: the chain skips the rule on other routes, and once the session type is
    # known (session.created, or fixed by the route) on other session types.
    routes: frozenset[str] = GA_ROUTES
    session_types: frozenset[str] = REALTIME_OR_TRANSCRIPTION
    evidence: str = ""  # where the failure was reported: public link(s) or the SDK type
    # Model families it is known to be needed for (see core.context.model_family), enforced by
    # `in_scope`; () = every model (the failure is model-independent, e.g. an SDK-type fact).
    models: tuple[str, ...] = ()

    def in_scope(self, state: SessionState, *, forced: bool = False) -> bool:
        """Where the rule's evidence applies: its routes, session types and model families.
        `forced`: the operator switched it on for this session's model (`[models.rules]`), which
        lifts the model scope only."""
        if state.context.route not in self.routes:
            return False
        kind = state.known_session_type
        if kind is not None and kind not in self.session_types:
            return False
        return forced or not self.models or self.covers(state.model)

    def covers(self, model: str | None) -> bool:
        """Whether the rule's evidence covers `model` (its family is one the rule names)."""
        family = model_family(model)
        return not self.models or (family is not None and family in self.models)
