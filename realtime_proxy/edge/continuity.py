"""Session continuity (issue 25): when the upstream WebSocket drops, closes with a recoverable
code, hits the 60-minute cap, or (at a turn boundary) reaches the configured age, open a new upstream
session on the same URL and credentials, replay what the server had confirmed, and carry on. The
client keeps its socket and never sees the new session's own events.

A response in flight is re-created when nothing of it reached the client (its `response.create`
went up, no `response.created` came back); a response the client saw start is ended with a
`response.done` of status `failed`, code `upstream_connection_lost`. When no resumption is
possible the client is closed with 1013 (the upstream refused) or 1012 (the replay failed).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from realtime_proxy.core.closing import UPSTREAM_RESTARTING, UPSTREAM_UNAVAILABLE, LegClosed, Side
from realtime_proxy.core.events import dump
from realtime_proxy.core.replay import plan_replay
from realtime_proxy.core.resumable import ResumableCore
from realtime_proxy.edge import relay_resume
from realtime_proxy.edge.relay import Relay
from realtime_proxy.edge.replay_sink import ReplayFailed, ReplaySink
from realtime_proxy.edge.upstream import UpstreamFailure, UpstreamOptions
from realtime_proxy.edge.upstream_leg import UpstreamLeg
from realtime_proxy.edge.upstream_retry import Attempt, backoff_policy, open_with_retries
from realtime_proxy.edge.wire import Leg
from realtime_proxy.observe.metrics_upstream import UpstreamMetrics
from realtime_proxy.settings import ContinuitySettings, HandshakeRetrySettings

# Close codes after which the same session may be opened again: going away (the 60-minute cap is
# 1001), internal error, service restart, try again later, bad gateway. Anything else (1000, 1008,
# 4000 refusals, protocol errors) ends the client's session as before.
RESUMABLE_CODES = frozenset({1001, 1011, 1012, 1013, 1014})
LOST_CODE = "upstream_connection_lost"
LOST_MESSAGE = (
    "The connection to the API was lost during this response; the proxy resumed the session on a "
    "new connection. Earlier conversation items are kept; create the response again."
)


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Where and how the session's upstream was opened (credentials stay in memory, never logged)."""

    url: str
    headers: list[tuple[str, str]]
    subprotocols: list[str]
    options: UpstreamOptions


def lost_response_done(response_id: str) -> str:
    error = {"type": "server_error", "code": LOST_CODE, "message": LOST_MESSAGE}
    response: dict[str, Any] = {
        "object": "realtime.response",
        "id": response_id,
        "status": "failed",
        "status_details": {"type": "failed", "error": error},
        "output": [],
        "conversation_id": None,
        "usage": None,
        "metadata": None,
    }
    return dump({"type": "response.done", "event_id": f"proxy_{response_id}_lost", "response": response})


