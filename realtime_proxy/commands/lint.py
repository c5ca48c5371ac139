"""`realtime-proxy lint FILE`: run recorded client events through the live proxy's rules and session
state, offline, and say what would be rewritten, which API error that prevents, and what is left that
no rule can fix (checked with the bundled simulator's GA strictness).

Input: JSONL (one event per line) or a JSON array. Server events in the file (e.g. `session.updated`,
`response.output_audio.delta`) feed the session state just as they do live. Exit codes: 0 clean,
1 findings, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from realtime_proxy.api.errors import ApiError
from realtime_proxy.api.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES
from realtime_proxy.api.validation import check_item, check_response_create, check_session_update
from realtime_proxy.core.actions import Refusal, Rewrite, RuleError, ToUpstream
from realtime_proxy.core.events import dump, parse_object
from realtime_proxy.core.rules import RuleChain, build_chain, rule_by_name
from realtime_proxy.core.session import CoreOptions, SessionCore
from realtime_proxy.core.session_state import SessionState

_RECORDED_AUDIO = "<"  # --record-dir replaces audio with "<N chars>"


@dataclass
class Finding:
    index: int  # the event's number in the file, from 1 (JSONL: its line, when there are no blank lines)
    event_type: str | None
    event_id: str | None
    kind: str  # "rewrite" | "refusal" | "unfixable" | "rule_error"
    rule: str | None = None
    path: str | None = None
    before: Any = None
    after: Any = None
    prevents: str | None = None
    message: str | None = None
    count: int = 1  # changes the rule made to this event (the first is shown)


@dataclass
class Report:
    events: int = 0
    findings: list[Finding] = field(default_factory=list)


class UnreadableInput(Exception):
    pass


def read_events(path: Path) -> list[Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableInput(f"cannot read {path}: {exc}") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            events = json.loads(stripped)
            return list(events)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise UnreadableInput(f"{path}: not JSON or JSONL ({exc})") from None


def _frame_for_state(event: dict[str, Any]) -> str:
    """A frame whose length matches the original, for state that counts audio bytes."""
    audio = event.get("audio") if event.get("type") == "input_audio_buffer.append" else None
    if isinstance(audio, str) and audio.startswith(_RECORDED_AUDIO) and audio.endswith(" chars>"):
        length = int(audio[1:].split()[0]) if audio[1:].split()[0].isdigit() else 0
        return dump({**event, "audio": "A" * length})
    return dump(event)


def _unfixable(event: dict[str, Any], state: SessionState) -> ApiError | None:
    """What the GA API would still refuse after every repair (as strict as the simulator)."""
    event_type = event.get("type")
    try:
        if event_type == "session.update":
            check_session_update(event.get("session"), state.session_type or "realtime")
        elif event_type == "response.create":
            check_response_create(event.get("response"))
        elif event_type == "conversation.item.create":
            check_item(event.get("item"), "item")
    except ApiError as error:
        return error
    return None


def lint_events(events: list[Any], chain: RuleChain, *, beta_client: bool = False) -> Report:
    """Feed the events to the same `SessionCore` the proxy runs (no retries: nothing is sent)."""
    core = SessionCore(chain, options=CoreOptions(beta_client=beta_client))
    report = Report()
    for number, event in enumerate(events, start=1):
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            report.findings.append(Finding(number, None, None, "unfixable", message="not an event object"))
            continue
        event_type, event_id = event["type"], event.get("event_id")
        if event_type in SERVER_EVENT_TYPES and event_type not in CLIENT_EVENT_TYPES:
            core.from_upstream(dump(event), 0.0)
            continue
        report.events += 1
        if event_type not in CLIENT_EVENT_TYPES:
            message = f"unknown client event type {event_type!r}"
            report.findings.append(Finding(number, event_type, event_id, "unfixable", message=message))
            continue
        frame = _frame_for_state(event)
        sent = through_core(core.from_client(frame, 0.0), frame, number, event_type, event_id, report)
        forwarded = parse_object(sent) if sent is not None else None
        remaining = _unfixable(forwarded, core.state) if forwarded is not None else None
        if remaining is not None:
            report.findings.append(
                Finding(
                    number,
                    event_type,
                    event_id,
                    "unfixable",
                    path=remaining.param,
                    message=f"{remaining.code}: {remaining.message}",
                )
            )
    return report


def through_core(
    actions: Any, frame: str, number: int, event_type: str, event_id: Any, report: Report
) -> str | None:
    """What a core's actions for one client event sent upstream (None: nothing), recording every
    rewrite, refusal and rule error among them as a finding."""
    sent = frame if actions is None else None
    for action in actions or ():
        finding = finding_of(number, event_type, event_id, action)
        if finding is not None:
            report.findings.append(finding)
        elif isinstance(action, ToUpstream) and isinstance(action.frame, str):
            sent = action.frame
    return sent


def finding_of(number: int, event_type: str, event_id: Any, action: Any) -> Finding | None:
    if isinstance(action, Rewrite):
        return Finding(
            number,
            event_type,
            event_id,
            "rewrite",
            rule=action.rule,
            path=action.path,
            before=action.before,
            after=action.after,
            prevents=_prevents(action.rule, action.path),
            count=action.count,
        )
    if isinstance(action, Refusal):
        return Finding(
            number,
            event_type,
            event_id,
            "refusal",
            rule=action.rule,
            message=action.message,
            prevents=action.code,
        )
    if isinstance(action, RuleError):
        return Finding(number, event_type, event_id, "rule_error", rule=action.rule, message=action.error)
    return None


def _prevents(rule: str, path: str) -> str | None:
    """The rule's API error, naming the field this rewrite touched where the rule's text says "{path}"."""
    try:
        return rule_by_name(rule).prevents.replace("{path}", path)
    except KeyError:  # a plug-in rule
        return None


def _short(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


def render_text(report: Report, source: str) -> str:
    lines = []
    for f in report.findings:
        where = f"#{f.index} {f.event_type or '?'}" + (f" ({f.event_id})" if f.event_id else "")
        if f.kind == "rewrite":
            # A Rewrite's None `after` is a removal, also of a field that was null (null_speed).
            after = "(deleted)" if f.after is None else _short(f.after)
            more = f" (and {f.count - 1} more)" if f.count > 1 else ""
            lines.append(f"{where}: {f.rule} would rewrite {f.path}: {_short(f.before)} -> {after}{more}")
            lines.append(f"    prevents: {f.prevents}")
        elif f.kind == "refusal":
            lines.append(f"{where}: {f.rule} would answer instead of forwarding: {f.message}")
        else:
            lines.append(f"{where}: {f.kind}: {f.message}")
    counts = {
        kind: sum(f.count for f in report.findings if f.kind == kind)
        for kind in ("rewrite", "refusal", "unfixable", "rule_error")
    }
    summary = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items() if n) or "clean"
    lines.append(f"{source}: {report.events} client events, {summary}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="realtime-proxy lint",
        description=__doc__.split("\n\n")[0],
        epilog="exit codes: 0 clean, 1 findings, 2 unreadable input or config",
    )
    parser.add_argument("file", type=Path, help="JSONL or JSON array of Realtime events")
    parser.add_argument(
        "--format", choices=["text", "json"], default="text", help="human-readable lines or one JSON document"
    )
    parser.add_argument("--config", help="use the rule switches of this config file")
    parser.add_argument(
        "--beta-client",
        action="store_true",
        help="the events are beta-shaped: translate as the proxy would",
    )
    args = parser.parse_args(argv)
    enabled: dict[str, bool] | None = None
    if args.config:
        from realtime_proxy.settings import ConfigError, load_settings

        try:
            enabled = load_settings(args.config, environ={}).rules.enabled_overrides()
        except ConfigError as exc:
            print(f"realtime-proxy lint: {exc}", file=sys.stderr)
            return 2
    try:
        events = read_events(args.file)
    except UnreadableInput as exc:
        print(f"realtime-proxy lint: {exc}", file=sys.stderr)
        return 2
    from realtime_proxy.commands.lint_live import is_live_recording, lint_live_events

    chain = build_chain(enabled)
    if is_live_recording(events):  # a Live session: Live's core and rules (docs/live.md)
        report = lint_live_events(events, chain)
    else:
        report = lint_events(events, chain, beta_client=args.beta_client)
    if args.format == "json":
        print(
            json.dumps(
                {
                    "file": str(args.file),
                    "events": report.events,
                    "findings": [asdict(f) for f in report.findings],
                },
                indent=2,
            )
        )
    else:
        print(render_text(report, str(args.file)))
    return 1 if report.findings else 0
