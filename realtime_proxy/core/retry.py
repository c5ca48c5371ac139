"""The retry stage: re-send out-of-band responses that failed transiently, so the client sees one
good response.

A tracked `response.create` gets a correlation token in `response.metadata[METADATA_KEY]`;
the server echoes it on `response.created` / `response.done`. The created event is held back
until the response proves it is producing output (its first other event) or ends; a transient
failure that produced nothing is swallowed and the request re-sent after a backoff. The token
is stripped from everything the client sees. Pure: time comes in as `now`, randomness from `rng`.

The retrier is its stage: what it sends the client in place of a server event (a held
`response.created`, a restored `response.done`) continues through the stages after it (beta
translation), and a re-send through the client stages after it, each as a message built from
its dict. Attempt ids (`rpN_aM`) are issued by the session's ledger, which maps them back.
"""

from __future__ import annotations

import copy
import enum
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from realtime_proxy.core.actions import (
    CancelTimer,
    RetryAttempt,
    RetryOutcome,
    RuleError,
    StartTimer,
)
from realtime_proxy.core.events import dump, sniff_string_field
from realtime_proxy.core.repair import rewrite_observations
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.retry_policy import (
    RetryPolicy,
    RetryResult,
    backoff_delays,
    failure_error,
    final_outcome,
    is_retryable_failure,
    outcome_observation,
)
from realtime_proxy.core.rules.model import RuleRewrite
from realtime_proxy.core.stage import STOP, BaseStage, Forward, Lane, Message, Replace, StageAction

__all__ = [
    "METADATA_KEY",
    "SERVER_PARSED_TYPES",
    "ResponseRetrier",
    "RetryPolicy",
    "RetryResult",
    "backoff_delays",
]

METADATA_KEY = "_proxy_attempt"
METADATA_MAX_KEYS = 16
SERVER_PARSED_TYPES: frozenset[str] = frozenset({"response.created", "response.done", "error"})

# Output events the fast path may hand to `fast_server` (none of them is parsed: not SERVER_PARSED_TYPES).
FAST_OTHER = (
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "response.output_text.delta",
    "response.function_call_arguments.delta",
)

# Repairs a re-send: the request (a copy) in, the repaired request and the rule changes out.
Escalate = Callable[[dict[str, Any]], tuple[dict[str, Any], list[RuleRewrite]]]


class _Phase(enum.Enum):
    AWAITING_CREATED = "awaiting_created"  # an attempt was sent, nothing heard yet
    HELD = "held"  # response.created held back, no output yet
    STREAMING = "streaming"  # output began: the client sees everything, no more retries
    BACKOFF = "backoff"  # the last attempt failed, a re-send timer is pending


@dataclass
class _Tracked:
    token: str
    request: dict[str, Any]  # as first sent (token included), the template for re-sends
    client_event_id: str | None
    had_metadata: bool
    first_send: float
    delays: Iterator[float]
    event_id: str  # the current attempt's event_id, to attribute upstream `error`s
    attempt: int = 1
    phase: _Phase = _Phase.AWAITING_CREATED
    response_id: str | None = None
    held_created: dict[str, Any] | None = None
    last_failed_done: dict[str, Any] | None = None
    first_failure: float | None = None
    cancel_requested: bool = False


