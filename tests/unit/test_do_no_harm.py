"""First, do no harm, as a property: every client event the newest `openai` SDK's types accept, on every
route and model, through the real core with shipped defaults, goes out byte for byte unless a rule
fired whose recorded evidence covers that model and route (judged by tests/noharm.py from the rules'
metadata). Plus hand-written sessions with known ground truth for the stateful guards, each a
regression test for one of issue 21's four causes (they fail on the main it was filed against)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.rules import build_chain
from realtime_proxy.edge.http.repair import repair_body
from realtime_proxy.edge.http.routes import classify
from tests import noharm, sdk_events
from tests.noharm_sessions import SCENARIOS, Scenario

FAST = settings(
    max_examples=100,
    derandomize=True,  # the same examples on every run: CI never flakes on a new draw
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
_GA_ROUTES = [r for r in noharm.TARGETS if r != "translation"]


def test_every_client_event_type_of_the_sdk_has_a_strategy() -> None:
    kinds = {sdk_events.event_type_of(td) for td in sdk_events.REALTIME_EVENTS}
    assert len(kinds) == 11 and {"conversation.item.truncate", "output_audio_buffer.clear"} <= kinds
    translation = {sdk_events.event_type_of(td) for td in sdk_events.TRANSLATION_EVENTS}
    assert translation == {"session.update", "session.input_audio_buffer.append", "session.close"}


@pytest.mark.parametrize("td", sdk_events.REALTIME_EVENTS, ids=sdk_events.event_type_of)
def test_a_valid_realtime_event_is_never_harmed(td: type) -> None:
    @FAST
    @given(
        event=sdk_events.typeddict_strategy(td),
        route=st.sampled_from(_GA_ROUTES),
        model=st.sampled_from(noharm.MODELS),
    )
    def check(event: dict[str, Any], route: str, model: str | None) -> None:
        verdict = noharm.judge(noharm.Session(route, model), event)
        assert verdict.harmful is None, (route, model, verdict, event)
        if route in noharm.UNTOUCHED:
            assert verdict.outcome == "unchanged", (route, verdict, event)

    check()


@pytest.mark.parametrize("td", sdk_events.TRANSLATION_EVENTS, ids=sdk_events.event_type_of)
def test_a_valid_translation_event_goes_out_byte_for_byte(td: type) -> None:
    @FAST
    @given(event=sdk_events.typeddict_strategy(td), model=st.sampled_from(noharm.MODELS))
    def check(event: dict[str, Any], model: str | None) -> None:
        verdict = noharm.judge(noharm.Session("translation", model), event)
        assert verdict.outcome == "unchanged", (verdict, event)

    check()


HTTP_PATHS = (
    ("POST", "/v1/realtime/client_secrets"),
    ("POST", "/openai/v1/realtime/client_secrets"),
    ("POST", "/v1/realtime/calls/rtc_1/accept"),
    ("POST", "/v1/responses"),  # not a Realtime route: never read
    ("POST", "/v1/live/sessions"),
)


@pytest.mark.parametrize("td", sdk_events.SESSION_BODIES, ids=lambda td: td.__name__)
def test_a_valid_http_session_body_is_never_harmed(td: type) -> None:
    chain = build_chain()

    @FAST
    @given(session=sdk_events.typeddict_strategy(td), where=st.sampled_from(HTTP_PATHS))
    def check(session: dict[str, Any], where: tuple[str, str]) -> None:
        route = classify(*where)
        body = {"session": session} if route.name.endswith("client_secrets") else session
        raw = orjson.dumps(body, option=orjson.OPT_INDENT_2)  # a layout the proxy never writes
        repaired = repair_body(route.body, "application/json", raw, chain)
        if repaired.body == raw:
            return
        assert route.name != "other", where
        assert repaired.result is not None
        model = session.get("model") if isinstance(session.get("model"), str) else None
        for rewrite in repaired.result.rewrites:
            assert noharm.evidence_covers(rewrite.rule, "realtime", model), (rewrite, session)

    check()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_stateful_guards_against_known_ground_truth(scenario: Scenario) -> None:
    verdict = scenario.run()
    assert verdict.outcome == scenario.expected, (scenario.cause, verdict)
    assert verdict.harmful is None


@pytest.mark.parametrize(
    ("target", "route"),
    [
        ("/v1/realtime?model=gpt-realtime", "realtime"),
        ("/v1/realtime/?model=gpt-realtime-2", "realtime"),
        ("/v1/realtime?intent=transcription", "transcription"),
        ("/v1/realtime/translations?model=gpt-realtime-translate", "translation"),
        ("/v1/realtime?call_id=rtc_1", "sideband"),
        ("/openai/v1/realtime?model=dep", "azure"),
        ("/openai/realtime?api-version=2025-04-01-preview&deployment=dep", "azure_preview"),
        ("/v1/live/sessions", "live"),
        ("/v1/live/sessions/sess_1/sideband", "live"),
        ("/v1/responses", "other"),
        ("/", "other"),
        ("/v1/realtime/calls", "other"),
        ("/v1/realtimex", "other"),
    ],
)
def test_route_table(target: str, route: str) -> None:
    from realtime_proxy.core.context import session_context

    context = session_context(target)
    assert context.route == route
    assert context.untouched == (route in ("live", "other"))


def test_a_live_session_is_never_held_waiting_for_a_response_done() -> None:
    """Live sends no response.done: the second response.create used to be held until the socket closed."""
    session = noharm.Session("live", None)
    for n in range(3):
        frame = noharm.odd_frame({"type": "response.create", "event_id": f"c{n}"})
        assert session.client(frame) is None  # forwarded as received, nothing built
        session.server({"type": "response.event", "event": {"type": "response.output_text.delta"}})


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-realtime", "gpt-realtime"),
        ("gpt-realtime-2025-08-28", "gpt-realtime"),
        ("gpt-realtime-2", "gpt-realtime-2"),
        ("gpt-realtime-mini-2025-10-06", "gpt-realtime-mini"),
        (None, None),
    ],
)
def test_model_families(model: str | None, family: str | None) -> None:
    from realtime_proxy.core.context import model_family

    assert model_family(model) == family


def test_the_models_table_switches_a_rule_on_for_another_model() -> None:
    from realtime_proxy.core.session_state import SessionState

    create = {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "tools": [noharm.TOOL],
            "tool_choice": {"type": "function", "name": "lookup"},
        },
    }
    state = SessionState(SessionContext(model="gpt-realtime-2"))
    assert build_chain().apply(create, state).rewrites == []
    forced = build_chain(per_model={"gpt-realtime-2": {"tool_choice_object": True}})
    assert [r.rule for r in forced.apply(create, state).rewrites] == ["tool_choice_object"]
    # A switch for another model changes nothing here; an unknown model is not known to need it.
    other = build_chain(per_model={"gpt-realtime-mini": {"tool_choice_object": True}})
    assert other.apply(create, state).rewrites == []
    assert build_chain().apply(create, SessionState()).rewrites == []


@pytest.mark.parametrize(
    "item",
    [
        {"type": "mcp_approval_response", "id": "i1", "approval_request_id": "a1", "approve": True},
        {"type": "mcp_list_tools", "server_label": "s", "tools": []},
        {"type": "mcp_call", "id": "i2", "arguments": "{}", "name": "n", "server_label": "s"},
        {"type": "mcp_approval_request", "id": "i3", "arguments": "{}", "name": "n", "server_label": "s"},
        {"type": "message", "role": "user", "content": [{"text": "no type: optional in the types"}]},
    ],
)
def test_the_simulator_and_lint_accept_what_the_sdk_types_accept(item: dict[str, Any]) -> None:
    from realtime_proxy.api.validation import check_item

    assert check_item(item, "item") is item


def test_the_dtmf_server_event_is_known() -> None:
    from realtime_proxy.api.events import SERVER_EVENT_TYPES

    assert "input_audio_buffer.dtmf_event_received" in SERVER_EVENT_TYPES


def test_playbook_an_untouched_core_only_observes() -> None:
    """Turn-taking, retries and beta translation configured, on a Live route: nothing is held,
    named, tagged, rewritten or answered; the whole action sequence is the fast path."""
    from realtime_proxy.core.orchestration_observations import OrchestrationOptions
    from realtime_proxy.core.retry import ResponseRetrier, RetryPolicy
    from realtime_proxy.core.session import CoreOptions, SessionCore
    from tests.playbook import Playbook, Untouched

    options = CoreOptions(beta_client=True, orchestration=OrchestrationOptions(), untouched=True)
    retrier = ResponseRetrier(RetryPolicy(), random.Random(0))
    core = SessionCore(build_chain(), retrier=retrier, options=options, context=SessionContext(route="live"))
    create = {"type": "response.create", "response": {"conversation": "none", "tool_choice": None}}
    with Playbook(core) as play:
        play.client(create).expect(Untouched())
        play.client({"type": "response.create"}).expect(Untouched())  # not held: no response.done comes
        play.client({"type": "input_audio_buffer.commit"}).expect(Untouched())  # not answered
        play.client({"type": "session.update", "session": {"voice": "alloy"}}).expect(Untouched())
        play.server({"type": "error", "error": {"event_id": "proxy_evt_1"}}).expect(Untouched())
        play.server({"type": "response.event", "event": {"type": "x"}}).expect(Untouched())
        play.close().expect()
