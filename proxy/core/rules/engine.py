"""The rule chain: runs the enabled rules over one client event, all-or-nothing.

A rule bug must never become an outage or a half-rewritten event: any unexpected exception
discards every rewrite and the original event is forwarded."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxy.core.rules import audio, ga_shape, guards, items, tool_choice
from proxy.core.rules.model import Refusal, Refuse, Rewrite, Rule
from proxy.core.session_state import SessionState

__all__ = [
    "ALL_RULES",
    "ChainResult",
    "Refusal",
    "Refuse",
    "Rewrite",
    "Rule",
    "RuleChain",
    "build_chain",
    "rule_by_name",
]


@dataclass
class ChainResult:
    event: dict[str, Any]  # what to forward: the input object itself unless rewrites were applied
    rewrites: list[Rewrite] = field(default_factory=list)
    refusal: Refusal | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (rule name, "ExcType: message")
    observe_only: bool = False

    @property
    def changed(self) -> bool:
        """True when `event` is a rewritten copy that differs from the input."""
        return bool(self.rewrites) and not self.observe_only and self.refusal is None and not self.failures


class RuleChain:
    def __init__(self, rules: Sequence[Rule], *, observe_only: bool = False) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.observe_only = observe_only
        self.event_types: frozenset[str] = frozenset().union(*(r.event_types for r in self.rules))
        # Per type, the matching rules in chain order: one dict lookup per event.
        self._by_type: dict[str, tuple[Rule, ...]] = {
            t: tuple(r for r in self.rules if t in r.event_types) for t in self.event_types
        }

    def apply(self, event: dict[str, Any], state: SessionState) -> ChainResult:
        etype = event.get("type")
        rules = self._by_type.get(etype) if isinstance(etype, str) else None
        if not rules:
            return ChainResult(event, observe_only=self.observe_only)
        work = copy.deepcopy(event)  # the only copy: rules mutate it in place
        rewrites: list[Rewrite] = []
        for rule in rules:
            try:
                rule.apply(work, state, rewrites)
            except Refuse as refuse:
                refusal = Refusal(rule.name, refuse.code, refuse.message, refuse.param)
                return ChainResult(event, refusal=refusal, observe_only=self.observe_only)
            except Exception as exc:
                failure = (rule.name, f"{type(exc).__name__}: {exc}")
                return ChainResult(event, failures=[failure], observe_only=self.observe_only)
        forwarded = event if self.observe_only or not rewrites else work
        return ChainResult(forwarded, rewrites, observe_only=self.observe_only)


# Chain order matters: tools are flattened before tool_choice looks them up, flat audio
# settings are nested before formats are fixed and before the voice guard looks for a voice.
ALL_RULES: tuple[Rule, ...] = (
    tool_choice.TOOL_CHOICE_NULL,
    # Before the flattening rule: a tool copied from the session may be Chat-Completions-shaped.
    tool_choice.TOOL_CHOICE_OBJECT,
    tool_choice.CHAT_COMPLETIONS_TOOLS,
    ga_shape.MODALITIES,
    ga_shape.SESSION_TYPE,
    audio.FLAT_AUDIO,
    audio.AUDIO_FORMAT_STRINGS,
    ga_shape.DROP_TEMPERATURE,
    ga_shape.MAX_TOKENS,
    items.CONTENT_PART_TYPES,
    items.FUNCTION_CALL_OUTPUT_STRING,
    guards.VOICE_AFTER_AUDIO,
    guards.EMPTY_COMMIT,
    guards.TRUNCATE_PAST_AUDIO,
)
_BY_NAME = {rule.name: rule for rule in ALL_RULES}


def rule_by_name(name: str) -> Rule:
    """The built-in rule called `name`; KeyError naming it when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown rule: {name!r}") from None


def build_chain(
    enabled: Mapping[str, bool] | None = None,
    *,
    observe_only: bool = False,
    extra_rules: Sequence[Rule] = (),
) -> RuleChain:
    """The chain of rules enabled by default, overridden per name by `enabled`; extra rules run last."""
    rules = (*ALL_RULES, *extra_rules)
    names = [rule.name for rule in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate rule name(s): {', '.join(duplicates)}")
    overrides = dict(enabled or {})
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"unknown rule name(s): {', '.join(unknown)}; known: {', '.join(names)}")
    return RuleChain(
        [r for r in rules if overrides.get(r.name, r.default_enabled)],
        observe_only=observe_only,
    )
