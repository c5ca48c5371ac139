from __future__ import annotations

import copy
from typing import Any

import pytest

from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.rules import ChainResult, RuleChain, RuleRefusal, RuleRewrite, rule_by_name
from realtime_proxy.core.session_state import SessionState

# tool_choice_object's evidence is a report on gpt-realtime: the engine applies it there only.
SEEN_ON = SessionContext(model="gpt-realtime")

RETURN_RESPONSE = {
    "type": "function",
    "name": "return_response",
    "description": "Return the response to the agent",
    "parameters": {
        "type": "object",
        "properties": {"response": {"type": "string"}},
        "required": ["response"],
        "additionalProperties": False,
    },
}
LOOKUP = {"type": "function", "name": "lookup", "description": "Look up", "parameters": {"type": "object"}}

# The event from /work/shared/seed-report.txt, verbatim.
SEED = {
    "type": "response.create",
    "response": {
        "instructions": "Summarize the conversation so far",
        "tools": [RETURN_RESPONSE],
        "tool_choice": {"type": "function", "name": "return_response"},
        "conversation": "none",
        "output_modalities": ["text"],
        "metadata": {"response_type": "out-of-band"},
    },
}


def run(name: str, event: dict[str, Any], state: SessionState | None = None) -> ChainResult:
    snapshot = copy.deepcopy(event)
    result = RuleChain([rule_by_name(name)]).apply(event, state or SessionState(SEEN_ON))
    assert event == snapshot
    return result


def test_seed_event_repaired_exactly() -> None:
    result = run("tool_choice_object", SEED)
    expected = copy.deepcopy(SEED)
    expected["response"]["tool_choice"] = "required"
    assert result.event == expected
    assert result.event["response"]["tools"] == [RETURN_RESPONSE]
    assert result.rewrites == [
        RuleRewrite(
            "tool_choice_object",
            "response.tool_choice",
            {"type": "function", "name": "return_response"},
            "required",
            True,
        )
    ]


def test_narrows_response_tools_chat_completions_form() -> None:
    event = {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "tools": [LOOKUP, RETURN_RESPONSE],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        },
    }
    result = run("tool_choice_object", event)
    assert result.event["response"] == {"conversation": "none", "tools": [LOOKUP], "tool_choice": "required"}
    assert result.rewrites[1] == RuleRewrite(
        "tool_choice_object", "response.tools", ["lookup", "return_response"], ["lookup"], True
    )


def confirmed(*tools: dict[str, Any], **session: Any) -> SessionState:
    """A state whose tool list the API reported in session.updated."""
    state = SessionState(SEEN_ON)
    body = {"type": "realtime", "tools": list(tools), **session}
    state.observe_server("session.updated", {"type": "session.updated", "session": body}, "")
    return state


def test_uses_session_tools_out_of_band() -> None:
    state = confirmed(RETURN_RESPONSE, LOOKUP)
    choice = {"type": "function", "name": "lookup"}
    event = {"type": "response.create", "response": {"conversation": "none", "tool_choice": choice}}
    result = run("tool_choice_object", event, state)
    assert result.event["response"] == {"conversation": "none", "tool_choice": "required", "tools": [LOOKUP]}
    assert result.event["response"]["tools"][0] is not state.session_tools[1]
    assert result.rewrites == [
        RuleRewrite("tool_choice_object", "response.tool_choice", choice, "required", True),
        RuleRewrite("tool_choice_object", "response.tools", None, ["lookup"], True),
    ]


def test_in_band_is_a_switch_off_by_default() -> None:
    state = confirmed(RETURN_RESPONSE, LOOKUP)
    event = {"type": "response.create", "response": {"tool_choice": {"type": "function", "name": "lookup"}}}
    assert run("tool_choice_object", event, state).event is event
    assert not rule_by_name("tool_choice_object_in_band").default_enabled
    result = run("tool_choice_object_in_band", event, state)
    assert result.event["response"] == {"tool_choice": "required", "tools": [LOOKUP]}
    assert [r.rule for r in result.rewrites] == ["tool_choice_object_in_band"] * 2
    oob = {"type": "response.create", "response": {**event["response"], "conversation": "none"}}
    assert run("tool_choice_object_in_band", oob, state).event is oob


@pytest.mark.parametrize(
    "state",
    [
        SessionState(SEEN_ON),  # session.created not seen: the tool list is unknown
        confirmed(RETURN_RESPONSE, prompt={"id": "pmpt_1"}),  # a prompt template may add tools
        confirmed(RETURN_RESPONSE, {"type": "mcp", "server_label": "s"}),  # MCP tools are not listed
    ],
    ids=["unknown", "prompt", "mcp"],
)
def test_unknown_tool_set_forwards_unchanged(state: SessionState) -> None:
    event = {
        "type": "response.create",
        "response": {"conversation": "none", "tool_choice": {"type": "function", "name": "lookup"}},
    }
    result = run("tool_choice_object", event, state)
    assert result.event is event and result.refusal is None and result.rewrites == []