class Continuity:
    __slots__ = (
        "core",
        "log",
        "loop",
        "metrics",
        "on_span",
        "policy",
        "relay",
        "resumptions",
        "rng",
        "settings",
        "target",
        "task",
        "trim_logged",
        "upstream_since",
    )

    def __init__(
        self,
        settings: ContinuitySettings,
        retry: HandshakeRetrySettings,
        target: UpstreamTarget,
        core: ResumableCore,
        metrics: UpstreamMetrics,
        log: Any,
        rng: random.Random,
        on_span: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.settings, self.target, self.core = settings, target, core
        self.policy = backoff_policy(retry, settings.max_attempts)
        self.metrics, self.log, self.rng, self.on_span = metrics, log, rng, on_span
        self.loop = asyncio.get_running_loop()
        self.upstream_since = self.loop.time()
        self.resumptions = 0
        self.task: asyncio.Task[None] | None = None
        self.relay: Relay | None = None
        self.trim_logged = False
        core.hide_expiry = settings.max_resumptions > 0
        core.on_turn_boundary = self._turn_boundary

    def attach(self, relay: Relay) -> None:
        self.relay = relay
        relay.resumer = self

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()

    # -- when ---------------------------------------------------------------------------------

    def on_upstream_ended(self, leg: Leg) -> bool:
        ended = LegClosed(Side(leg.side), leg.ws.close_rcvd, leg.ws.close_sent)
        if self.core.expired:
            cause = "expired"
        elif ended.received is None and (ended.sent is None or ended.sent.code == 1011):
            cause = "dropped"  # TCP gone, or no answer to our keepalive ping
        elif ended.received is not None and ended.received.code in RESUMABLE_CODES:
            cause = "closed"
        else:
            return False
        return self._may_resume() and self._begin(cause)

    def _may_resume(self) -> bool:
        relay = self.relay
        return (
            relay is not None
            and not relay.finishing
            and not relay.resuming
            and self.core.mirror.config is not None  # a Realtime session was opened at all
            and self.resumptions < self.settings.max_resumptions
        )

    def _turn_boundary(self) -> None:
        if self.core.dropped and not self.trim_logged:
            self.trim_logged = True
            mirror = self.core.mirror
            self.log.warning("continuity_mirror_trimmed", max_bytes=mirror.max_bytes, dropped=mirror.trimmed)
        age = self.settings.rollover_age
        if age and self.loop.time() - self.upstream_since >= age and self._may_resume():
            self.loop.call_soon(self._rollover)

    def _rollover(self) -> None:
        relay = self.relay
        if relay is None or not self._may_resume():
            return
        old = relay.upstream
        old.sink = None  # its last frames and its close are no longer the session's
        old.close(1000, "session rollover")
        self._begin("rollover")

    # -- how ----------------------------------------------------------------------------------

    def _begin(self, cause: str) -> bool:
        assert self.relay is not None
        self.resumptions += 1
        relay_resume.begin_resume(self.relay)
        self.log.warning("upstream_resuming", cause=cause, resumption=self.resumptions)
        self.task = self.loop.create_task(self._resume(cause))
        return True

    async def _resume(self, cause: str) -> None:
        relay, started = self.relay, self.loop.time()
        assert relay is not None
        try:
            leg, attempts = await open_with_retries(
                self.target.url,
                self.target.headers,
                self.target.subprotocols,
                self.target.options,
                self.policy,
                self.rng,
                self._report_attempt,
            )
        except UpstreamFailure as failure:
            self._failed(relay, cause, "refused", started, UPSTREAM_UNAVAILABLE, status=failure.status)
            return
        if relay.finishing:
            leg.close(1000, "client gone")
            return
        try:
            sent_items, skipped, sent_bytes, result = await self._replay(leg)
        except (TimeoutError, ReplayFailed) as exc:
            leg.close(1011, "replay failed")
            self._failed(relay, cause, "failed", started, UPSTREAM_RESTARTING, error=str(exc) or "timeout")
            return
        except asyncio.CancelledError:
            leg.abort()
            raise
        self._switch(relay, leg, result.pairs)
        elapsed = self.loop.time() - started
        m = self.metrics
        m.reconnects_total.labels(cause, "resumed").inc()
        m.replayed_items_total.inc(sent_items)
        m.replayed_bytes_total.inc(sent_bytes)
        m.resume_seconds.observe(elapsed)
        details = {
            "cause": cause,
            "attempts": attempts,
            "items": sent_items,
            "bytes": sent_bytes,
            "skipped_items": skipped,  # mirrored, but nothing a replay can carry (no transcript...)
            "refused_items": len(result.errors),
            "trimmed_items": self.core.mirror.trimmed,
            "resume_s": round(elapsed, 4),
        }
        self.log.info("upstream_resumed", **details, errors=result.errors[:5])
        if self.on_span is not None:
            self.on_span({**details, "outcome": "resumed"})

    async def _replay(self, leg: UpstreamLeg) -> tuple[int, int, int, Any]:
        plan = plan_replay(self.core.mirror)
        sink = ReplaySink(plan)
        leg.sink = sink
        sent = 0
        for event in plan.events:
            data = dump(event).encode()
            sent += len(data)
            leg.send(data, True)
        leg.flush()
        leg.release_early()
        async with asyncio.timeout(self.settings.replay_timeout):
            result = await sink.done
        return len(plan.item_ids), plan.skipped, sent, result

    def _switch(self, relay: Relay, leg: UpstreamLeg, pairs: dict[str, str]) -> None:
        core = self.core
        core.ids.reset(pairs)  # empty when the new session kept every id the client knows
        active, pending = core.active, core.pending_create
        core.active = core.pending_create = None
        core.expired = False
        core.hide_expiry = self.resumptions < self.settings.max_resumptions
        self.upstream_since = self.loop.time()
        relay_resume.attach(relay, leg)
        if active is not None:
            relay_resume.inject_from_upstream(relay, lost_response_done(active))
        elif pending is not None:
            relay_resume.send_upstream(relay, core.resend(pending[0]))
        relay_resume.finish_resume(relay)

    def _failed(
        self, relay: Relay, cause: str, outcome: str, started: float, close: tuple[int, str], **extra: Any
    ) -> None:
        self.metrics.reconnects_total.labels(cause, outcome).inc()
        self.log.warning("upstream_resume_failed", cause=cause, outcome=outcome, close_code=close[0], **extra)
        if self.on_span is not None:
            self.on_span(
                {"cause": cause, "outcome": outcome, "resume_s": round(self.loop.time() - started, 4)}
            )
        relay_resume.end_upstream_failed(relay, *close)

    def _report_attempt(self, attempt: Attempt) -> None:
        if attempt.delay is not None:
            self.metrics.handshake_retries_total.labels(attempt.cause.value).inc()
            self.log.warning(
                "upstream_handshake_retry",
                attempt=attempt.number,
                cause=attempt.cause.value,
                status=attempt.status,
                delay_s=round(attempt.delay, 3),
                resumption=self.resumptions,
            )
