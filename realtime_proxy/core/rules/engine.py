"""The rule chain: runs the enabled rules over one client event, all-or-nothing.

A rule bug must never become an outage or a half-rewritten event: any unexpected exception
discards every rewrite and the original event is forwarded."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from realtime_proxy.core.context import SessionContext, session_context
from realtime_proxy.core.rules import audio, ga_shape, guards, items, live, session_fields, tool_choice, tools
from realtime_proxy.core.rules.model import Refuse, Rule, RuleRefusal, RuleRewrite
from realtime_proxy.core.session_state import SessionState

__all__ = [
    "ALL_RULES",
    "ChainResult",
    "Refuse",
    "Rule",
    "RuleChain",
    "RuleRefusal",
    "RuleRewrite",
    "build_chain",
    "rule_by_name",
]


@dataclass
class ChainResult:
    event: dict[str, Any]  # what to forward: the input object itself unless rewrites were applied
    rewrites: list[RuleRewrite] = field(default_factory=list)
    refusal: RuleRefusal | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (rule name, "ExcType: message")
    observe_only: bool = False

    @property
    def changed(self) -> bool:
        """True when `event` is a rewritten copy that differs from the input."""
        return bool(self.rewrites) and not self.observe_only and self.refusal is None and not self.failures


def _by_type(rules: Sequence[Rule]) -> dict[str, tuple[Rule, ...]]:
    types: frozenset[str] = frozenset().union(*(r.event_types for r in rules))
    return {t: tuple(r for r in rules if t in r.event_types) for t in types}


class RuleChain:
    """The enabled rules in order; `per_model` replaces the set for sessions of a given model
    (the `[models.rules]` switches). A rule out of scope for the session (route, session type)
    is skipped. A rule may change the event's type (e.g. `transcription_session.update` ->
    `session.update`): the rules after it that handle the new type then run."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        observe_only: bool = False,
        per_model: Mapping[str, Sequence[Rule]] | None = None,
        forced: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        # Per model entry, the rules `[models.rules.<model>]` switched on explicitly: they run for
        # that model even where their evidence names other model families.
        self.forced: dict[str, frozenset[str]] = dict(forced or {})
        self.observe_only = observe_only
        self.per_model: dict[str, tuple[Rule, ...]] = {m: tuple(rs) for m, rs in (per_model or {}).items()}
        every = [*self.rules, *(r for rs in self.per_model.values() for r in rs)]
        self.event_types: frozenset[str] = frozenset().union(*(r.event_types for r in every))
        # Per type, the matching rules in chain order: one dict lookup per event.
        self._by_type = _by_type(self.rules)
        self._by_model = {m: _by_type(rs) for m, rs in self.per_model.items()}

    def enabled(self, name: str, model: str | None = None) -> bool:
        """Whether rule `name` runs for sessions of `model` (None: the default set)."""
        rules = self.per_model.get(model, self.rules) if model is not None else self.rules
        return any(r.name == name for r in rules)

    def session_context(self, request_target: str, aliases: Mapping[str, str]) -> SessionContext:
        """The context of a session opened with `request_target`, for this chain: the
        transcription model leaves the upstream query only when its rule will put it back."""
        plain = session_context(request_target, aliases=aliases)
        rule = "transcription_handshake_model"
        if self.observe_only or not self.enabled(rule, plain.model):
            return plain
        return session_context(request_target, aliases=aliases, move_transcription_model=True)

    def _model_entry(self, state: SessionState) -> str | None:
        """The `per_model` key for this session: its live model (session.created may report a
        dated snapshot), else the model its handshake asked for; None: the default set."""
        if not self._by_model:
            return None
        for model in (state.live_model, state.context.model):
            if model is not None and model in self._by_model:
                return model
        return None

    def apply(self, event: dict[str, Any], state: SessionState) -> ChainResult:
        etype = event.get("type")
        model = self._model_entry(state)
        index = self._by_model[model] if model is not None else self._by_type
        rules = index.get(etype) if isinstance(etype, str) else None
        if not rules:
            return ChainResult(event, observe_only=self.observe_only)
        forced = self.forced.get(model, frozenset()) if model is not None else frozenset()
        rules = tuple(r for r in rules if r.in_scope(state, forced=r.name in forced))
        if not rules:
            return ChainResult(event, observe_only=self.observe_only)
        work = copy.deepcopy(event)  # the only copy: rules mutate it in place
        rewrites: list[RuleRewrite] = []
        queue = list(rules)
        while queue:
            rule = queue.pop(0)
            if not rule.in_scope(state, forced=rule.name in forced):
                continue
            try:
                rule.apply(work, state, rewrites)
            except Refuse as refuse:
                refusal = RuleRefusal(rule.name, refuse.code, refuse.message, refuse.param)
                return ChainResult(event, refusal=refusal, observe_only=self.observe_only)
            except Exception as exc:
                failure = (rule.name, f"{type(exc).__name__}: {exc}")
                return ChainResult(event, failures=[failure], observe_only=self.observe_only)
            if work.get("type") != etype:  # the rule translated the event: continue as the new type
                etype = work.get("type")
                order = self.rules if model is None else self.per_model[model]
                after = order[order.index(rule) + 1 :] if rule in order else ()
                following = index.get(etype, ()) if isinstance(etype, str) else ()
                queue = [r for r in after if r in following]
        forwarded = event if self.observe_only or not rewrites else work
        return ChainResult(forwarded, rewrites, observe_only=self.observe_only)