def test_client_update_not_yet_confirmed_and_sideband_are_incomplete() -> None:
    event = {
        "type": "response.create",
        "response": {"conversation": "none", "tool_choice": {"type": "function", "name": "x"}},
    }
    state = confirmed(RETURN_RESPONSE)
    state.observe_client("session.update", {"type": "session.update", "session": {"tools": [LOOKUP]}}, "")
    assert run("tool_choice_object", event, state).refusal is None
    sideband = confirmed(RETURN_RESPONSE)
    sideband.context = SessionContext(route="sideband", model="gpt-realtime")
    assert run("tool_choice_object", event, sideband).refusal is None
    own_with_prompt = {
        "type": "response.create",
        "response": {**event["response"], "tools": [LOOKUP], "prompt": {}},
    }
    assert run("tool_choice_object", own_with_prompt).refusal is None


def test_unknown_function_is_refused_when_certain() -> None:
    event = {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "tools": [LOOKUP],
            "tool_choice": {"type": "function", "name": "x"},
        },
    }
    assert run(
        "tool_choice_object",
        {
            "type": "response.create",
            "response": {"conversation": "none", "tool_choice": {"type": "function", "name": "x"}},
        },
        confirmed(LOOKUP),
    ).refusal
    result = run("tool_choice_object", event)
    assert result.event is event
    assert result.refusal == RuleRefusal(
        "tool_choice_object",
        "invalid_tool_choice",
        "tool_choice names function 'x' but no tool with that name is defined in response.tools "
        "or the session",
        "response.tool_choice",
    )


@pytest.mark.parametrize(
    "response",
    [
        {"tool_choice": "auto", "tools": [LOOKUP]},
        {"tool_choice": {"type": "mcp", "server_label": "s", "name": "lookup"}},
        {"tool_choice": {"type": "function"}},
        {"tool_choice": {"type": "function", "name": "lookup"}, "tools": "x"},
        {"tool_choice": {"type": "function", "function": 5}},
        {"tool_choice": 5},
    ],
)
def test_leaves_other_shapes_alone(response: dict[str, Any]) -> None:
    event = {"type": "response.create", "response": response}
    result = run("tool_choice_object", event)
    assert result.event is event and result.refusal is None and result.failures == []


def test_never_touches_session_update() -> None:
    event = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "tools": [LOOKUP],
            "tool_choice": {"type": "function", "name": "lookup"},
        },
    }
    assert run("tool_choice_object", event).event is event


@pytest.mark.parametrize("response", [5, None, "x", [], {"tools": None}])
def test_wrong_types_do_not_crash(response: Any) -> None:
    result = run("tool_choice_object", {"type": "response.create", "response": response})
    assert result.failures == [] and result.rewrites == []


@pytest.mark.parametrize(("etype", "key"), [("session.update", "session"), ("response.create", "response")])
def test_tool_choice_null(etype: str, key: str) -> None:
    result = run("tool_choice_null", {"type": etype, key: {"tool_choice": None}})
    assert result.event == {"type": etype, key: {"tool_choice": "auto"}}
    assert result.rewrites == [RuleRewrite("tool_choice_null", f"{key}.tool_choice", None, "auto", True)]


def test_tool_choice_null_ignores_absent_and_set() -> None:
    for session in ({"type": "realtime"}, {"type": "realtime", "tool_choice": "none"}):
        event = {"type": "session.update", "session": session}
        assert run("tool_choice_null", event).event is event


def test_chat_completions_tools_flattened() -> None:
    chat = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up",
            "parameters": {"type": "object"},
            "strict": True,
        },
    }
    event = {"type": "session.update", "session": {"type": "realtime", "tools": [RETURN_RESPONSE, chat]}}
    result = run("chat_completions_tools", event)
    assert result.event["session"]["tools"] == [RETURN_RESPONSE, LOOKUP]
    assert [(r.path, r.after) for r in result.rewrites] == [("session.tools[1]", LOOKUP)]
    assert result.rewrites[0].before == chat


def test_chat_completions_tools_on_response_and_wrong_types() -> None:
    event = {
        "type": "response.create",
        "response": {"tools": [{"type": "function", "function": {"name": "f"}}]},
    }
    assert run("chat_completions_tools", event).event["response"]["tools"] == [
        {"type": "function", "name": "f"}
    ]
    for tools in ("x", [5, None, {"type": "mcp", "function": {}}], [{"type": "function", "function": "f"}]):
        event = {"type": "response.create", "response": {"tools": tools}}
        assert run("chat_completions_tools", event).event is event


def test_flattened_tools_then_forced_choice_in_full_chain() -> None:
    from realtime_proxy.core.rules import build_chain

    event = {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
        },
    }
    result = build_chain().apply(event, SessionState(SEEN_ON))
    assert result.event["response"] == {
        "conversation": "none",
        "tools": [{"type": "function", "name": "f", "parameters": {}}],
        "tool_choice": "required",
    }
