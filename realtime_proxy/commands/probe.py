"""`realtime-proxy probe`: which rules does each model still need?

For every rule with a probe case (`probe_cases.PROBES`) and every model asked for, opens a
throwaway session straight to the API (no proxy), sends the rule's failing event and records
whether the API still refuses it; then, in a fresh session, sends the event as the rule repairs
it and records whether the API takes that. Costs next to nothing (see `probe_cases`). Needs
`OPENAI_API_KEY` (sent as `Authorization: Bearer`, never printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass, replace
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime_proxy.commands.probe_cases import NOT_PROBED, PROBES, Probe
from realtime_proxy.core.context import session_context, upstream_target
from realtime_proxy.core.rules import RuleChain, rule_by_name
from realtime_proxy.core.session_state import SessionState
from realtime_proxy.edge.failure_cause import cause_of

DEFAULT_MODELS = ("gpt-realtime", "gpt-realtime-2")
_SETUP_ANSWERS = {"conversation.item.create": ("conversation.item.added", "conversation.item.created")}
_DETAIL = 100  # characters of an error message shown in the text report


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    detail: str  # the API's error text, the close code, or what it answered


@dataclass(frozen=True)
class ProbeResult:
    model: str
    rule: str
    failing: Outcome | None  # None: not probed (see `note`)
    repaired: Outcome | None
    note: str = ""
    unreached: bool = False  # no session could be opened: nothing is known about this rule

    @property
    def still_needed(self) -> bool | None:
        """None when not probed: a probe that reached nothing claims nothing."""
        return None if self.failing is None else not self.failing.accepted


async def _open(
    base: str, target: str, key: str, answer_s: float, live_start: dict[str, Any] | None = None
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(
        base.rstrip("/") + target,
        additional_headers={"Authorization": f"Bearer {key}"},
        open_timeout=answer_s,
    )
    async with asyncio.timeout(answer_s):
        if live_start is None:  # Realtime speaks first (session.created)
            return ws, json.loads(await ws.recv())
        await ws.send(json.dumps(live_start))  # Live: the client starts, then waits for session.started
        while (started := json.loads(await ws.recv())).get("type") not in ("session.started", "error"):
            pass
    return ws, started


async def _answer(ws: ClientConnection, probe: Probe, answer_s: float) -> Outcome:
    """Read until the API answers the event sent with id "probe" (or closes the socket)."""
    try:
        async with asyncio.timeout(probe.quiet_is_accepted or answer_s):
            while True:
                event = json.loads(await ws.recv())
                kind = event.get("type")
                error = event.get("error") if kind == "error" else None
                about = (
                    error.get("event_id") or error.get("client_event_id") if isinstance(error, dict) else None
                )
                if isinstance(error, dict) and about in ("probe", None):
                    return Outcome(False, f"{error.get('code')}: {error.get('message')}")
                if kind in probe.accepted:
                    response = event.get("response") or {}
                    if kind == "response.done" and response.get("status") == "failed":
                        details = (response.get("status_details") or {}).get("error") or {}
                        return Outcome(
                            False, f"response failed: {details.get('type') or details.get('code')}"
                        )
                    return Outcome(True, kind)
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else None
        return Outcome(False, f"socket closed {code}")
    except TimeoutError:
        if probe.quiet_is_accepted:  # Live acknowledges no item: silence without an error is acceptance
            return Outcome(True, f"no error in {probe.quiet_is_accepted:g} s")
        return Outcome(False, "no answer in time")


async def _send(ws: ClientConnection, probe: Probe, event: dict[str, Any], answer_s: float) -> Outcome:
    for setup in probe.setup:
        await ws.send(json.dumps(setup))
        answered_by = _SETUP_ANSWERS.get(str(setup.get("type")))
        if answered_by is not None:  # its answer must not be taken for the probe's
            async with asyncio.timeout(answer_s):
                while json.loads(await ws.recv()).get("type") not in (*answered_by, "error"):
                    pass
    await ws.send(json.dumps({**event, "event_id": "probe"}))
    return await _answer(ws, probe, answer_s)


async def _failing(base: str, probe: Probe, model: str, key: str, answer_s: float) -> Outcome:
    ws, _ = await _open(base, probe.target(model), key, answer_s, probe.live_start)
    try:
        return await _send(ws, probe, probe.event, answer_s)
    finally:
        await ws.close()


async def _repaired(base: str, probe: Probe, model: str, key: str, answer_s: float) -> Outcome:
    """The event as the rule alone repairs it, with the state the proxy would have."""
    context = session_context(probe.target(model), move_transcription_model=True)
    target = upstream_target(probe.target(model), context, {})
    ws, created = await _open(base, target, key, answer_s, probe.live_start)
    try:
        state = SessionState(context)
        state.observe_server(created.get("type"), created, "")
        for setup in probe.setup:
            state.observe_client(setup.get("type"), setup, json.dumps(setup))
        result = RuleChain([rule_by_name(probe.rule)]).apply(probe.event, state)
        if result.refusal is not None:
            return Outcome(True, f"answered by the proxy ({result.refusal.code}), nothing sent")
        if not result.rewrites:
            return Outcome(False, "the rule did not change the event")
        return await _send(ws, probe, result.event, answer_s)
    finally:
        await ws.close()


async def run_probes(
    base: str,
    key: str,
    models: list[str],
    rules: list[str] | None = None,
    answer_s: float = 15.0,
    quiet_s: float | None = None,
) -> list[ProbeResult]:
    """`quiet_s`: the silence that means "accepted" for Live events the API does not acknowledge."""
    results: list[ProbeResult] = []
    for model in models:
        for probe in PROBES:
            if rules and probe.rule not in rules:
                continue
            if quiet_s is not None and probe.quiet_is_accepted:
                probe = replace(probe, quiet_is_accepted=quiet_s)
            try:
                failing = await _failing(base, probe, model, key, answer_s)
                repaired = await _repaired(base, probe, model, key, answer_s)
            except (OSError, InvalidStatus, TimeoutError) as exc:
                note = f"could not open a session: {_reason(exc)}"
                results.append(ProbeResult(model, probe.rule, None, None, note, unreached=True))
                continue
            results.append(ProbeResult(model, probe.rule, failing, repaired))
        for rule, reason in NOT_PROBED.items():
            if not rules or rule in rules:
                results.append(ProbeResult(model, rule, None, None, f"not probed: {reason}"))
    return results


def _reason(exc: BaseException) -> str:
    """Why no session opened, as its cause (dns, refused, tls, timeout, http_status) and type: the
    exception's own text may quote the URL."""
    if isinstance(exc, InvalidStatus):
        return f"http_status {exc.response.status_code}"
    return f"{cause_of(exc)} ({type(exc).__name__})"


