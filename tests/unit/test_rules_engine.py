from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from realtime_proxy.core.rules import (
    ALL_RULES,
    Refuse,
    Rule,
    RuleChain,
    RuleRefusal,
    RuleRewrite,
    build_chain,
    rule_by_name,
)
from realtime_proxy.core.session_state import SessionState


def _rule(name: str, fn: Any, types: frozenset[str] = frozenset({"x.test"})) -> Rule:
    return Rule(name, "test rule", True, True, types, "nothing", fn)


def _set_a(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    if event.get("a") != 2:
        event["a"] = 2
        event.setdefault("nested", {})["touched"] = True
        out.append(RuleRewrite("set_a", "a", 1, 2, True))


def _boom(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    raise ZeroDivisionError("bad rule")


def _refuse(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    raise Refuse(code="nope", message="refused", param="x.a")


def test_unmatched_event_is_same_object() -> None:
    event = {"type": "input_audio_buffer.append", "audio": "AAAA"}
    result = build_chain().apply(event, SessionState())
    assert result.event is event
    assert (result.rewrites, result.refusal, result.failures, result.changed) == ([], None, [], False)


def test_event_without_type_passes() -> None:
    event: dict[str, Any] = {"type": 5}
    assert build_chain().apply(event, SessionState()).event is event


def test_rewrite_copies_once_and_never_mutates_input() -> None:
    event = {"type": "x.test", "a": 1, "nested": {}}
    snapshot = copy.deepcopy(event)
    result = RuleChain([_rule("set_a", _set_a)]).apply(event, SessionState())
    assert event == snapshot
    assert result.event == {"type": "x.test", "a": 2, "nested": {"touched": True}}
    assert result.rewrites == [RuleRewrite("set_a", "a", 1, 2, True)]
    assert result.changed


def test_matched_but_unchanged_returns_original_object() -> None:
    event = {"type": "x.test", "a": 2}
    result = RuleChain([_rule("set_a", _set_a)]).apply(event, SessionState())
    assert result.event is event and not result.changed


def test_raising_rule_discards_all_rewrites() -> None:
    event = {"type": "x.test", "a": 1}
    chain = RuleChain([_rule("set_a", _set_a), _rule("boom", _boom)])
    result = chain.apply(event, SessionState())
    assert result.event is event
    assert result.rewrites == []
    assert result.failures == [("boom", "ZeroDivisionError: bad rule")]
    assert not result.changed


def test_refuse_returns_original_and_refusal() -> None:
    event = {"type": "x.test", "a": 1}
    result = RuleChain([_rule("set_a", _set_a), _rule("no", _refuse)]).apply(event, SessionState())
    assert result.event is event
    assert result.refusal == RuleRefusal("no", "nope", "refused", "x.a")
    assert result.rewrites == [] and not result.changed


def test_observe_only_reports_but_forwards_original() -> None:
    event = {"type": "x.test", "a": 1}
    result = RuleChain([_rule("set_a", _set_a)], observe_only=True).apply(event, SessionState())
    assert result.event is event and event["a"] == 1
    assert len(result.rewrites) == 1 and not result.changed


def test_observe_only_reports_refusal() -> None:
    event = {"type": "input_audio_buffer.commit"}
    result = build_chain(observe_only=True).apply(event, SessionState())
    assert result.refusal is not None and result.event is event


def test_event_types_is_union() -> None:
    chain = RuleChain([_rule("a", _set_a, frozenset({"p"})), _rule("b", _set_a, frozenset({"q"}))])
    assert chain.event_types == frozenset({"p", "q"})
    assert build_chain().event_types >= {"session.update", "response.create", "input_audio_buffer.commit"}


def test_build_chain_unknown_name_raises() -> None:
    with pytest.raises(ValueError, match="no_such_rule"):
        build_chain({"no_such_rule": True, "drop_temperature": False})


def test_build_chain_enable_disable_and_extra() -> None:
    chain = build_chain({"drop_temperature": False})
    assert "drop_temperature" not in [r.name for r in chain.rules]
    extra = _rule("set_a", _set_a)
    chain = build_chain({"set_a": False}, extra_rules=[extra])
    assert "set_a" not in [r.name for r in chain.rules]
    assert build_chain(extra_rules=[extra]).rules[-1] is extra
    with pytest.raises(ValueError, match="duplicate"):
        build_chain(extra_rules=[_rule("drop_temperature", _set_a)])


def test_every_rule_is_documented_and_unique() -> None:
    names = [r.name for r in ALL_RULES]
    assert len(names) == len(set(names))
    for rule in ALL_RULES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", rule.name)
        assert rule.description and "\n" not in rule.description
        assert rule.prevents and rule.event_types
        assert rule_by_name(rule.name) is rule
    with pytest.raises(KeyError):
        rule_by_name("missing")


def test_chain_order_puts_dependencies_first() -> None:
    names = [r.name for r in ALL_RULES]
    # tool_choice_object may copy a Chat-Completions-shaped tool from the session: flatten after it.
    assert names.index("tool_choice_object") < names.index("chat_completions_tools")
    assert names.index("flat_audio_settings") < names.index("audio_format_strings")
    assert names.index("flat_audio_settings") < names.index("voice_after_audio")


def test_all_rules_enabled_by_default() -> None:
    assert [r.name for r in build_chain().rules] == [r.name for r in ALL_RULES if r.default_enabled]


def test_session_tool_in_chat_completions_shape_is_flattened_once() -> None:
    """Found by hypothesis: a narrowed session tool in Chat Completions shape made the chain
    non-idempotent when flattening ran before narrowing."""
    from realtime_proxy.core.context import SessionContext
    from realtime_proxy.core.session_state import SessionState

    state = SessionState(SessionContext(model="gpt-realtime"))
    state.session_tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    choice = {"type": "function", "name": "f"}
    event = {"type": "response.create", "response": {"conversation": "none", "tool_choice": choice}}
    first = build_chain().apply(event, state)
    assert first.event["response"] == {
        "conversation": "none",
        "tool_choice": "required",
        "tools": [{"type": "function", "name": "f", "parameters": {}}],
    }
    assert build_chain().apply(first.event, state).rewrites == []


def test_rules_are_skipped_outside_their_route_and_session_type() -> None:
    from realtime_proxy.core.context import ROUTES, SessionContext

    rule = Rule(
        "scoped",
        "test",
        True,
        True,
        frozenset({"x.test"}),
        "nothing",
        _set_a,
        routes=frozenset({"realtime"}),
        session_types=frozenset({"realtime"}),
    )
    chain = RuleChain([rule])
    for route in ROUTES:
        event = {"type": "x.test", "a": 1}
        result = chain.apply(event, SessionState(SessionContext(route=route)))
        assert (result.event is event) == (route != "realtime"), route
    live = SessionState()
    live.observe_server(
        "session.created", {"type": "session.created", "session": {"type": "transcription"}}, ""
    )
    event = {"type": "x.test", "a": 1}
    assert chain.apply(event, live).event is event


def test_no_built_in_rule_applies_to_translation_sessions() -> None:
    assert [r.name for r in ALL_RULES if "translation" in r.routes or "translation" in r.session_types] == []
    for rule in ALL_RULES:
        assert rule.evidence, rule.name


def test_per_model_switches() -> None:
    chain = build_chain({"drop_temperature": False}, per_model={"gpt-realtime-2": {"drop_temperature": True}})
    event = {"type": "session.update", "session": {"type": "realtime", "temperature": 1}}
    assert chain.apply(event, SessionState()).event is event
    state = SessionState()
    state.observe_server(
        "session.created", {"type": "session.created", "session": {"model": "gpt-realtime-2"}}, ""
    )
    assert chain.apply(event, state).event["session"] == {"type": "realtime"}
    assert chain.enabled("drop_temperature", "gpt-realtime-2") and not chain.enabled("drop_temperature")
    with pytest.raises(ValueError, match="nope"):
        build_chain(per_model={"m": {"nope": True}})


def test_a_rule_that_changes_the_type_hands_over_to_the_new_types_rules() -> None:
    def to_b(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
        event["type"] = "b"
        out.append(RuleRewrite("to_b", "type", "a", "b", True))

    first = _rule("to_b", to_b, frozenset({"a"}))
    after = _rule("set_a", _set_a, frozenset({"b"}))
    chain = RuleChain([first, after])
    result = chain.apply({"type": "a", "a": 1}, SessionState())
    assert result.event == {"type": "b", "a": 2, "nested": {"touched": True}}
    assert [r.rule for r in result.rewrites] == ["to_b", "set_a"]
    before = RuleChain([after, first])  # a "b" rule that ran before the translation is not re-run
    assert [r.rule for r in before.apply({"type": "a", "a": 1}, SessionState()).rewrites] == ["to_b"]


def test_per_model_switch_falls_back_to_the_handshake_model() -> None:
    """session.created may report a dated snapshot the [models.rules] table does not name."""
    from realtime_proxy.core.context import SessionContext

    chain = build_chain(per_model={"gpt-realtime": {"drop_temperature": False}})
    event = {"type": "session.update", "session": {"type": "realtime", "temperature": 1}}
    state = SessionState(SessionContext(model="gpt-realtime"))
    state.observe_server(
        "session.created", {"type": "session.created", "session": {"model": "gpt-realtime-2025-08-28"}}, ""
    )
    assert chain.apply(event, state).event is event
    other = SessionState(SessionContext(model="gpt-realtime-2"))
    assert chain.apply(event, other).event["session"] == {"type": "realtime"}
