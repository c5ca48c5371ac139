"""Re-drive in-band responses that failed before producing anything (issue 25, item 3).

Field reports: an in-band `response.done` with status `failed`, `server_error` ("...We recommend you
retry your request."), no output and no output tokens, after turns the client asked for and turns
the server started itself on VAD (REDRIVE_EVIDENCE). Nothing changed server-side, so creating the
response again is safe. The client must never see the failed attempt: each in-band
`response.created` is held until the response's first other event (then released with it) or its
`response.done`; a retry-worthy failure is swallowed with its held `response.created`, and after a
jittered backoff the client's own `response.create` (or, for a VAD turn, a plain one) is sent again.

A client `response.create`, or a response the server starts meanwhile (the user spoke), supersedes
a pending re-drive: it is cancelled. Responses the out-of-band retrier tags are left to it. Pure:
time is `now`, randomness `rng`, the wait a StartTimer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from realtime_proxy.core.actions import (
    Action,
    CancelTimer,
    Frame,
    Observation,
    StartTimer,
    ToClient,
    ToUpstream,
)
from realtime_proxy.core.events import dump, leading_type, parse_object, sniff_string_field
from realtime_proxy.core.resumable import Core
from realtime_proxy.core.retry import METADATA_KEY
from realtime_proxy.core.retry_policy import failure_error, is_retryable_failure

REDRIVE_EVIDENCE = (
    "https://github.com/livekit/agents/issues/4617",
    "https://github.com/livekit/agents/issues/6205",
    "https://github.com/livekit/agents/pull/6454",
    "https://github.com/livekit/agents/issues/6040",
    "https://github.com/livekit/agents/issues/1972",
    "https://github.com/openai/openai-realtime-api-beta/issues/116",
    "https://github.com/openai/openai-realtime-api-beta/issues/111",
    "https://github.com/openai/openai-realtime-console/issues/493",
    "https://github.com/2FastLabs/agent-squad/issues/573",
)
TIMER = "redrive"


@dataclass(frozen=True, slots=True)
class RedrivePolicy:
    max_attempts: int = 3  # attempts in all, the failed first one included
    backoff_base: float = 0.25
    backoff_cap: float = 2.0
    evidence: tuple[str, ...] = REDRIVE_EVIDENCE


@dataclass(frozen=True, slots=True)
class ResponseRedriven(Observation):
    """A failed in-band response hidden from the client; `outcome` redriven / recovered / exhausted."""

    outcome: str
    attempt: int
    response_id: str | None
    error_type: Any
    error_code: Any
    delay: float | None = None
    server_started: bool = False  # a VAD turn: re-created with a plain response.create


class RedriveCore:
    """Wraps a core (outermost): sees server frames before it and holds what the client must not see."""

    __slots__ = ("attempt", "backoff", "held", "inner", "last_create", "policy", "rng", "source")

    def __init__(self, inner: Core, policy: RedrivePolicy, rng: random.Random) -> None:
        self.inner, self.policy, self.rng = inner, policy, rng
        self.last_create: str | None = None  # the client's in-band create most recently sent up
        self.source: str | None = None  # what re-creates the current turn (None: a VAD turn)
        self.held: tuple[str, str] | None = None  # (response id, its held response.created)
        self.attempt = 1
        self.backoff = False

    def close(self, now: float) -> list[Action]:
        return self.inner.close(now)

    # -- client ---------------------------------------------------------------------------------

    def from_client(self, frame: Frame, now: float) -> list[Action] | None:
        actions = self.inner.from_client(frame, now)
        if actions is None:  # forwarded as received (audio: one look at its leading type)
            if not (isinstance(frame, str) and _is_in_band_create(frame)):
                return None
            sent: list[Frame] = [frame]
        else:
            sent = [a.frame for a in actions if isinstance(a, ToUpstream)]
        for up in sent:
            if isinstance(up, str) and _is_in_band_create(up):
                self.last_create = up
                if self.backoff:  # the client asked again: its request supersedes ours
                    self.backoff = False
                    extra: list[Action] = [CancelTimer(TIMER), self._outcome("superseded")]
                    return [*([ToUpstream(frame)] if actions is None else actions), *extra]
        return actions

    def on_timer(self, token: str, now: float) -> list[Action]:
        if token != TIMER:
            return self.inner.on_timer(token, now)
        if not self.backoff:
            return []
        self.backoff = False
        self.attempt += 1
        frame = self.source or dump({"type": "response.create", "event_id": f"proxy_redrive_{self.attempt}"})
        return [ToUpstream(frame)]

    # -- server ---------------------------------------------------------------------------------

    def from_upstream(self, frame: Frame, now: float) -> list[Action] | None:
        kind = leading_type(frame) if isinstance(frame, str) else None
        if kind == "response.created":
            return self._created(frame, now)
        held = self.held
        if held is None or kind is None or not kind.startswith("response.") or not isinstance(frame, str):
            return self.inner.from_upstream(frame, now)
        if kind == "response.done":
            return self._done(frame, now)
        if sniff_string_field(frame, "response_id") == held[0]:  # output began: no more re-drives
            return self._release(now, "recovered") + self._pass(frame, now)
        return self.inner.from_upstream(frame, now)

    def _created(self, frame: Frame, now: float) -> list[Action] | None:
        event = parse_object(frame)
        response = event.get("response") if event else None
        if not isinstance(response, dict) or response.get("conversation_id") is None or _tagged(response):
            return self.inner.from_upstream(frame, now)
        assert isinstance(frame, str)
        actions: list[Action] = []
        if self.backoff:  # the server started a turn itself meanwhile (the user spoke): ours is moot
            self.backoff = False
            actions += [CancelTimer(TIMER), self._outcome("superseded")]
        if self.attempt == 1:  # a new turn: what would re-create it
            self.source, self.last_create = self.last_create, None
        self.held = (str(response.get("id")), frame)
        return actions

    def _done(self, frame: str, now: float) -> list[Action] | None:
        event = parse_object(frame)
        response = event.get("response") if event else None
        if not isinstance(response, dict) or self.held is None or response.get("id") != self.held[0]:
            return self.inner.from_upstream(frame, now)
        if is_retryable_failure(response) and self.attempt < self.policy.max_attempts:
            self.held, self.backoff = None, True
            ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * 2 ** (self.attempt - 1))
            delay = self.rng.uniform(0.0, ceiling)
            error_type, error_code = failure_error(response)
            vad = self.source is None
            observed = ResponseRedriven(
                "redriven", self.attempt + 1, self.held_id(response), error_type, error_code, delay, vad
            )
            return [StartTimer(delay, TIMER), observed]
        outcome = "exhausted" if response.get("status") == "failed" else "recovered"
        return self._release(now, outcome) + self._pass(frame, now)

    @staticmethod
    def held_id(response: dict[str, Any]) -> str | None:
        value = response.get("id")
        return value if isinstance(value, str) else None

    def _release(self, now: float, outcome: str) -> list[Action]:
        """Let the held response.created through; after re-drives, say how they ended."""
        held, self.held = self.held, None
        if held is None:
            return []
        attempt = self.attempt
        actions = self._pass(held[1], now)
        if attempt > 1:
            actions.append(self._outcome(outcome, held[0]))
        self.attempt = 1
        return actions

    def _pass(self, frame: str, now: float) -> list[Action]:
        actions = self.inner.from_upstream(frame, now)
        return [ToClient(frame)] if actions is None else list(actions)

    def _outcome(self, outcome: str, response_id: str | None = None) -> ResponseRedriven:
        attempt, self.attempt = self.attempt, 1
        return ResponseRedriven(outcome, attempt, response_id, None, None, None, self.source is None)


def _is_in_band_create(frame: str) -> bool:
    if leading_type(frame) != "response.create":  # audio appends leave here at once
        return False
    event = parse_object(frame)
    if event is None or event.get("type") != "response.create":
        return False
    response = event.get("response")
    return not (isinstance(response, dict) and response.get("conversation") == "none")


def _tagged(response: dict[str, Any]) -> bool:
    metadata = response.get("metadata")
    return isinstance(metadata, dict) and METADATA_KEY in metadata
