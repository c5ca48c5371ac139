"""Tool and tool_choice repairs (catalogue items 1, 9, 11)."""

from __future__ import annotations

import copy
from typing import Any

from realtime_proxy.core.rules._util import brief, targets
from realtime_proxy.core.rules.model import REALTIME, Refuse, Rule, RuleRewrite
from realtime_proxy.core.session_state import SessionState

_CONFIG_TYPES = frozenset({"session.update", "response.create"})


def _tool_choice_null(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        if "tool_choice" in obj and obj["tool_choice"] is None:
            obj["tool_choice"] = "auto"
            out.append(RuleRewrite("tool_choice_null", f"{prefix}.tool_choice", None, "auto", True))


TOOL_CHOICE_NULL = Rule(
    name="tool_choice_null",
    description='tool_choice: null -> "auto" on session.update and response.create.',
    lossless=True,
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Invalid type for 'session.tool_choice' / 'response.tool_choice' (null)",
    apply=_tool_choice_null,
    session_types=REALTIME,
    evidence="openai/types/realtime/realtime_tool_choice_config_param.py (no null; thin evidence)",
)


def _flatten(tool: dict[str, Any]) -> dict[str, Any]:
    fn: dict[str, Any] = tool["function"]
    flat = {k: v for k, v in tool.items() if k != "function"}
    for key in ("name", "description", "parameters"):
        if key in fn and key not in flat:  # an explicit top-level field wins
            flat[key] = fn[key]
    return flat  # `strict` is dropped: GA function tools have no such field


def _chat_completions_tools(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    for prefix, obj in targets(event):
        tools = obj.get("tools")
        if not isinstance(tools, list):
            continue
        for i, tool in enumerate(tools):
            if (
                isinstance(tool, dict)
                and tool.get("type") == "function"
                and isinstance(tool.get("function"), dict)
            ):
                before = brief(tool)
                tools[i] = _flatten(tool)
                out.append(
                    RuleRewrite(
                        "chat_completions_tools", f"{prefix}.tools[{i}]", before, brief(tools[i]), True
                    )
                )


CHAT_COMPLETIONS_TOOLS = Rule(
    name="chat_completions_tools",
    description="Chat Completions tools {type, function: {name, ...}} -> flat GA {type, name, ...}.",
    lossless=True,
    default_enabled=True,
    event_types=_CONFIG_TYPES,
    prevents="Missing required parameter: 'session.tools[0].name'.",
    apply=_chat_completions_tools,
    session_types=REALTIME,
    evidence="openai/types/realtime/realtime_function_tool_param.py (flat name)",
)


def _forced_name(choice: dict[str, Any]) -> str | None:
    """X of {"type":"function","name":X} or the Chat Completions {"type":"function","function":{"name":X}}."""
    if choice.get("type") != "function":
        return None  # mcp and other forced kinds are left alone
    name = choice.get("name")
    if name is None and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
    return name if isinstance(name, str) else None


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return None
    name = tool.get("name")
    if name is None and isinstance(tool.get("function"), dict):
        name = tool["function"].get("name")  # chat_completions_tools may be disabled
    return name if isinstance(name, str) else None


def _tools_for(response: dict[str, Any], state: SessionState) -> tuple[Any, bool, bool]:
    """(the tools the response will use, whether they are its own, whether the list is complete).

    Incomplete: a prompt template or an MCP server may add tools, a sideband peer may have
    changed the session's, or the API has not yet confirmed the session's list."""
    own = "tools" in response
    tools = response["tools"] if own else state.session_tools
    listed = isinstance(tools, list) and all(
        isinstance(t, dict) and t.get("type", "function") == "function" for t in tools
    )
    complete = listed and "prompt" not in response and (own or state.tools_certain)
    return tools, own, complete


def _narrow(rule: str, event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    """Forcing X == "required" with X as the only tool. Session tools are used for in-band and
    out-of-band responses alike. (With parallel_tool_calls true the model may call X more than once.)"""
    response = event.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("tool_choice"), dict):
        return
    out_of_band = response.get("conversation") == "none"
    if out_of_band != (rule == "tool_choice_object"):
        return
    choice = response["tool_choice"]
    name = _forced_name(choice)
    if name is None:
        return
    tools, own, complete = _tools_for(response, state)
    if not isinstance(tools, list):
        return  # wrong type: leave it for the API to report
    match = next((t for t in tools if _tool_name(t) == name), None)
    if match is None:
        if not complete:
            return  # unknown is not wrong: the tool may exist where the proxy cannot see
        raise Refuse(
            code="invalid_tool_choice",
            message=f"tool_choice names function '{name}' but no tool with that name is defined "
            "in response.tools or the session",
            param="response.tool_choice",
        )
    response["tool_choice"] = "required"
    response["tools"] = [match if own else copy.deepcopy(match)]
    out.append(RuleRewrite(rule, "response.tool_choice", brief(choice), "required", True))
    if not own or len(tools) != 1:  # record the narrowing only when the tool list changed
        names_before = [_tool_name(t) for t in tools] if own else None
        out.append(RuleRewrite(rule, "response.tools", brief(names_before), [name], True))


def _tool_choice_object(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    _narrow("tool_choice_object", event, state, out)


def _tool_choice_object_in_band(event: dict[str, Any], state: SessionState, out: list[RuleRewrite]) -> None:
    _narrow("tool_choice_object_in_band", event, state, out)


_NARROW = (
    'Object tool_choice -> "required" with tools narrowed to that one function; refused only when '
    "the complete tool list is known and lacks it (never on session.update)."
)
TOOL_CHOICE_OBJECT = Rule(
    name="tool_choice_object",
    description=f"Out-of-band response.create: {_NARROW}",
    lossless=True,
    default_enabled=True,
    event_types=frozenset({"response.create"}),
    prevents="response.done failed: server_error, empty output, zero usage (object tool_choice)",
    apply=_tool_choice_object,
    session_types=REALTIME,
    evidence="shared/seed-report.txt (one report, Oct 2025; may be fixed: run `realtime-proxy probe`)",
    models=("gpt-realtime",),
)
TOOL_CHOICE_OBJECT_IN_BAND = Rule(
    name="tool_choice_object_in_band",
    description=f"In-band response.create (off: reports show it working): {_NARROW}",
    lossless=True,
    default_enabled=False,
    event_types=frozenset({"response.create"}),
    prevents="(none evidenced in-band; a switch for models where it fails)",
    apply=_tool_choice_object_in_band,
    session_types=REALTIME,
    evidence="no public failure report in-band",
)
