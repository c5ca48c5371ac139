"""How a session is wrapped for upstream failures (issue 25): session continuity (`[continuity]`)
and re-driven in-band responses (`[redrive]`), on conversation routes only."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from realtime_proxy.core.conversation import ConversationMirror
from realtime_proxy.core.interned import interned
from realtime_proxy.core.redrive import RedriveCore, RedrivePolicy, ResponseRedriven
from realtime_proxy.core.resumable import ResumableCore
from realtime_proxy.edge.continuity import Continuity, UpstreamTarget
from realtime_proxy.edge.relay import Core
from realtime_proxy.observe.metrics_upstream import UpstreamMetrics
from realtime_proxy.settings import Settings

if TYPE_CHECKING:  # the otel extra is optional
    from realtime_proxy.observe.otel import SessionTrace


# Conversation sessions in the GA shape only (core.context's route classes): a sideband belongs to a
# WebRTC/SIP call whose peer may already have heard a response, and which the proxy cannot reopen;
# transcription and translation sessions hold no conversation; the Azure preview speaks the beta
# shape the replay is not written in; the Live API and unknown paths are relayed untouched.
RESILIENT_ROUTES = frozenset({"realtime", "azure"})


def wrap_core(
    core: Core,
    settings: Settings,
    *,
    route: str,
    target: UpstreamTarget | None,
    metrics: UpstreamMetrics,
    log: Any,
    rng: random.Random,
    trace: SessionTrace | None,
) -> tuple[Core, Continuity | None]:
    """The core the relay drives (re-drive outermost, then continuity) and the session's continuity."""
    if route not in RESILIENT_ROUTES:
        return core, None
    continuity = None
    if target is not None and settings.continuity.mode == "resume":
        resumable = ResumableCore(core, ConversationMirror(settings.continuity.max_mirror_bytes))
        on_span = trace.on_resumption if trace is not None else None
        continuity = Continuity(
            settings.continuity, settings.handshake_retry, target, resumable, metrics, log, rng, on_span
        )
        core = resumable
    if settings.redrive.enabled:
        r = settings.redrive
        core = RedriveCore(core, interned(RedrivePolicy(r.max_attempts, r.backoff_base, r.backoff_cap)), rng)
    return core, continuity


class Observer(Protocol):
    def observe(self, item: Any) -> None: ...


def counting_redrives(observer: Observer, metrics: UpstreamMetrics) -> Callable[[Any], None]:
    """`observer.observe`, with re-drive outcomes counted first."""
    return _CountingRedrives(observer, metrics.redrives_total)


class _CountingRedrives:
    """Counts re-drive outcomes, then observes. An object with slots, not a closure: its cells and
    function object cost ~350 B in every session (issue 26); it keeps the observer, not its bound
    `observe` (another 64 B)."""

    __slots__ = ("observer", "redrives")

    def __init__(self, observer: Observer, redrives: Any) -> None:
        self.observer, self.redrives = observer, redrives

    def __call__(self, item: Any) -> None:
        if type(item) is ResponseRedriven:
            self.redrives.labels(item.outcome).inc()
        self.observer.observe(item)