class ResponseRetrier(BaseStage):
    __slots__ = ("_by_event_id", "_by_token", "_escalate", "_held", "_policy", "_rng", "_tokens", "ledger")
    name = "retry"
    client_types = frozenset({"response.create", "response.cancel"})
    server_types = SERVER_PARSED_TYPES
    server_sees_all = True  # a held response is released by its first output event, whatever type
    server_fast = frozenset(FAST_OTHER)  # unparsed output events: on_server is `_on_other`

    def __init__(
        self,
        policy: RetryPolicy,
        rng: random.Random,
        escalate: Escalate | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.ledger = ledger or Ledger()  # names attempts; the session core adopts it as its own
        self._policy = policy
        self._rng = rng
        self._escalate = escalate
        self._tokens = 0  # tokens issued so far
        # Made with the first tracked request (None until then): three empty dicts cost ~200 B in
        # every idle session (issue 26).
        self._by_token: dict[str, _Tracked] | None = None
        self._by_event_id: dict[str, _Tracked] | None = None
        self._held: dict[str, _Tracked] | None = None  # response_id -> request whose created is held

    def escalate_with(self, escalate: Escalate) -> None:
        """Set how re-sends are repaired (the session core does, with its live state)."""
        self._escalate = escalate

    @property
    def active(self) -> bool:
        return bool(self._by_token)

    # --- the stage's hooks ---------------------------------------------------------------------

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        event = message.event
        if event is None:
            return []
        if message.type == "response.create":
            if not self.wants(event):
                return []
            untracked = self.track(event, now)
            return list(untracked) if untracked else [Replace(event)]  # tagged in place
        if message.type == "response.cancel":
            return self.on_client_cancel(event, now) or []
        return []

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        if not self._by_token:
            return []
        return self.on_server_frame(message.type, message.event, message.out(), now) or []

    def fast_server(self, frame: str, event_type: str, now: float) -> list[StageAction] | None:
        return self._on_other(event_type, frame) if self._by_token else None

    # --- client side -------------------------------------------------------------------------

    def wants(self, event: dict[str, Any]) -> bool:
        if event.get("type") != "response.create" or self._policy.max_attempts < 2:
            return False
        response = event.get("response")
        if response is not None and not isinstance(response, dict):
            return False
        conversation = response.get("conversation") if response else None
        if conversation == "none":
            return True
        return self._policy.retry_in_band and conversation in (None, "auto")

    def track(self, event: dict[str, Any], now: float) -> list[StageAction]:
        """Tag the request the core is about to send (in place) and start tracking it."""
        if not self.wants(event):
            return []
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if not isinstance(event.get("response"), dict):
            event["response"] = {}
        response = event["response"]
        metadata = response.get("metadata")
        had_metadata = isinstance(metadata, dict)
        reason = _untrackable(metadata)
        if reason is not None:
            return [outcome_observation(RetryResult.UNTRACKED, 0, 0.0, None, client_event_id, reason)]
        self._tokens += 1
        token = f"rp{self._tokens}"
        response["metadata"] = {**(metadata or {}), METADATA_KEY: token}
        if client_event_id is None:
            # Our own id lets an upstream `error` be attributed; mapped back to null for the client.
            event["event_id"] = self.ledger.issue(None, f"{token}_a1")
        state = _Tracked(
            token=token,
            request=copy.deepcopy(event),
            client_event_id=client_event_id,
            had_metadata=had_metadata,
            first_send=now,
            delays=backoff_delays(self._policy, self._rng),
            event_id=event["event_id"],
        )
        if self._by_token is None or self._by_event_id is None:
            self._by_token, self._by_event_id, self._held = {}, {}, {}
        self._by_token[token] = state
        self._by_event_id[state.event_id] = state
        return []

    def on_client_cancel(self, event: dict[str, Any], now: float) -> list[StageAction] | None:
        response_id = event.get("response_id")
        state = self._find_by_response(response_id) if isinstance(response_id, str) else None
        if state is None:
            return None
        if state.phase is _Phase.BACKOFF:
            return self._cancel_in_backoff(state, now)
        # Running upstream: let the cancel through; its `response.done` ends tracking normally.
        state.cancel_requested = True
        return None

    def on_timer(self, token: str, now: float) -> list[StageAction]:
        state = self._by_token.get(token) if self._by_token is not None else None
        if state is None or state.phase is not _Phase.BACKOFF:
            return []  # cancelled or closed meanwhile
        state.attempt += 1
        actions: list[StageAction] = []
        request = self._resend_payload(state, actions)
        by_event_id = self._by_event_id
        assert by_event_id is not None  # made with the state found above
        del by_event_id[state.event_id]
        state.event_id = request["event_id"]
        by_event_id[state.event_id] = state
        state.phase, state.response_id, state.held_created = _Phase.AWAITING_CREATED, None, None
        actions.insert(0, Forward(Message(Lane.CLIENT, dump(request), "response.create", request)))
        return actions

    def close(self, now: float) -> list[StageAction]:
        actions: list[StageAction] = []
        for state in list(self._by_token.values()) if self._by_token is not None else []:
            if state.phase is _Phase.BACKOFF:
                actions.append(CancelTimer(state.token))
            actions.append(self._end(state, RetryResult.CANCELLED, "client_closed", now))
        return actions

    # --- server side -------------------------------------------------------------------------

    def on_server_frame(
        self, event_type: str | None, event: dict[str, Any] | None, frame: str | bytes, now: float
    ) -> list[StageAction] | None:
        """What to do with a server event (None: nothing, it goes on as received)."""
        if event_type not in SERVER_PARSED_TYPES:
            return self._on_other(event_type, frame)
        if event is None:
            return None
        if event_type == "error":
            return self._on_error(event, frame, now)
        response = event.get("response")
        token = _token_of(response)
        if token is None:
            return None
        assert isinstance(response, dict)  # _token_of found our key in it
        state = self._by_token.get(token) if self._by_token is not None else None
        self._strip_token(response, state)
        if state is None:  # a token we no longer track: still never leak it
            return [Replace(event)]
        if event_type == "response.created":
            return self._on_created(state, event, response)
        return self._on_done(state, event, response, now)

    def _on_other(self, event_type: str | None, frame: str | bytes) -> list[StageAction] | None:
        # Hot path (audio deltas): only a held response's first output event matters.
        if not self._held or not isinstance(frame, str) or not (event_type or "").startswith("response."):
            return None
        response_id = sniff_string_field(frame, "response_id")
        state = self._held.pop(response_id, None) if response_id else None
        if state is None:
            return None
        state.phase = _Phase.STREAMING
        created, state.held_created = state.held_created, None
        return [_to_client(created)] if created else []  # then this output event, as received

    def _on_created(
        self, state: _Tracked, event: dict[str, Any], response: dict[str, Any]
    ) -> list[StageAction]:
        state.phase = _Phase.HELD
        state.held_created = event
        response_id = response.get("id")
        if isinstance(response_id, str):
            state.response_id = response_id
            if self._held is None:
                self._held = {}
            self._held[response_id] = state
        return [STOP]

    def _on_done(
        self, state: _Tracked, event: dict[str, Any], response: dict[str, Any], now: float
    ) -> list[StageAction]:
        if state.response_id is not None and self._held is not None:
            self._held.pop(state.response_id, None)
        if isinstance(response.get("id"), str):
            state.response_id = response["id"]
        began = state.phase is _Phase.STREAMING
        if began or not is_retryable_failure(response):
            outcome = final_outcome(response, state.attempt, state.cancel_requested, began)
            return self._release(state, event, now, *outcome)
        if state.cancel_requested:
            return self._release(state, event, now, RetryResult.CANCELLED, "client_cancelled")
        if state.first_failure is None:
            state.first_failure = now
        delay = next(state.delays, None)
        if delay is None:
            return self._release(state, event, now, RetryResult.EXHAUSTED, "max_attempts")
        if now - state.first_send + delay > self._policy.deadline:
            return self._release(state, event, now, RetryResult.EXHAUSTED, "deadline")
        state.phase, state.last_failed_done = _Phase.BACKOFF, event
        error_type, error_code = failure_error(response)
        attempt = RetryAttempt(
            state.attempt + 1, delay, state.response_id, error_type, error_code, state.client_event_id
        )
        return [STOP, StartTimer(delay, state.token), attempt]

    def _on_error(self, event: dict[str, Any], frame: str | bytes, now: float) -> list[StageAction] | None:
        error = event.get("error")
        event_id = error.get("event_id") if isinstance(error, dict) else None
        by_event_id = self._by_event_id
        state = by_event_id.get(event_id) if by_event_id is not None and isinstance(event_id, str) else None
        if state is None or state.phase is not _Phase.AWAITING_CREATED:
            return None
        assert isinstance(error, dict)
        code, error_type = error.get("code"), error.get("type")
        reason = code if isinstance(code, str) else error_type if isinstance(error_type, str) else None
        return [self._end(state, RetryResult.NOT_RETRYABLE, reason, now)]  # the error goes on to the client

    # --- helpers -------------------------------------------------------------------------------

    def _resend_payload(self, state: _Tracked, actions: list[StageAction]) -> dict[str, Any]:
        request = copy.deepcopy(state.request)
        if self._escalate is not None:
            try:
                request, rewrites = self._escalate(request)
                if not isinstance(request, dict):
                    raise TypeError(f"escalate returned {type(request).__name__}")
                actions.extend(
                    rewrite_observations(
                        rewrites,
                        state.client_event_id,
                        "response.create",
                        applied=True,
                        via="retry_escalation",
                    )
                )
            except Exception as exc:  # a rule bug must not stop the retry itself
                request = copy.deepcopy(state.request)
                actions.append(
                    RuleError(state.client_event_id, "response.create", "retry_escalate", repr(exc))
                )
        # Correlation must survive whatever the escalation did to the request.
        response = request.setdefault("response", {})
        response["metadata"] = copy.deepcopy(state.request["response"]["metadata"])
        client_id = self.ledger.client_id_for(state.client_event_id)
        request["event_id"] = self.ledger.issue(client_id, f"{state.token}_a{state.attempt}")
        return request

    def _cancel_in_backoff(self, state: _Tracked, now: float) -> list[StageAction]:
        """Nothing runs upstream: answer the cancel the way the server would have."""
        actions: list[StageAction] = [STOP, CancelTimer(state.token)]
        if state.held_created is not None:
            actions.append(_to_client(state.held_created))
        assert state.last_failed_done is not None  # set whenever BACKOFF is entered
        done = copy.deepcopy(state.last_failed_done)
        done["response"]["status"] = "cancelled"
        done["response"]["status_details"] = {"type": "cancelled", "reason": "client_cancelled"}
        actions.append(_to_client(done))
        actions.append(self._end(state, RetryResult.CANCELLED, "client_cancelled", now))
        return actions

    def _release(
        self, state: _Tracked, done: dict[str, Any], now: float, outcome: RetryResult, reason: str | None
    ) -> list[StageAction]:
        """The response ends as the server ended it: its held created first, then this done."""
        actions: list[StageAction] = []
        if state.held_created is not None:
            actions.append(_to_client(state.held_created))
        actions.append(Replace(done))  # the token stripped
        actions.append(self._end(state, outcome, reason, now))
        return actions

    def _end(self, state: _Tracked, outcome: RetryResult, reason: str | None, now: float) -> RetryOutcome:
        """Forget the request; every tracked request ends in exactly one outcome."""
        if self._by_token is not None:
            self._by_token.pop(state.token, None)
        if self._by_event_id is not None:
            self._by_event_id.pop(state.event_id, None)
        if state.response_id is not None and self._held is not None:
            self._held.pop(state.response_id, None)
        added = now - state.first_failure if state.first_failure is not None else 0.0
        return outcome_observation(
            outcome, state.attempt, added, state.response_id, state.client_event_id, reason
        )

    def _find_by_response(self, response_id: str) -> _Tracked | None:
        if self._by_token is None:
            return None
        return next((s for s in self._by_token.values() if s.response_id == response_id), None)

    @staticmethod
    def _strip_token(response: dict[str, Any], state: _Tracked | None) -> None:
        metadata = dict(response["metadata"])
        del metadata[METADATA_KEY]
        had_metadata = state.had_metadata if state is not None else bool(metadata)
        response["metadata"] = metadata if had_metadata else None


def _to_client(event: dict[str, Any]) -> Forward:
    """A server event the retrier sends in place of one it held: on through the later stages."""
    return Forward(Message(Lane.SERVER, dump(event), event.get("type"), event))


def _untrackable(metadata: Any) -> str | None:
    """Why our key cannot be added without changing what the client asked for, if it can't."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return "metadata_invalid"  # the server will refuse it; leave that error intact
    if METADATA_KEY in metadata:
        return "metadata_key_in_use"
    return "metadata_full" if len(metadata) >= METADATA_MAX_KEYS else None


def _token_of(response: Any) -> str | None:
    metadata = response.get("metadata") if isinstance(response, dict) else None
    token = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return token if isinstance(token, str) else None
