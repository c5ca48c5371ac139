"""Turn-taking on the upstream leg: the proxy, not the client, decides when a response starts.

- **Serialise**: while an in-band response is upstream (from its create until `response.done`, or
  an `error` naming the create), a further in-band `response.create` is held, then released in
  order. Out-of-band creates (`"conversation": "none"`) run alongside and are never held.
- **Coalesce the tool-call turn**: after an in-band response made N function calls, a create is
  held until a `function_call_output` exists for every call (or `tool_output_timeout`); exactly one
  create goes upstream; up to N-1 further creates with the same `response` payload are absorbed:
  the client sees the one answer, no error and no duplicate.
- **Hold early cancels**: a `response.cancel` without `response_id` sent before the response
  exists upstream waits for `response.created` and goes with that id; if the create is still
  held, the create is dropped and the client gets a cancelled `response.done`. A cancel of a
  response already done is absorbed (the API would only answer `response_cancel_not_active`).

States (`OrchestrationStage.state`, a `TurnState` from realtime_proxy.core.turns), one row each;
held creates (`held`) and the tool-call turn (`turn`) are kept beside the state:

    state            upstream                      a create         response.created     response.done / error
    IDLE             nothing                       goes up          RUNNING (server's)   -
    AWAITING_OUTPUTS nothing; the turn's answer    held             RUNNING (server's)   -
                     held for tool outputs         (outputs in or timer: answer goes up -> REQUESTED)
    REQUESTED        our create, not created yet   held             RUNNING              error naming it: next
                                                   (a cancel is held until created)      held goes up, or IDLE
    RUNNING          a response (ours/server's)    held             -                    done: next held goes
                                                                                         up, or IDLE
    CANCELLING       RUNNING, a cancel went up     held             -                    as RUNNING
                                                   (a second cancel is absorbed)
    UNTOLD           the API refused a create as   held             RUNNING              as RUNNING
                     "already active": a response
                     it had not told of runs

Comes after the repair rules: a held create was repaired when it arrived, once, and goes out as
repaired. In-band creates without an id get one of the proxy's (`proxy_evt_N`, issued by the
ledger and mapped back at the server lane's exit) so an upstream `error` naming them ends their turn."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.actions import CancelTimer, StartTimer
from realtime_proxy.core.events import dump
from realtime_proxy.core.orchestration_observations import (
    AbsorbReason,
    CancelAbsorbed,
    CancelHeld,
    CancelReleased,
    CreateCoalesced,
    CreateDropped,
    DropReason,
    HoldOverflow,
    HoldReason,
    OrchestrationOptions,
    ReleaseReason,
    ResponseHeld,
    ResponseReleased,
    cancelled_done,
)
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.stage import STOP, BaseStage, Forward, Lane, Message, Replace, StageAction
from realtime_proxy.core.turns import (
    HeldCancel,
    HeldCreate,
    Memory,
    ToolTurn,
    TurnState,
    UpstreamResponse,
    function_calls,
    in_band,
    response_of,
    turn_state,
)

TIMER = "orchestration.tool_outputs"
ALREADY_ACTIVE = "conversation_already_has_active_response"


class OrchestrationStage(BaseStage):
    __slots__ = (
        "_synthetic",
        "apply",
        "conversation_id",
        "held",
        "held_cancel",
        "ledger",
        "memory",
        "options",
        "turn",
        "upstream",
    )
    name = "orchestration"
    client_types = frozenset({"response.create", "response.cancel", "conversation.item.create"})
    server_types = frozenset({"response.created", "response.done", "error"})

    def __init__(self, ledger: Ledger, options: OrchestrationOptions | None = None) -> None:
        self.ledger = ledger  # the session's ledger: names creates, tells in-band responses
        self.options = options or OrchestrationOptions()
        self.apply = not self.options.observe_only
        self.upstream: UpstreamResponse | None = None
        # In order; a list, not a deque: a deque costs 600 B per idle session.
        self.held: list[HeldCreate] = []
        self.turn: ToolTurn | None = None
        self.held_cancel: HeldCancel | None = None
        self.memory = Memory()
        self.conversation_id: Any = None
        self._synthetic = 0  # synthetic response ids issued (an int: a count object is 56 B)

    @property
    def state(self) -> TurnState:
        """The named state (the table at the head of this module)."""
        return turn_state(self.upstream, self.held, self.turn)

    # -- client -------------------------------------------------------------------------------

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        event = message.event
        if event is None:
            return []
        if message.type == "response.create":
            return self._create(message, event, now) if in_band(event) else []
        if message.type == "response.cancel":
            return self._cancel(message, event, now) if self.options.hold_early_cancels else []
        if message.type == "conversation.item.create":
            return self._tool_output(message, event, now)
        return []

    def _create(self, message: Message, event: dict[str, Any], now: float) -> list[StageAction]:
        if self.apply and not isinstance(event.get("event_id"), str):
            self.ledger.name(event)  # so an upstream error naming it ends its turn
            return [Replace(event), *self._take(message, event, now)]
        return self._take(message, event, now)

    def _take(self, message: Message, event: dict[str, Any], now: float) -> list[StageAction]:
        event_id = event.get("event_id")
        create = HeldCreate(message, event_id if isinstance(event_id, str) else None, now)
        if self.turn is not None and self.turn.answer is None and not self.turn.answered:
            self.turn = None  # a create before any output: the client is not answering the calls
        turn = self.turn
        if turn is not None and self._redundant(turn, create):
            turn.absorbed += 1
            into = turn.answer.client_event_id if turn.answer else None
            return [CreateCoalesced(create.client_event_id, into, turn.calls, self.apply), *self._stop()]
        reason = self._blocked()
        if reason is None or not self.apply:
            if turn is not None and turn.answer is None:
                turn.answer = create
            held = [] if reason is None else [ResponseHeld(create.client_event_id, reason, 1, False)]
            if self.upstream is None:
                self.upstream = UpstreamResponse(create)
            return list(held)
        if len(self.held) >= self.options.max_held:
            if self.upstream is None:  # only tool outputs were awaited: it will run
                self.upstream = UpstreamResponse(create)
            return [HoldOverflow(create.client_event_id, len(self.held))]  # the API answers it
        self.held.append(create)
        if turn is not None and turn.answer is None:
            turn.answer = create
        actions: list[StageAction] = [ResponseHeld(create.client_event_id, reason, len(self.held)), STOP]
        return actions + self._arm_timer()

    def _blocked(self) -> HoldReason | None:
        if self.upstream is not None or self.held:
            return HoldReason.ACTIVE_RESPONSE if self.options.serialise else None
        if self.turn is not None and self.turn.awaiting and self.turn.answer is None:
            return HoldReason.TOOL_OUTPUTS
        return None

    def _redundant(self, turn: ToolTurn, create: HeldCreate) -> bool:
        return (
            self.options.coalesce_tool_calls
            and turn.answer is not None
            and turn.absorbed < turn.calls - 1
            and create.request == turn.answer.request
        )

    def _tool_output(self, message: Message, event: dict[str, Any], now: float) -> list[StageAction]:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call_output":
            return []
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            return []
        self.memory.output(call_id)
        turn = self.turn
        if turn is None or call_id not in turn.awaiting:
            return []
        turn.awaiting.discard(call_id)
        if turn.awaiting:
            return []
        disarmed = self._disarm_timer()
        if not self.held or self.upstream is not None:
            return disarmed
        # The output that completes the turn goes upstream before the answer it unblocks.
        output = Forward(Message(message.direction, message.out(), message.type, message.event))
        return [STOP, *disarmed, output, *self._release(now, ReleaseReason.TOOL_OUTPUTS)]

    def _cancel(self, message: Message, event: dict[str, Any], now: float) -> list[StageAction]:
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        response_id = event.get("response_id")
        upstream = self.upstream
        if isinstance(response_id, str) and response_id:
            if response_id in self.memory.finished:
                return self._absorb_cancel(message, client_event_id, AbsorbReason.RESPONSE_DONE)
            if upstream is None or upstream.response_id != response_id:
                return []
        if upstream is not None:
            if upstream.cancelling:
                return self._absorb_cancel(message, client_event_id, AbsorbReason.ALREADY_CANCELLING)
            if upstream.response_id is not None or upstream.create is None:
                upstream.cancelling = self.apply and upstream.response_id is not None
                return []  # running: the API cancels it
            if self.held_cancel is not None:
                return self._absorb_cancel(message, client_event_id, AbsorbReason.ALREADY_CANCELLING)
            if self.apply:
                self.held_cancel = HeldCancel(message, upstream.create, now)
            held = CancelHeld(client_event_id, upstream.create.client_event_id, self.apply)
            return [held, *self._stop()]
        if self.held and self.apply:
            return self._drop_next(message, now)
        if self.memory.finished:
            return self._absorb_cancel(message, client_event_id, AbsorbReason.RESPONSE_DONE)
        return []

    def _absorb_cancel(
        self, message: Message, client_event_id: str | None, reason: AbsorbReason
    ) -> list[StageAction]:
        return [CancelAbsorbed(client_event_id, reason, self.apply), *self._stop()]

    def _stop(self) -> list[StageAction]:
        """Stop the message when acting; in observe mode it goes on as sent."""
        return [STOP] if self.apply else []

    def _drop_next(self, message: Message, now: float) -> list[StageAction]:
        """Cancel of the create that would run next, before it ever reached the API."""
        dropped = self.held.pop(0)
        actions: list[StageAction] = [
            STOP,
            CreateDropped(dropped.client_event_id, DropReason.CANCELLED, now - dropped.since),
        ]
        if self.turn is not None and self.turn.answer is dropped:
            actions.extend(self._disarm_timer())
            self.turn = None
        self._synthetic += 1
        response_id = f"resp_proxy_cancelled_{self._synthetic}"
        self.memory.finish(response_id)  # a later cancel finds it done
        done = cancelled_done(self.ledger.new_event_id(), response_id, self.conversation_id, dropped.request)
        actions.append(Forward(Message(Lane.SERVER, dump(done), "response.done", done)))
        return actions + self._release(now, ReleaseReason.PREVIOUS_CANCELLED)

    # -- server -------------------------------------------------------------------------------

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        if message.type == "error":
            return self._error(message, now)
        response = response_of(message)
        if response is None:
            return []
        response_id = response.get("id") if isinstance(response.get("id"), str) else None
        if message.type == "response.created":
            if response.get("conversation_id") is None:
                return []  # out-of-band: runs alongside, never held
            self.conversation_id = response["conversation_id"]
            return self._created(response_id, now)
        # A failed response.done may carry no conversation_id: its response.created told (the ledger).
        about = self.ledger.about
        created_in_band = about is not None and about.in_band and about.created_at is not None
        if not created_in_band and response.get("conversation_id") is None:
            return []
        return self._done(response, response_id, now)

    def _created(self, response_id: str | None, now: float) -> list[StageAction]:
        upstream = self.upstream
        if upstream is None or upstream.response_id is not None:
            self.upstream = UpstreamResponse(None, response_id)  # started by the server (e.g. server VAD)
            return []
        upstream.response_id = response_id
        cancel = self.held_cancel
        if cancel is None or cancel.target is not upstream.create:
            return []
        self.held_cancel = None
        upstream.cancelling = True
        assert cancel.message.event is not None
        released = {**cancel.message.event, "response_id": response_id}
        client_event_id = released.get("event_id")
        client_event_id = client_event_id if isinstance(client_event_id, str) else None
        return [
            CancelReleased(client_event_id, response_id, now - cancel.since),
            Forward(cancel.message, released),
        ]

    def _done(self, response: dict[str, Any], response_id: str | None, now: float) -> list[StageAction]:
        if response.get("conversation_id"):
            self.conversation_id = response["conversation_id"]
        if response_id is not None:
            self.memory.finish(response_id)
        upstream = self.upstream
        if upstream is not None and upstream.response_id in (response_id, None):
            self.upstream = None
            if self.turn is not None and upstream.create is not None and self.turn.answer is upstream.create:
                self.turn = None  # the turn is answered
        actions: list[StageAction] = []
        calls = function_calls(response) if self.options.coalesce_tool_calls else []
        if calls:
            actions.extend(self._start_turn(calls))
        return actions + self._release(now, ReleaseReason.RESPONSE_DONE)

    def _start_turn(self, calls: list[str]) -> list[StageAction]:
        actions: list[StageAction] = list(self._disarm_timer())
        awaiting = {call for call in calls if call not in self.memory.outputs}
        turn = ToolTurn(len(calls), awaiting)
        # Creates already waiting and no output yet: they are not answers to these calls.
        self.turn = turn if turn.answered or not self.held else None
        if self.turn is None:
            return actions
        # Creates held while the calls were being made belong to this turn: the first answers it.
        for create in list(self.held):
            if turn.answer is None:
                turn.answer = create
            elif self._redundant(turn, create):
                self.held.remove(create)
                turn.absorbed += 1
                actions.append(
                    CreateCoalesced(create.client_event_id, turn.answer.client_event_id, turn.calls)
                )
        return actions

    def _error(self, message: Message, now: float) -> list[StageAction]:
        error = message.event.get("error") if message.event is not None else None
        upstream = self.upstream
        if not isinstance(error, dict) or upstream is None or upstream.create is None:
            return []
        create = upstream.create
        if create.event_id is None or error.get("event_id") != create.event_id:
            return []
        # The create made no response; a response bound to it was someone else's (the server's).
        self.upstream = UpstreamResponse(None, upstream.response_id) if upstream.response_id else None
        actions: list[StageAction] = []
        cancel = self.held_cancel
        if cancel is not None and cancel.target is create:
            self.held_cancel = None
            cancel_id = cancel.message.event.get("event_id") if cancel.message.event else None
            actions.append(
                CancelAbsorbed(cancel_id if isinstance(cancel_id, str) else None, AbsorbReason.CREATE_FAILED)
            )
        if (
            self.apply
            and error.get("code") == ALREADY_ACTIVE
            and not create.rejected
            and self.options.serialise
        ):
            # A response the proxy had not seen started first (server VAD): wait for it instead.
            create.rejected, create.since = True, now
            self.held.insert(0, create)
            if self.upstream is None:
                self.upstream = UpstreamResponse(None)
            held = ResponseHeld(create.client_event_id, HoldReason.REJECTED_AS_ACTIVE, len(self.held))
            return [STOP, *actions, held]
        if self.turn is not None and self.turn.answer is create:
            self.turn = None
        return actions + self._release(now, ReleaseReason.CREATE_FAILED)

    # -- releasing ----------------------------------------------------------------------------

    def _release(self, now: float, reason: ReleaseReason) -> list[StageAction]:
        if self.upstream is not None or not self.held:
            return []
        turn = self.turn
        if turn is not None and turn.awaiting and turn.answer is self.held[0]:
            return self._arm_timer()  # the turn's answer waits for the missing outputs
        create = self.held.pop(0)
        self.upstream = UpstreamResponse(create)
        return [ResponseReleased(create.client_event_id, reason, now - create.since), Forward(create.message)]

    def _arm_timer(self) -> list[StageAction]:
        turn = self.turn
        if (
            turn is None
            or turn.timer
            or not turn.awaiting
            or not self.held
            or turn.answer is not self.held[0]
        ):
            return []
        turn.timer = True
        return [StartTimer(self.options.tool_output_timeout, TIMER)]

    def _disarm_timer(self) -> list[StageAction]:
        if self.turn is None or not self.turn.timer:
            return []
        self.turn.timer = False
        return [CancelTimer(TIMER)]

    def on_timer(self, token: str, now: float) -> list[StageAction]:
        if token != TIMER or self.turn is None or not self.turn.timer:
            return []
        self.turn.timer = False
        self.turn.awaiting.clear()  # answer with the outputs there are
        return self._release(now, ReleaseReason.TOOL_OUTPUT_TIMEOUT)

    def close(self, now: float) -> list[StageAction]:
        actions: list[StageAction] = list(self._disarm_timer())
        actions.extend(CreateDropped(c.client_event_id, DropReason.CLOSED, now - c.since) for c in self.held)
        self.held.clear()
        return actions
