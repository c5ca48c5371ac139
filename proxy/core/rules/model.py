"""The value types rules produce: rewrite records, refusals, and the rule descriptor itself.

Kept apart from `engine` so rule modules can import them without a cycle (the engine imports
every rule module to build the registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.core.session_state import SessionState


@dataclass(frozen=True, slots=True)
class Rewrite:
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
class Refusal:
    """A rule decided the event must not be forwarded; the proxy answers with an `error` event."""

    rule: str
    code: str
    message: str
    param: str | None = None


class Refuse(Exception):
    """Raised by a rule to refuse the event (see `Refusal`)."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


RuleFn = Callable[[dict[str, Any], SessionState, list[Rewrite]], None]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # stable snake_case: config key [rules.<name>] and metrics label
    description: str
    lossless: bool
    default_enabled: bool
    event_types: frozenset[str]
    prevents: str  # the API error this prevents (code and/or message); "{path}": the field rewritten
    apply: RuleFn  # mutates the working copy, appends Rewrites, may raise Refuse
