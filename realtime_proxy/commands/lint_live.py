"""`realtime-proxy lint` for a recording of a Live session (`/v1/live/sessions`): the events go
through the same Live core the proxy runs for that route (only rules scoped `live` apply), and what
the Live API would still refuse is reported: Realtime event names (the API's `invalid_value` listing
the supported types) and commands sent before `session.start`."""

from __future__ import annotations

from typing import Any

from realtime_proxy.api.errors import LIVE_NOT_STARTED, live_unsupported
from realtime_proxy.api.events import LIVE_CLIENT_EVENT_TYPES, LIVE_RECORDED_SERVER_EVENTS
from realtime_proxy.commands.lint import Finding, Report, through_core
from realtime_proxy.core.context import SessionContext, SessionRoute
from realtime_proxy.core.events import dump, parse_object
from realtime_proxy.core.live_session import LiveSessionCore
from realtime_proxy.core.rules import RuleChain


def is_live_recording(events: list[Any]) -> bool:
    """A Live session's recording: its first client event is `session.start` (Live's required first)."""
    for event in events:
        if isinstance(event, dict) and isinstance(event.get("type"), str):
            return bool(event["type"] == "session.start")
    return False


def lint_live_events(events: list[Any], chain: RuleChain) -> Report:
    core = LiveSessionCore(chain, SessionContext(route=SessionRoute.LIVE))
    report = Report()
    started = False
    for number, event in enumerate(events, start=1):
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            report.findings.append(Finding(number, None, None, "unfixable", message="not an event object"))
            continue
        event_type, event_id = event["type"], event.get("event_id")
        if event_type in LIVE_RECORDED_SERVER_EVENTS:
            core.from_upstream(dump(event), 0.0)
            continue
        report.events += 1
        frame = dump(event)
        sent = through_core(core.from_client(frame, 0.0), frame, number, event_type, event_id, report)
        forwarded = parse_object(sent) if sent is not None else None
        kind = forwarded.get("type") if forwarded is not None else None
        if kind == "session.start":
            started = True
        elif isinstance(kind, str) and kind not in LIVE_CLIENT_EVENT_TYPES:
            error = live_unsupported(kind)
            message = f"{error.code}: {error.message}"
            report.findings.append(
                Finding(number, event_type, event_id, "unfixable", path="type", message=message)
            )
        elif kind is not None and not started:
            message = f"session_not_started: {LIVE_NOT_STARTED}"
            report.findings.append(Finding(number, event_type, event_id, "unfixable", message=message))
    return report