def render(results: list[ProbeResult]) -> str:
    lines: list[str] = []
    for model in dict.fromkeys(r.model for r in results):
        rows = [r for r in results if r.model == model]
        lines.append(f"model {model}")
        for r in rows:
            if r.failing is None or r.repaired is None:
                lines.append(f"  {r.rule:<32} {r.note}")
                continue
            verdict = "NEEDED    " if r.still_needed else "not needed"
            fails = f"fails: {r.failing.detail[:_DETAIL]}" if r.still_needed else "accepted as sent"
            fixed = "repaired: ok" if r.repaired.accepted else f"repaired: FAILS {r.repaired.detail}"
            lines.append(f"  {r.rule:<32} {verdict}  {fails}; {fixed}")
        probed = [r for r in rows if r.failing is not None]
        unreached = sum(r.unreached for r in rows)
        if not probed:
            lines.append(f"  -> nothing probed: no session could be opened for {unreached} rules")
            continue
        needed = sum(bool(r.still_needed) for r in probed)
        broken = sum(1 for r in probed if r.repaired is not None and not r.repaired.accepted)
        lines.append(
            f"  -> {needed} of {len(probed)} probed failures still reproduce; "
            f"{broken} repaired events refused" + (f"; {unreached} rules not reached" if unreached else "")
        )
    return "\n".join(lines)


async def _probe(args: argparse.Namespace, key: str, models: list[str]) -> list[ProbeResult]:
    if not args.fake_upstream:
        return await run_probes(args.upstream_url, key, models, args.rule, args.timeout, args.quiet)
    from realtime_proxy.fake_upstream import FakeUpstream

    async with FakeUpstream(delta_interval=0.001) as fake:
        return await run_probes(fake.url, key, models, args.rule, args.timeout, args.quiet)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="realtime-proxy probe",
        description="Send each rule's failing event, then its repair, straight to the API (OPENAI_API_KEY).",
    )
    parser.add_argument("--upstream-url", default="wss://api.openai.com", help="default wss://api.openai.com")
    parser.add_argument("--model", action="append", help=f"repeatable; default {', '.join(DEFAULT_MODELS)}")
    parser.add_argument("--rule", action="append", help="probe only these rules (repeatable)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per answer (default 15)")
    parser.add_argument(
        "--quiet", type=float, help="seconds of silence that mean a Live event was accepted (default 2)"
    )
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--fake-upstream", action="store_true", help="probe the bundled simulator (no key)")
    args = parser.parse_args(argv)
    key = os.environ.get("OPENAI_API_KEY", "") or ("sk-simulator" if args.fake_upstream else "")
    if not key:
        print(
            "realtime-proxy probe: set OPENAI_API_KEY (the probe talks to the API directly)", file=sys.stderr
        )
        return 2
    models = args.model or list(DEFAULT_MODELS)
    results = asyncio.run(_probe(args, key, models))
    if args.format == "json":
        print(json.dumps([asdict(r) | {"still_needed": r.still_needed} for r in results], indent=2))
    else:
        print(render(results))
    unreached = sum(r.unreached for r in results)
    if unreached:  # an incomplete answer is not a success, and none at all least of all
        print(f"realtime-proxy probe: {unreached} probes could not open a session", file=sys.stderr)
        return 1
    return 0
