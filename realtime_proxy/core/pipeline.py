"""The pipeline's mechanics: a frame through the stages of its direction, in order.

A stage sees a frame only if it declared the frame's type (parsed) or asked to see it; a frame no
stage wants is forwarded as received with no action built (`None`: the hot path for audio). A
stage that ends a message (refused, held, absorbed) stops it; `Forward(message)` lets a held one
go on through the stages after the one that held it. Timers go back to the stage that started them.
Which stages, in which order, is `SessionCore`'s business (realtime_proxy.core.session).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from realtime_proxy.api.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES
from realtime_proxy.core.actions import Action, FrameSeen, StartTimer, ToClient, ToUpstream
from realtime_proxy.core.classify import parse_declared
from realtime_proxy.core.events import LAST, label_for, leading_type, parse_object, sniff_type
from realtime_proxy.core.responses import SERVER_TYPES as LEDGER_SERVER_TYPES
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.stage import (
    Forward,
    Lane,
    Message,
    Replace,
    ReplaceFrame,
    Stage,
    StageAction,
    Stop,
)
from realtime_proxy.core.traffic import C2U, U2C, DirectionCounts, TrafficCounts

_AT_EXIT = frozenset({"response.create", "error"})  # what the lane's exit looks at (see _exit)
_SHARED_TYPE_SETS: dict[frozenset[str], frozenset[str]] = {}
# The bulk of the traffic, recognised by its first bytes (compact, or spaced as Python's json.dumps
# writes it): the type is then what sniff_type / leading_type would say, without their calls.
HOT_TYPES = {Lane.CLIENT: "input_audio_buffer.append", Lane.SERVER: "response.output_audio.delta"}
_HOT_PREFIXES = {lane: (f'{{"type":"{hot}"', f'{{"type": "{hot}"') for lane, hot in HOT_TYPES.items()}

Hook = Callable[[Message, float], list[StageAction]]
Dispatch = tuple[tuple[Stage, Hook], ...]
FastHook = Callable[[str, str, float], list[StageAction] | None]


class _Fast:
    """The fast route of one event type in one lane: the type is never parsed, no stage on its route
    reads more than the raw frame, and each has a `fast_*` hook equivalent to its full one. Frames go
    through those hooks with no Message or action list built until some hook answers."""

    __slots__ = ("full", "label", "steps", "type")

    def __init__(self, event_type: str, label: str, steps: tuple[FastHook, ...], full: Dispatch) -> None:
        self.type, self.label, self.steps, self.full = event_type, label, steps, full


@dataclass(slots=True)
class _Lane:
    """One direction of the pipeline: its stages in order, what to parse, routes per known type."""

    direction: Lane
    stages: tuple[Stage, ...]
    parsed: frozenset[str]
    routes: dict[str | None, Dispatch | _Fast]
    counts: DirectionCounts  # this direction's traffic counters (shared by the process's sessions)
    known: frozenset[str]  # event types counted by name (others as "other")
    hot: tuple[str, str]  # the prefixes of the lane's hot type (HOT_TYPES)


class Pipeline:
    __slots__ = ("_client", "_log_event_types", "_max_parse", "_server", "_timers", "ledger")

    def __init__(
        self,
        client_stages: tuple[Stage, ...],
        server_stages: tuple[Stage, ...],
        traffic: TrafficCounts,
        *,
        ledger: Ledger | None = None,
        max_parse_bytes: int,
        log_event_types: bool = False,
    ) -> None:
        self._client = _lane(Lane.CLIENT, client_stages, traffic)
        self._server = _lane(Lane.SERVER, server_stages, traffic)
        self._max_parse, self._log_event_types = max_parse_bytes, log_event_types
        self._timers: dict[str, Stage] = {}
        self.ledger = ledger or Ledger()

    @property
    def lanes(self) -> dict[Lane, _Lane]:
        """Both lanes by direction, made when asked (a Forward; tests): a dict kept per session cost
        ~220 B in every idle session (issue 26)."""
        return {Lane.CLIENT: self._client, Lane.SERVER: self._server}

    # -- frames in ----------------------------------------------------------------------------

    def from_client(self, frame: str | bytes, now: float) -> list[Action] | None:
        return self._frame(self._client, frame, now)

    def from_upstream(self, frame: str | bytes, now: float) -> list[Action] | None:
        return self._frame(self._server, frame, now)

    def _frame(self, lane: _Lane, frame: str | bytes, now: float) -> list[Action] | None:
        counts = lane.counts
        if not isinstance(frame, str):  # binary (bytes, or a bytearray from the legs) passes untouched
            counts.frames["binary"] += 1
            counts.bytes += len(frame)
            return None
        # Classification, inline: this runs for every audio frame. The API writes one `type` per
        # event; a client's frame may repeat it, so only theirs gets the stricter sniff: a hot frame
        # with no backslash and no `"type"` after its own is what sniff_type would name it.
        event_type: str | None
        client = lane is self._client
        if frame.startswith(lane.hot) and (not client or ("\\" not in frame and frame.find('"type"', 7) < 0)):
            event_type = HOT_TYPES[lane.direction]
            LAST.frame, LAST.type = frame, event_type  # its leading type too, for the wrappers
        else:
            event_type = sniff_type(frame) if client else leading_type(frame)
        route = lane.routes.get(event_type)
        if route is None and event_type in lane.known:
            route = lane.routes[event_type] = self._route(lane, event_type)
        if route.__class__ is _Fast:
            return self._fast(lane, route, frame, now)
        event = None
        if event_type is None or event_type in lane.parsed:
            if len(frame) <= self._max_parse:
                event_type, event = parse_declared(frame, event_type)
            elif event_type is None:  # too large to parse (so never repaired): named by its leading type
                event_type = leading_type(frame)
        counts.frames[label_for(event_type, lane.known)] += 1
        counts.bytes += len(frame)
        cached = lane.routes.get(event_type)
        if cached is None:
            cached = self._route(lane, event_type)
            if event_type in lane.known:
                lane.routes[event_type] = cached
        route = cached.full if isinstance(cached, _Fast) else cached  # parsed here: the full hooks
        message = Message(lane.direction, frame, event_type, event)
        if lane is self._server and event_type in LEDGER_SERVER_TYPES:
            self.ledger.on_server(event_type, event, now)  # once, before any stage reads it
        actions = self._pass(message, route, now)
        if event_type in _AT_EXIT:
            self._exit(message, now)
        if self._log_event_types:
            actions.insert(0, FrameSeen(C2U if lane is self._client else U2C, event_type, len(frame)))
        elif not actions and not message.changed and message.frame is frame and not message.done:
            return None  # no stage changed or said anything: the relay forwards it as received
        return _out(message, actions)

    def _fast(self, lane: _Lane, fast: _Fast, frame: str, now: float) -> list[Action] | None:
        """A frame of a fast-routed type: counted, shown to each stage's fast hook; None (forward as
        received) unless a hook answers, in which case the rest is the full pipeline's."""
        counts = lane.counts
        counts.frames[fast.label] += 1
        counts.bytes += len(frame)
        event_type = fast.type
        for index, hook in enumerate(fast.steps):
            produced = hook(frame, event_type, now)
            if produced:
                return self._handover(lane, fast, index, produced, frame, now)
        return None

    def _handover(
        self, lane: _Lane, fast: _Fast, index: int, produced: list[StageAction], frame: str, now: float
    ) -> list[Action] | None:
        """A fast hook answered: from here on the frame is a Message through the full hooks."""
        stage = fast.full[index][0]
        message = Message(lane.direction, frame, fast.type)
        actions = self._resolve(stage, produced, now, message)
        if not message.done:
            actions.extend(self._pass(message, fast.full[index + 1 :], now))
        if not actions and not message.changed and message.frame is frame and not message.done:
            return None
        return _out(message, actions)

    def _route(self, lane: _Lane, event_type: str | None) -> Dispatch | _Fast:
        """The route of a known type, built once per session: fast when every stage on it can."""
        route = _route(lane, event_type)
        client = lane.direction == Lane.CLIENT
        if (
            self._log_event_types
            or event_type is None
            or event_type in lane.parsed
            or event_type in _AT_EXIT
            or (not client and event_type in LEDGER_SERVER_TYPES)
            or not all(event_type in (s.client_fast if client else s.server_fast) for s, _ in route)
        ):
            return route
        hooks = tuple(s.fast_client if client else s.fast_server for s, _ in route)
        return _Fast(event_type, label_for(event_type, lane.known), hooks, route)

    # -- the pipeline -------------------------------------------------------------------------

    def _pass(self, message: Message, route: Dispatch, now: float) -> list[Action]:
        """Message through the stages of `route`, in order; the actions they returned."""
        actions: list[Action] = []
        for stage, hook in route:
            produced = hook(message, now)
            if produced:
                actions.extend(self._resolve(stage, produced, now, message))
            if message.done:
                break
        return actions

    def _resolve(
        self, emitter: Stage, produced: list[StageAction], now: float, current: Message | None = None
    ) -> list[Action]:
        """Apply `emitter`'s decisions about the `current` message; carry `Forward`s on through the
        stages after it; remember whose timers are whose."""
        actions: list[Action] = []
        for action in produced:
            if isinstance(action, Stop | Replace | ReplaceFrame):
                if current is not None:  # a timer or close has no message to decide about
                    _decide(current, action)
                continue
            if isinstance(action, Forward):
                message = action.message
                message.done = False  # it goes on
                if action.event is not None:
                    message.replace(action.event)
                lane = self.lanes[message.direction]
                after = lane.stages.index(emitter) + 1 if emitter in lane.stages else 0
                later = lane.stages[after:]
                route = tuple(step for step in _route(lane, message.type) if step[0] in later)
                passed = self._pass(message, route, now)
                if message.type in _AT_EXIT:
                    self._exit(message, now)
                actions.extend(_out(message, passed))
                continue
            if isinstance(action, StartTimer):
                self._timers[action.token] = emitter
            actions.append(action)
        return actions

    def _exit(self, message: Message, now: float) -> None:
        """The lane's exit: the ledger records a create going upstream; an error about an event the
        proxy named gets the client's own id back (the one place ids are mapped back)."""
        if message.done:
            return
        if message.direction == Lane.CLIENT:
            if message.type == "response.create" and message.event is not None:
                self.ledger.sent(message.event, now)
            return
        if message.type == "error":
            event = message.event if message.event is not None else parse_object(message.out())
            error = event.get("error") if event is not None else None
            if event is not None and isinstance(error, dict) and self.ledger.is_own(error.get("event_id")):
                error["event_id"] = self.ledger.client_id_for(error["event_id"])
                message.replace(event)

    # -- timers and close ---------------------------------------------------------------------

    def on_timer(self, token: str, now: float) -> list[Action]:
        stage = self._timers.pop(token, None)
        return self._resolve(stage, stage.on_timer(token, now), now) if stage is not None else []

    def close(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for stage in dict.fromkeys((*self._client.stages, *self._server.stages)):
            actions.extend(self._resolve(stage, stage.close(now), now))
        return actions


def _decide(message: Message, decision: Stop | Replace | ReplaceFrame) -> None:
    if isinstance(decision, Stop):
        message.done = True
    elif isinstance(decision, Replace):
        message.replace(decision.event)
    else:
        message.replace_frame(decision.frame)


def _out(message: Message, actions: list[Action]) -> list[Action]:
    if not message.done:
        out = message.out()
        actions.append(ToUpstream(out) if message.direction == Lane.CLIENT else ToClient(out))
    return actions


def _route(lane: _Lane, event_type: str | None) -> Dispatch:
    """The stages (with their hook for this direction) that see frames of `event_type`."""
    client = lane.direction == Lane.CLIENT
    route = []
    for stage in lane.stages:
        if client:
            sees = (
                stage.client_sees_all or event_type in stage.client_types or event_type in stage.client_sees
            )
        else:
            sees = (
                stage.server_sees_all or event_type in stage.server_types or event_type in stage.server_sees
            )
        if sees:
            route.append((stage, stage.on_client if client else stage.on_server))
    return tuple(route)


def _lane(direction: Lane, stages: tuple[Stage, ...], traffic: TrafficCounts) -> _Lane:
    client = direction == Lane.CLIENT
    ledger_types = frozenset({"response.create"}) if client else LEDGER_SERVER_TYPES
    parsed = ledger_types.union(*(s.client_types if client else s.server_types for s in stages))
    parsed = _SHARED_TYPE_SETS.setdefault(parsed, parsed)  # one copy for all sessions (idle memory)
    known = CLIENT_EVENT_TYPES if client else SERVER_EVENT_TYPES
    # Routes are cached per known type on first sight (a session sees a dozen of the ~90 types:
    # building all of them up front cost ~11 KiB per idle session); an unknown type is routed per
    # frame (not cached: clients choose those strings).
    counts = traffic.by_direction[C2U if client else U2C]
    return _Lane(direction, stages, parsed, {}, counts, known, _HOT_PREFIXES[direction])
