"""The pure per-session core: every frame in, the actions to take out.

Synchronous and socket-free. The relay calls `from_client` / `from_upstream` for each frame
and `on_timer` when a `Later` fires; `None` means "forward the frame unchanged", which is the
hot path for audio: such frames are classified by a regex on their first bytes and never parsed.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.core import compat
from proxy.core.actions import Action, Frame, Observation, ToClient, ToUpstream
from proxy.core.events import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    dump,
    label_for,
    parse_object,
    sniff_type,
)
from proxy.core.retry import SERVER_PARSED_TYPES as RETRY_PARSED_TYPES
from proxy.core.retry import ResponseRetrier
from proxy.core.rules import RuleChain
from proxy.core.session_state import SessionState
from proxy.core.tracker import FIRST_DELTA_MODALITY, ResponseTracker
from proxy.core.traffic import C2U, U2C, TrafficCounts

_OWN_EVENT_PREFIX = "proxy_evt_"
_ATTRIBUTION_MEMORY = 256


@dataclass(frozen=True, slots=True)
class CoreOptions:
    beta_client: bool = False  # translate this client's beta shapes both ways
    queue_in_band: bool = False  # hold a second in-band response.create until the first is done
    log_event_types: bool = False  # one debug observation per frame (type and size only)


def refusal_event(event_id: str, client_event_id: Any, code: str, message: str, param: str | None) -> str:
    """The error event the API itself would send for a refused client event."""
    return dump(
        {
            "type": "error",
            "event_id": event_id,
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
                "event_id": client_event_id if isinstance(client_event_id, str) else None,
            },
        }
    )


class SessionCore:
    def __init__(
        self,
        chain: RuleChain,
        *,
        retrier: ResponseRetrier | None = None,
        options: CoreOptions | None = None,
        traffic: TrafficCounts | None = None,
    ) -> None:
        self.options = options or CoreOptions()
        self.chain = chain
        self.retrier = retrier
        self.state = SessionState()
        self.tracker = ResponseTracker()
        self.traffic = traffic or TrafficCounts()
        beta = self.options.beta_client
        self._client_parsed = (
            chain.event_types
            | SessionState.CLIENT_PARSED_TYPES
            | {"response.create", "response.cancel"}
            | (compat.CLIENT_TYPES if beta else frozenset())
        )
        self._server_parsed = (
            SessionState.SERVER_PARSED_TYPES
            | RETRY_PARSED_TYPES
            | {"response.created", "response.done", "error", "rate_limits.updated"}
            | (compat.SERVER_BODY_TYPES if beta else frozenset())
        )
        self._to_beta: Callable[[str | None, str], str | None] | None = (
            compat.server_frame_to_beta if beta else None
        )
        self._ids = itertools.count(1)
        # client event id -> rules that touched it, to attribute upstream errors (bounded).
        self._touched: OrderedDict[str, list[str]] = OrderedDict()
        self._in_band_busy: str | None = None  # event id of the in-band create in flight (queue mode)
        self._queued_creates: list[str] = []

    # -- client -> upstream -------------------------------------------------------------------

    def _classify(self, frame: str, direction: str, known: frozenset[str]) -> tuple[str | None, Any]:
        """The frame's event type (sniffed; parsed only when it does not lead) and the parse, if any.
        Counts the frame for metrics."""
        event_type = sniff_type(frame)
        event: dict[str, Any] | None = None
        if event_type is None:
            event = parse_object(frame)
            event_type = _type_of(event)
        self.traffic.add(direction, label_for(event_type, known), len(frame))
        return event_type, event

    def from_client(self, frame: Frame, now: float) -> list[Action] | None:
        if isinstance(frame, bytes):  # the API speaks JSON text; binary passes untouched
            self.traffic.add(C2U, "binary", len(frame))
            return None
        event_type, event = self._classify(frame, C2U, CLIENT_EVENT_TYPES)
        debug = self._debug(C2U, event_type, frame)
        if event_type not in self._client_parsed:
            self.state.observe_client(event_type, None, frame)
            return debug
        if event is None:
            event = parse_object(frame)
        if event is None:  # not a JSON object: forward untouched, the API answers it
            return debug
        actions = debug or []
        actions.extend(self._client_event(event_type, event, frame, now))
        return actions

    def _client_event(
        self, event_type: str | None, event: dict[str, Any], frame: str, now: float
    ) -> list[Action]:
        actions: list[Action] = []
        changed = False
        client_event_id = event.get("event_id")
        if self.options.beta_client and event_type in compat.CLIENT_TYPES:
            for translation in compat.client_event_to_ga(event):
                actions.append(
                    Observation(
                        "compat",
                        {
                            "direction": translation.direction,
                            "before": translation.before,
                            "after": translation.after,
                        },
                    )
                )
                changed = True
            event_type = _type_of(event)
        result = self.chain.apply(event, self.state)
        context = {"client_event_id": client_event_id, "event_type": event_type}
        for rule, error in result.failures:
            actions.append(Observation("rule_error", {**context, "rule": rule, "error": error}))
        if result.refusal is not None:
            refusal = result.refusal
            actions.append(
                Observation(
                    "refusal",
                    {
                        **context,
                        "rule": refusal.rule,
                        "code": refusal.code,
                        "message": refusal.message,
                        "applied": not self.chain.observe_only,
                    },
                )
            )
            if not self.chain.observe_only:
                own_id = f"{_OWN_EVENT_PREFIX}{next(self._ids)}"
                actions.append(
                    ToClient(
                        refusal_event(own_id, client_event_id, refusal.code, refusal.message, refusal.param)
                    )
                )
                return actions
        if result.changed:
            event, changed = result.event, True
            if not isinstance(client_event_id, str):
                # Give the event an id so an upstream error can be attributed (removed again from errors),
                # before the rewrite lines are written: one id for the event on every line.
                client_event_id = event["event_id"] = f"{_OWN_EVENT_PREFIX}{next(self._ids)}"
                context["client_event_id"] = client_event_id
        for rewrite in result.rewrites:
            actions.append(
                Observation(
                    "rewrite",
                    {
                        **context,
                        "rule": rewrite.rule,
                        "path": rewrite.path,
                        "before": rewrite.before,
                        "after": rewrite.after,
                        "lossless": rewrite.lossless,
                        "applied": not self.chain.observe_only,
                    },
                )
            )
        if (result.rewrites or result.failures) and isinstance(client_event_id, str):
            self._remember(client_event_id, [r.rule for r in result.rewrites])
        if event_type == "response.create":
            queued, changed = self._response_create(event, changed, now, actions)
            if queued:
                return actions
        elif event_type == "response.cancel" and self.retrier is not None:
            decided = self.retrier.on_client_cancel(event, now)
            if decided is not None:
                actions.extend(decided)
                return actions
        out = dump(event) if changed else frame
        self.state.observe_client(event_type, event, out)
        actions.append(ToUpstream(out))
        return actions

    def _response_create(
        self, event: dict[str, Any], changed: bool, now: float, actions: list[Action]
    ) -> tuple[bool, bool]:
        """Retry tracking, response timing and optional in-band queueing. Returns (queued, changed)."""
        if self.retrier is not None and self.retrier.wants(event):
            actions.extend(self.retrier.track(event, now))
            changed = True
        in_band = _in_band(event)
        if self.options.queue_in_band and in_band:
            if not isinstance(event.get("event_id"), str):
                event["event_id"] = f"{_OWN_EVENT_PREFIX}{next(self._ids)}"
                changed = True
            if self._in_band_busy is not None:
                self._queued_creates.append(dump(event))
                actions.append(
                    Observation(
                        "queued", {"client_event_id": event["event_id"], "queued": len(self._queued_creates)}
                    )
                )
                return True, changed
            self._in_band_busy = event["event_id"]
        self.tracker.on_client_create(event.get("event_id"), now)
        return False, changed

    def _remember(self, client_event_id: str, rules: list[str]) -> None:
        self._touched[client_event_id] = rules
        while len(self._touched) > _ATTRIBUTION_MEMORY:
            self._touched.popitem(last=False)

    # -- upstream -> client -------------------------------------------------------------------

    def from_upstream(self, frame: Frame, now: float) -> list[Action] | None:
        if isinstance(frame, bytes):
            self.traffic.add(U2C, "binary", len(frame))
            return None
        event_type, event = self._classify(frame, U2C, SERVER_EVENT_TYPES)
        actions = self._debug(U2C, event_type, frame)
        if event_type in self._server_parsed and event is None:
            event = parse_object(frame)
        if self.tracker.awaiting_delta and event_type in FIRST_DELTA_MODALITY:
            first = self.tracker.on_delta(event_type, frame, now)
            if first is not None:
                actions = [*(actions or []), first]
        if event is not None:
            frame, noted = self._server_event(event_type, event, frame, now)
            if noted:
                actions = [*(actions or []), *noted]
        self.state.observe_server(event_type, event, frame)
        if self.retrier is not None and self.retrier.active:
            decided = self.retrier.on_server_frame(event_type, event, frame, now)
            if decided is not None:
                return [*(actions or []), *self._for_client(decided)]
        if self._to_beta is not None:
            translated = self._to_beta(event_type, frame)
            if translated is not None:
                return [*(actions or []), *((ToClient(translated),) if translated != compat.DROP else ())]
        if actions is None and event is None:
            return None
        return [*(actions or []), ToClient(frame)]

    def _server_event(
        self, event_type: str | None, event: dict[str, Any], frame: str, now: float
    ) -> tuple[str, list[Action]]:
        noted: list[Action] = []
        if event_type == "response.created":
            response = event.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.tracker.on_created(response["id"], now)
        elif event_type == "response.done":
            done = self.tracker.on_done(event, now)
            noted.append(done)
            if self.options.queue_in_band and not done.fields["out_of_band"]:
                noted.extend(self._release_queued(now))
        elif event_type == "rate_limits.updated":
            noted.append(Observation("rate_limits", {"rate_limits": event.get("rate_limits")}))
        elif event_type == "error":
            frame, error_noted = self._upstream_error(event, frame, now)
            noted.extend(error_noted)
        return frame, noted

    def _upstream_error(self, event: dict[str, Any], frame: str, now: float) -> tuple[str, list[Action]]:
        error = event.get("error")
        error = error if isinstance(error, dict) else {}
        client_event_id = error.get("event_id")
        rules = self._touched.get(client_event_id) if isinstance(client_event_id, str) else None
        noted: list[Action] = [
            Observation(
                "upstream_error",
                {
                    "error_type": error.get("type"),
                    "code": error.get("code"),
                    "message": error.get("message"),
                    "param": error.get("param"),
                    "client_event_id": client_event_id,
                    "rules": rules,
                },
            )
        ]
        if isinstance(client_event_id, str):
            self.tracker.on_client_create_rejected(client_event_id)
            if client_event_id == self._in_band_busy:
                noted.extend(self._release_queued(now))
            if client_event_id.startswith(_OWN_EVENT_PREFIX):
                error["event_id"] = None  # the client never sent an id: it sees none
                frame = dump(event)
        return frame, noted

    def _release_queued(self, now: float) -> list[Action]:
        self._in_band_busy = None
        if not self._queued_creates:
            return []
        frame = self._queued_creates.pop(0)
        event = parse_object(frame) or {}
        self._in_band_busy = event.get("event_id")
        self.tracker.on_client_create(self._in_band_busy, now)
        return [Observation("dequeued", {"client_event_id": self._in_band_busy}), ToUpstream(frame)]

    def _for_client(self, actions: list[Action]) -> list[Action]:
        if self._to_beta is None:
            return actions
        out: list[Action] = []
        for action in actions:
            if isinstance(action, ToClient) and isinstance(action.frame, str):
                translated = self._to_beta(sniff_type(action.frame), action.frame)
                if translated == compat.DROP:
                    continue
                action = ToClient(translated) if translated is not None else action
            out.append(action)
        return out

    # -- timers and close ---------------------------------------------------------------------

    def on_timer(self, token: str, now: float) -> list[Action]:
        return self.retrier.on_timer(token, now) if self.retrier is not None else []

    def close(self, now: float) -> list[Action]:
        return self.retrier.close(now) if self.retrier is not None else []

    def _debug(self, direction: str, event_type: str | None, frame: str) -> list[Action] | None:
        if not self.options.log_event_types:
            return None
        return [Observation("event", {"direction": direction, "event_type": event_type, "bytes": len(frame)})]


def _type_of(event: dict[str, Any] | None) -> str | None:
    value = event.get("type") if event is not None else None
    return value if isinstance(value, str) else None


def _in_band(event: dict[str, Any]) -> bool:
    response = event.get("response")
    return not (isinstance(response, dict) and response.get("conversation") == "none")
