"""What happens when a session's relay ends: the session metrics and the `session_closed` line.

One small object per session with its fields in slots, where a closure over the builder's locals
kept ~10 cells and a function object alive for the whole session (~570 B per idle session;
issue 26)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from realtime_proxy.edge.continuity import Continuity
from realtime_proxy.edge.relay import Relay
from realtime_proxy.edge.wire import Leg
from realtime_proxy.observe.metrics import CLOSE_CODES, Metrics
from realtime_proxy.observe.observe import SessionObserver


class SessionEnd:
    __slots__ = ("client", "continuity", "log", "metrics", "observer", "on_end", "route", "started")

    def __init__(
        self,
        *,
        client: Leg,
        continuity: Continuity | None,
        log: Any,
        metrics: Metrics,
        observer: SessionObserver,
        on_end: Callable[[Relay], None],
        route: str,
        started: float,
    ) -> None:
        self.client, self.continuity, self.log, self.metrics = client, continuity, log, metrics
        self.observer, self.on_end, self.route, self.started = observer, on_end, route, started

    def __call__(self, relay: Relay) -> None:
        continuity, metrics, route, client = self.continuity, self.metrics, self.route, self.client
        if continuity is not None:
            continuity.close()
        upstream = relay.upstream  # the last one, after any resumption
        metrics.sessions_active.dec()
        duration = time.monotonic() - self.started
        metrics.sessions_total.labels(relay.outcome).inc()
        metrics.session_duration.observe(duration)
        metrics.live.sessions_closed.labels(route, relay.outcome).inc()
        if route == "live":
            metrics.live.session_duration.observe(duration)
        for side, leg in (("client", client), ("upstream", upstream)):
            if leg.ws.close_rcvd is not None:
                metrics.closes_total.labels(side, close_label(leg.ws.close_rcvd.code)).inc()
        self.log.info(
            "session_closed",
            duration_s=round(duration, 3),
            outcome=relay.outcome,
            closed_by=relay.closed_by,
            frames_from_client=relay.frames["client"],
            frames_from_upstream=relay.frames["upstream"],
            bytes_from_client=relay.bytes["client"],
            bytes_from_upstream=relay.bytes["upstream"],
            client_close=close_desc(client),
            upstream_close=close_desc(upstream),
            resumptions=continuity.resumptions if continuity is not None else 0,
            **self.observer.summary(),
        )
        self.observer.end(relay.outcome)
        self.on_end(relay)


def close_desc(leg: Leg) -> dict[str, Any]:
    rcvd, sent = leg.ws.close_rcvd, leg.ws.close_sent
    either = rcvd or sent
    return {
        "received": rcvd.code if rcvd else None,
        "sent": sent.code if sent else None,
        "reason": either.reason if either else None,
    }


def close_label(code: int) -> str:
    return str(code) if str(code) in CLOSE_CODES else "other"
