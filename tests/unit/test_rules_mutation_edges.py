"""Rule-module edges that mutation testing found unguarded: a tool the rule skips must not end the
scan of the tools after it, odd tool_choice shapes are left alone, and an observe-only chain says so
in every result (a refusal or a rule failure included). Pure."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from realtime_proxy.core.rules import Refuse, Rule, RuleChain, RuleRewrite, rule_by_name
from realtime_proxy.core.session_state import SessionState


def apply(rule: str, event: dict[str, Any]) -> Any:
    result = RuleChain([rule_by_name(rule)]).apply(copy.deepcopy(event), SessionState())
    assert result.failures == []
    return result


def test_fields_are_stripped_from_function_tools_after_ones_the_rule_skips() -> None:
    tools = [
        5,
        {"type": "mcp", "server_label": "s", "strict": True},
        {"type": "function", "description": "no name yet", "strict": True},
        {"name": "untyped", "parameters": {}, "strict": True},  # no type: a function tool
    ]
    event = {"type": "session.update", "session": {"type": "realtime", "tools": tools}}
    result = apply("function_tool_fields", event)
    assert result.event["session"]["tools"] == [*tools[:3], {"name": "untyped", "parameters": {}}]
    assert result.rewrites == [
        RuleRewrite("function_tool_fields", "session.tools[3].strict", True, None, False)
    ]


@pytest.mark.parametrize(
    "choice",
    [
        {"type": "function", "name": "a", "function": {"name": "b"}},  # already flat: its name wins
        {"type": "mcp", "server_label": "s", "function": {"name": "b"}},
        {"type": "function", "function": "b"},
        {"type": "function", "function": {"name": 5}},
        "auto",
    ],
)
def test_tool_choice_shapes_the_rule_does_not_own_are_left_alone(choice: Any) -> None:
    event = {"type": "session.update", "session": {"type": "realtime", "tool_choice": choice}}
    result = apply("chat_completions_tool_choice", event)
    assert result.event == event and result.rewrites == []


def test_a_chat_completions_tool_choice_is_flattened() -> None:
    event = {
        "type": "session.update",
        "session": {"type": "realtime", "tool_choice": {"type": "function", "function": {"name": "f"}}},
    }
    result = apply("chat_completions_tool_choice", event)
    assert result.event["session"]["tool_choice"] == {"type": "function", "name": "f"}


def _rule(name: str, fn: Any) -> Rule:
    return Rule(name, "test rule", True, True, frozenset({"x.test"}), "nothing", fn)


def _refuse(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    raise Refuse(code="nope", message="refused", param="x.a")


def _boom(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    raise ZeroDivisionError("bad rule")


@pytest.mark.parametrize("observe_only", [True, False])
@pytest.mark.parametrize("fn", [_refuse, _boom, None])
def test_every_result_says_whether_the_chain_only_observes(observe_only: bool, fn: Any) -> None:
    rules = [_rule("r", fn)] if fn is not None else []
    result = RuleChain(rules, observe_only=observe_only).apply({"type": "x.test"}, SessionState())
    assert result.observe_only is observe_only
    assert (result.refusal is not None, bool(result.failures)) == (fn is _refuse, fn is _boom)