# Chain order matters: a translated transcription_session.update then meets the session.update
# rules; tools are narrowed before they are flattened and stripped; flat audio settings are
# nested before formats are fixed and before the voice guard and the transcription model look.
ALL_RULES: tuple[Rule, ...] = (
    session_fields.TRANSCRIPTION_SESSION_UPDATE,
    tool_choice.TOOL_CHOICE_NULL,
    # Before the flattening rule: a tool copied from the session may be Chat-Completions-shaped.
    tool_choice.TOOL_CHOICE_OBJECT,
    tool_choice.TOOL_CHOICE_OBJECT_IN_BAND,
    tool_choice.CHAT_COMPLETIONS_TOOLS,
    tools.FUNCTION_TOOL_FIELDS,
    tools.CHAT_COMPLETIONS_TOOL_CHOICE,
    ga_shape.MODALITIES,
    ga_shape.SESSION_TYPE,
    session_fields.READ_ONLY_SESSION_FIELDS,
    audio.FLAT_AUDIO,
    audio.NULL_SPEED,
    audio.AUDIO_FORMAT_STRINGS,
    session_fields.TRANSCRIPTION_HANDSHAKE_MODEL,
    ga_shape.DROP_TEMPERATURE,
    ga_shape.MAX_TOKENS,
    session_fields.MAX_OUTPUT_TOKENS_BOUNDS,
    items.CONTENT_PART_TYPES,
    items.FUNCTION_CALL_OUTPUT_STRING,
    guards.VOICE_AFTER_AUDIO,
    guards.EMPTY_COMMIT,
    guards.TRUNCATE_PAST_AUDIO,
    *live.LIVE_RULES,  # scoped to the live route (and the Live-model handshake guard to Realtime)
)
_BY_NAME = {rule.name: rule for rule in ALL_RULES}


def rule_by_name(name: str) -> Rule:
    """The built-in rule called `name`; KeyError naming it when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown rule: {name!r}") from None


def _check_names(overrides: Mapping[str, bool], names: list[str]) -> None:
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"unknown rule name(s): {', '.join(unknown)}; known: {', '.join(names)}")


def build_chain(
    enabled: Mapping[str, bool] | None = None,
    *,
    observe_only: bool = False,
    extra_rules: Sequence[Rule] = (),
    per_model: Mapping[str, Mapping[str, bool]] | None = None,
) -> RuleChain:
    """The chain of rules enabled by default, overridden per name by `enabled` and, for sessions
    of a given model, by `per_model[model]` on top; extra rules run last."""
    rules = (*ALL_RULES, *extra_rules)
    names = [rule.name for rule in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate rule name(s): {', '.join(duplicates)}")
    overrides = dict(enabled or {})
    _check_names(overrides, names)
    models: dict[str, list[Rule]] = {}
    forced: dict[str, frozenset[str]] = {}
    for model, switches in (per_model or {}).items():
        _check_names(switches, names)
        merged = {**overrides, **switches}
        models[model] = [r for r in rules if merged.get(r.name, r.default_enabled)]
        forced[model] = frozenset(name for name, on in switches.items() if on)
    return RuleChain(
        [r for r in rules if overrides.get(r.name, r.default_enabled)],
        observe_only=observe_only,
        per_model=models,
        forced=forced,
    )
