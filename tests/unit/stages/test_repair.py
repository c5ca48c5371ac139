"""The repair stage alone, playbook style: every action it returns, in order, asserted whole."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.actions import Refusal, RepairSkipped, Rewrite, RuleError, ToClient, ToUpstream
from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.repair import RepairStage
from realtime_proxy.core.responses import Ledger
from realtime_proxy.core.rules import RuleChain, build_chain
from realtime_proxy.core.rules.model import Rule
from realtime_proxy.core.session import CoreOptions, SessionCore
from realtime_proxy.core.session_state import SessionState
from tests.playbook import Passes, Playbook, applied, frame_of, message


def stage(chain: RuleChain | None = None, max_bytes: int = 1 << 20) -> RepairStage:
    # A gpt-realtime session: tool_choice_object's evidence covers that model family only.
    state = SessionState(SessionContext(model="gpt-realtime"))
    return RepairStage(chain or build_chain(), state, Ledger(), max_bytes)


def test_valid_event_passes_byte_for_byte() -> None:
    frame = '{"type": "session.update", "event_id": "e1", "session": {"type": "realtime"}}'
    with Playbook(stage()) as play:
        play.client(frame).expect(Passes(frame))


def test_rewrite_is_reported_once_per_rule_and_the_repaired_event_passes() -> None:
    event = {
        "type": "session.update",
        "event_id": "e1",
        "session": {"type": "realtime", "modalities": ["text"]},
    }
    with Playbook(stage()) as play:
        play.client(event).expect(
            Rewrite(
                client_event_id="e1",
                event_type="session.update",
                rule="modalities_to_output_modalities",
                path="session.modalities",
                before=["text"],
                after={"session.output_modalities": ["text"]},
                lossless=True,
                applied=True,
            ),
            Passes(
                frame_of(
                    {
                        "type": "session.update",
                        "event_id": "e1",
                        "session": {"type": "realtime", "output_modalities": ["text"]},
                    }
                )
            ),
        )


def test_changed_event_without_id_gets_the_proxys_own() -> None:
    event = {"type": "session.update", "session": {"type": "realtime", "temperature": 1}}
    with Playbook(stage()) as play:
        play.client(event).expect(
            Rewrite(
                "proxy_evt_1",
                "session.update",
                "drop_temperature",
                "session.temperature",
                1,
                None,
                False,
                True,
            ),
            Passes(
                frame_of(
                    {"type": "session.update", "session": {"type": "realtime"}, "event_id": "proxy_evt_1"}
                )
            ),
        )


def test_many_changes_by_one_rule_are_one_observation_with_a_count() -> None:
    tools = [{"type": "function", "function": {"name": f"t{i}", "parameters": {}}} for i in range(500)]
    event = {"type": "session.update", "event_id": "big", "session": {"type": "realtime", "tools": tools}}
    play = Playbook(stage())
    actions = play.client(event).actions
    play.steps[-1].checked = True  # asserted below: the rewrite list, and what passes
    rewrites = [a for a in actions if isinstance(a, Rewrite)]
    assert [(r.rule, r.count) for r in rewrites] == [("chat_completions_tools", 500)]
    assert isinstance(actions[-1], Passes) and len(actions) == 2


def test_refusal_answers_the_client_and_ends_the_message() -> None:
    event = {
        "type": "response.create",
        "event_id": "c1",
        # Out-of-band, with its own (complete) tool list: the proxy knows the call cannot work.
        "response": {
            "conversation": "none",
            "tools": [],
            "tool_choice": {"type": "function", "name": "nope"},
        },
    }
    play = Playbook(stage())
    with play:
        step = play.client(event)
        refusal = step.actions[0]
        assert isinstance(refusal, Refusal)
        message = refusal.message
        step.expect(
            Refusal("c1", "response.create", "tool_choice_object", "invalid_tool_choice", message, True),
            ToClient(  # the error the API itself sends, with the proxy's own id for the server event
                frame_of(
                    {
                        "type": "error",
                        "event_id": "proxy_evt_1",
                        "error": {
                            "type": "invalid_request_error",
                            "code": "invalid_tool_choice",
                            "message": message,
                            "param": "response.tool_choice",
                            "event_id": "c1",
                        },
                    }
                )
            ),
        )


def test_a_refused_event_with_a_non_string_id_is_answered_with_a_null_event_id() -> None:
    event = {
        "type": "response.create",
        "event_id": 7,
        "response": {"conversation": "none", "tools": [], "tool_choice": {"type": "function", "name": "x"}},
    }
    play = Playbook(stage())
    with play:
        step = play.client(event)
        message = step.actions[0].message
        step.expect(
            Refusal(None, "response.create", "tool_choice_object", "invalid_tool_choice", message, True),
            ToClient(
                frame_of(
                    {
                        "type": "error",
                        "event_id": "proxy_evt_1",
                        "error": {
                            "type": "invalid_request_error",
                            "code": "invalid_tool_choice",
                            "message": message,
                            "param": "response.tool_choice",
                            "event_id": None,
                        },
                    }
                )
            ),
        )


def test_observe_only_reports_and_forwards_the_original() -> None:
    frame = '{"type":"session.update","session":{"type":"realtime","temperature":1}}'
    with Playbook(stage(build_chain(observe_only=True))) as play:
        play.client(frame).expect(
            Rewrite(None, "session.update", "drop_temperature", "session.temperature", 1, None, False, False),
            Passes(frame),
        )


def test_a_rule_that_raises_forwards_the_original_and_reports_it() -> None:
    def explode(event: dict, state: SessionState, rewrites: list) -> None:  # type: ignore[type-arg]
        raise ValueError("bug")

    chain = RuleChain([Rule("exploding", "test", True, True, frozenset({"session.update"}), "-", explode)])
    frame = '{"type":"session.update","event_id":"e","session":{}}'
    with Playbook(stage(chain)) as play:
        play.client(frame).expect(
            RuleError("e", "session.update", "exploding", "ValueError: bug"), Passes(frame)
        )


def test_events_over_the_size_bound_are_not_parsed_and_skip_the_rules(monkeypatch: Any) -> None:
    def no_parsing(frame: Any, limit: int = 0) -> None:
        raise AssertionError("an event over the bound must not be parsed")

    monkeypatch.setattr("realtime_proxy.core.classify.parse_guarded", no_parsing)
    frame = frame_of(
        {"type": "session.update", "event_id": "h", "session": {"temperature": 1, "x": "x" * 200}}
    )
    with Playbook(SessionCore(build_chain(), options=CoreOptions(max_parse_bytes=100))) as play:
        play.client(frame).expect(
            RepairSkipped(None, "session.update", "too_large", len(frame)), ToUpstream(frame)
        )


def test_unparsed_event_passes_untouched() -> None:
    frame = '{"type": "session.update", broken'
    with Playbook(stage()) as play:
        play.client(frame).expect(Passes(frame))


def test_a_translated_event_continues_under_its_new_type() -> None:
    """transcription_session.update (beta) becomes session.update: later stages see the new type."""
    from realtime_proxy.core.context import SessionContext
    from tests.playbook import Playbook as _Playbook

    repair = RepairStage(
        build_chain(), SessionState(SessionContext(route="transcription")), Ledger(), 1 << 20
    )
    event = {"type": "transcription_session.update", "event_id": "t1", "session": {"include": None}}
    with _Playbook(repair) as play:
        step = play.client(event)
        step.expect(
            Rewrite(
                "t1",
                "transcription_session.update",
                "transcription_session_update",
                "transcription_session.update",
                None,
                "session.update",
                True,
                True,
            ),
            Passes(
                frame_of(
                    {
                        "type": "session.update",
                        "event_id": "t1",
                        "session": {"include": None, "type": "transcription"},
                    }
                )
            ),
        )


def test_the_repaired_message_goes_on_under_the_translated_type() -> None:
    """Later stages route the message by its type: after the rule's translation, session.update."""
    from realtime_proxy.core.context import SessionContext

    repair = RepairStage(
        build_chain(), SessionState(SessionContext(route="transcription")), Ledger(), 1 << 20
    )
    msg = message("client", {"type": "transcription_session.update", "event_id": "t1", "session": {}})
    applied(repair.on_client(msg, 0.0), msg)  # the stage decides; the pipeline applies
    assert (msg.type, msg.changed) == ("session.update", True)


