"""The pipeline's mechanics with stages that record what they see: routing by declared types, what
is parsed, counted and cached, where forwarded messages go, and whose timers are whose."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from realtime_proxy.core.actions import FrameSeen, RateLimits, StartTimer, ToClient, ToUpstream
from realtime_proxy.core.pipeline import Pipeline
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.stage import BaseStage, Forward, Message, ReplaceFrame, Stage, StageAction
from realtime_proxy.core.traffic import C2U, U2C, TrafficCounts

APPEND = '{"type":"input_audio_buffer.append","audio":"AAAA"}'
UPDATE = '{"type":"session.update","session":{}}'
DONE = '{"type":"response.done","response":{"id":"r1","status_details":{"type":"completed"}}}'
NOTE = RateLimits([])  # an observation a recorder stage returns


@dataclass(frozen=True)
class Seen:
    stage: str
    hook: str
    direction: str | None
    type: str | None
    parsed: bool
    now: float | None


class Recorder(BaseStage):
    """A stage that records every call and answers with the replies queued for that hook."""

    def __init__(
        self,
        name: str,
        log: list[Seen],
        *,
        client_types: frozenset[str] = frozenset(),
        server_types: frozenset[str] = frozenset(),
        client_sees: frozenset[str] = frozenset(),
        server_sees: frozenset[str] = frozenset(),
        sees_all: bool = False,
        replies: dict[str, list[list[StageAction]]] | None = None,
    ) -> None:
        self.name, self.log = name, log
        self.client_types, self.server_types = client_types, server_types
        self.client_sees, self.server_sees = client_sees, server_sees
        self.client_sees_all = self.server_sees_all = sees_all
        self.replies = replies or {}

    def _reply(self, hook: str, message: Message | None, token: str | None, now: float) -> list[StageAction]:
        if message is not None:
            self.log.append(
                Seen(self.name, hook, message.direction, message.type, message.event is not None, now)
            )
        else:
            self.log.append(Seen(self.name, hook, None, token, False, now))
        queue = self.replies.get(hook, [])
        return queue.pop(0) if queue else []

    def on_client(self, message: Message, now: float) -> list[StageAction]:
        return self._reply("client", message, None, now)

    def on_server(self, message: Message, now: float) -> list[StageAction]:
        return self._reply("server", message, None, now)

    def on_timer(self, token: str, now: float) -> list[StageAction]:
        return self._reply("timer", None, token, now)

    def close(self, now: float) -> list[StageAction]:
        return self._reply("close", None, None, now)


def types(*names: str) -> frozenset[str]:
    return frozenset(names)


def pipeline(
    client: tuple[Stage, ...], server: tuple[Stage, ...], traffic: TrafficCounts | None = None, **options: Any
) -> Pipeline:
    return Pipeline(
        client,
        server,
        traffic or TrafficCounts(),
        max_parse_bytes=options.pop("max_parse_bytes", 1 << 20),
        **options,
    )


def test_a_frame_no_stage_wants_is_forwarded_as_received_and_counted() -> None:
    log: list[Seen] = []
    traffic = TrafficCounts()
    audio = Recorder("audio", log, client_sees=types("input_audio_buffer.append"))
    core = pipeline((audio,), (), traffic)  # event types are not logged unless asked
    assert core.from_client(UPDATE, 1.0) is None
    assert core.from_client(UPDATE, 2.0) is None
    assert core.from_client(APPEND, 3.0) is None
    assert core.from_client(b"\x00\x01", 4.0) is None
    assert core.from_client(b"\x02", 5.0) is None
    counts = traffic.by_direction[C2U]
    assert (counts.frames["session.update"], counts.frames["input_audio_buffer.append"]) == (2, 1)
    assert (counts.frames["binary"], counts.bytes) == (2, 2 * len(UPDATE) + len(APPEND) + 3)
    # The stage saw only the type it asked for, unparsed.
    assert log == [Seen("audio", "client", "client", "input_audio_buffer.append", False, 3.0)]


def test_a_clients_repeated_type_is_parsed_and_the_last_one_counts() -> None:
    log: list[Seen] = []
    create = Recorder("create", log, client_types=types("response.create"))
    update = Recorder("update", log, client_sees=types("session.update"))
    frame = '{"type":"session.update","type":"response.create"}'
    assert pipeline((create, update), ()).from_client(frame, 1.0) is None
    assert log == [Seen("create", "client", "client", "response.create", True, 1.0)]


def test_the_apis_own_type_leads_so_a_server_frame_nobody_parses_is_not_parsed() -> None:
    log: list[Seen] = []
    added = '{"type":"conversation.item.added","item":{"id":"i"}}'
    seen = Recorder("added", log, server_sees=types("conversation.item.added"), replies={"server": [[NOTE]]})
    traffic = TrafficCounts()
    assert pipeline((), (seen,), traffic).from_upstream(added, 1.0) == [NOTE, ToClient(added)]
    assert log == [Seen("added", "server", "server", "conversation.item.added", False, 1.0)]
    assert traffic.by_direction[U2C].frames["conversation.item.added"] == 1


def test_the_ledgers_types_are_always_parsed_before_any_stage() -> None:
    log: list[Seen] = []
    done = Recorder("done", log, server_sees=types("response.done"))
    assert pipeline((), (done,)).from_upstream(DONE, 1.0) is None
    assert log == [Seen("done", "server", "server", "response.done", True, 1.0)]


def test_frames_up_to_the_parse_bound_are_parsed_and_larger_ones_named_by_their_leading_type() -> None:
    log: list[Seen] = []
    create = Recorder("create", log, client_types=types("response.create"))
    traffic = TrafficCounts()
    at_bound = '{"type":"response.create"}'
    repeated = '{"type":"response.create","x":{"type":"y"}}'  # the strict sniff leaves its type unknown
    core = pipeline((create,), (), traffic, max_parse_bytes=len(at_bound))
    assert core.from_client(at_bound, 1.0) is None
    assert core.from_client(repeated, 2.0) is None
    assert log == [
        Seen("create", "client", "client", "response.create", True, 1.0),
        Seen("create", "client", "client", "response.create", False, 2.0),  # over the bound: unparsed
    ]
    assert (
        traffic.by_direction[C2U].frames["response.create"],
        traffic.by_direction[C2U].frames["invalid"],
    ) == (
        2,
        0,
    )


def test_routes_are_cached_for_known_types_only() -> None:
    log: list[Seen] = []
    update = Recorder("update", log, client_sees=types("session.update", "x.made_up"))
    core = pipeline((update,), ())
    for now in (1.0, 2.0):
        core.from_client(UPDATE, now)
        core.from_client('{"type":"x.made_up"}', now)
    assert [(seen.type, seen.now) for seen in log] == [
        ("session.update", 1.0),
        ("x.made_up", 1.0),
        ("session.update", 2.0),
        ("x.made_up", 2.0),
    ]
    # Clients choose unknown type strings: caching their routes would let a session grow without bound.
    assert core.lanes["client"].routes == {"session.update": ((update, update.on_client),)}


def test_the_parsed_type_sets_of_equal_pipelines_are_one_object() -> None:
    def lane_types() -> frozenset[str]:
        stage = Recorder("s", [], client_types=types("session.update", "x.only_in_this_test"))
        return pipeline((stage,), ()).lanes["client"].parsed

    first, second = lane_types(), lane_types()
    # The ledger's own client type (response.create) is parsed whatever the stages declare.
    assert first == types("session.update", "x.only_in_this_test", "response.create") and first is second


def test_logged_event_types_come_first_and_name_the_direction() -> None:
    log: list[Seen] = []
    stage = Recorder("s", log, sees_all=True, replies={"client": [[NOTE]], "server": [[NOTE]]})
    core = pipeline((stage,), (stage,), log_event_types=True)
    assert core.from_client(UPDATE, 1.0) == [
        FrameSeen(C2U, "session.update", len(UPDATE)),
        NOTE,
        ToUpstream(UPDATE),
    ]
    assert core.from_upstream(DONE, 2.0) == [FrameSeen(U2C, "response.done", len(DONE)), NOTE, ToClient(DONE)]
    assert [(seen.hook, seen.direction) for seen in log] == [("client", "client"), ("server", "server")]


def test_a_forward_goes_on_after_its_emitter_and_the_actions_after_it_are_kept() -> None:
    log: list[Seen] = []
    held = Message("server", DONE, "response.done")
    before = Recorder("before", log, sees_all=True)
    holder = Recorder(
        "holder", log, server_sees=types("rate_limits.updated"), replies={"server": [[Forward(held), NOTE]]}
    )
    after = Recorder("after", log, sees_all=True)
    limits = '{"type":"rate_limits.updated","rate_limits":[]}'
    assert pipeline((), (before, holder, after)).from_upstream(limits, 1.0) == [
        ToClient(DONE),
        NOTE,
        ToClient(limits),
    ]
    assert [(seen.stage, seen.type) for seen in log] == [
        ("before", "rate_limits.updated"),
        ("holder", "rate_limits.updated"),
        ("after", "response.done"),
        ("after", "rate_limits.updated"),
    ]


def test_timers_go_back_to_their_stage_and_what_it_forwards_runs_through_the_other_lane() -> None:
    log: list[Seen] = []
    late = Message("server", DONE, "response.done")
    timed = Recorder(
        "timed",
        log,
        client_types=types("response.create"),
        replies={
            "client": [[StartTimer(1.0, "t1")]],
            "timer": [[StartTimer(1.0, "t2")], [Forward(late)]],
        },
    )
    watcher = Recorder("watcher", log, sees_all=True)  # in the server lane only
    core = pipeline((timed,), (watcher,))
    create = '{"type":"response.create"}'
    assert core.from_client(create, 1.0) == [StartTimer(1.0, "t1"), ToUpstream(create)]
    assert core.on_timer("t1", 2.0) == [StartTimer(1.0, "t2")]  # re-armed from the timer itself
    assert core.on_timer("t2", 3.0) == [ToClient(DONE)]
    assert core.on_timer("t2", 4.0) == []  # a timer fires once
    assert log == [
        Seen("timed", "client", "client", "response.create", True, 1.0),
        Seen("timed", "timer", None, "t1", False, 2.0),
        Seen("timed", "timer", None, "t2", False, 3.0),
        Seen(
            "watcher", "server", "server", "response.done", False, 3.0
        ),  # not a stage of its lane: all see it
    ]


def test_on_close_each_stage_closes_once_and_what_it_forwards_goes_on_after_it() -> None:
    log: list[Seen] = []
    last = Message("server", DONE, "response.done")
    before = Recorder("before", log, sees_all=True)
    closer = Recorder("closer", log, replies={"close": [[Forward(last), StartTimer(1.0, "c1")]]})
    after = Recorder("after", log, sees_all=True, replies={"timer": [[NOTE]]})
    core = pipeline((closer,), (before, closer, after))
    assert core.close(5.0) == [ToClient(DONE), StartTimer(1.0, "c1")]
    assert [(seen.stage, seen.hook, seen.now) for seen in log] == [
        ("closer", "close", 5.0),
        ("after", "server", 5.0),
        ("before", "close", 5.0),
        ("after", "close", 5.0),
    ]
    assert core.on_timer("c1", 6.0) == []  # the closing stage's timer is the closing stage's
    assert log[-1] == Seen("closer", "timer", None, "c1", False, 6.0)


def test_a_forward_with_an_event_goes_on_as_that_event_to_the_stages_that_declared_its_type() -> None:
    """Forward(message, event): the held message continues changed, routed by its (new) type, so a
    later stage that declared that type sees it and one that did not is skipped."""
    log: list[Seen] = []
    held = Message("server", DONE, "response.done")
    changed = {"type": "response.done", "response": {"id": "r1", "status": "cancelled"}}
    holder = Recorder(
        "holder",
        log,
        server_sees=types("rate_limits.updated"),
        replies={"server": [[Forward(held, changed)]]},
    )
    done_reader = Recorder("done_reader", log, server_types=types("response.done"))
    other = Recorder("other", log, server_types=types("session.updated"))
    limits = '{"type":"rate_limits.updated","rate_limits":[]}'
    assert pipeline((), (holder, done_reader, other)).from_upstream(limits, 1.0) == [
        ToClient('{"type":"response.done","response":{"id":"r1","status":"cancelled"}}'),
        ToClient(limits),
    ]
    assert [(seen.stage, seen.type, seen.parsed) for seen in log] == [
        ("holder", "rate_limits.updated", False),
        ("done_reader", "response.done", True),
    ]


def test_an_error_about_a_proxy_named_event_reaches_the_client_with_the_clients_id() -> None:
    """The exit maps a proxy id back to the id the client sent, also after a stage replaced the
    error's bytes (its parse no longer applies: the exit reads what goes out)."""
    ledger = Ledger()
    attempt = ledger.issue("c1", "rp1_a2")
    error = '{"type":"error","error":{"type":"server_error","event_id":"' + attempt + '"}}'
    mapped = ToClient('{"type":"error","error":{"type":"server_error","event_id":"c1"}}')
    assert pipeline((), (), ledger=ledger).from_upstream(error, 1.0) == [mapped]
    rewritten = error.replace("server_error", "invalid_request_error")
    log: list[Seen] = []
    rewriter = Recorder(
        "rewriter", log, server_sees=types("error"), replies={"server": [[ReplaceFrame(rewritten)]]}
    )
    assert pipeline((), (rewriter,), ledger=ledger).from_upstream(error, 2.0) == [
        ToClient('{"type":"error","error":{"type":"invalid_request_error","event_id":"c1"}}')
    ]