def test_only_unparsed_frames_over_the_bound_are_reported_as_skipped() -> None:
    at_bound = '{"type":"session.update",' + "x" * 20  # not JSON: the core never parses it
    over = at_bound + "x"
    with Playbook(stage(max_bytes=len(at_bound))) as play:
        play.client(at_bound).expect(Passes(at_bound))  # unparsed but within the bound: the API answers it
        play.client(over).expect(RepairSkipped(None, "session.update", "too_large", len(over)), Passes(over))


def test_observations_name_the_client_event_only_by_a_string_id() -> None:
    ids = Ledger()
    repair = RepairStage(build_chain(observe_only=True), SessionState(), ids, 1 << 20)
    frame = '{"type":"session.update","event_id":5,"session":{"type":"realtime","temperature":1}}'
    with Playbook(repair) as play:
        play.client(frame).expect(
            Rewrite(None, "session.update", "drop_temperature", "session.temperature", 1, None, False, False),
            Passes(frame),
        )


def test_only_events_a_rule_touched_are_remembered_for_attribution() -> None:
    ids = Ledger()
    untouched = '{"type":"session.update","event_id":"e1","session":{"type":"realtime"}}'
    touched = '{"type":"session.update","event_id":"e2","session":{"type":"realtime","temperature":1}}'
    with Playbook(RepairStage(build_chain(), SessionState(), ids, 1 << 20)) as play:
        play.client(untouched).expect(Passes(untouched))
        play.client(touched).expect(
            Rewrite("e2", "session.update", "drop_temperature", "session.temperature", 1, None, False, True),
            Passes('{"type":"session.update","event_id":"e2","session":{"type":"realtime"}}'),
        )
    assert (ids.rules_for("e1"), ids.rules_for("e2")) == (None, ["drop_temperature"])
