"""One session between two legs: every message through the core, timers, limits, close mirroring.

Callbacks only (no task, future or queue per message). Every decision is the core's; this module
carries out its actions in order: `None` forwards the message unchanged, otherwise `ToUpstream`,
`ToClient`, `StartTimer`, `CancelTimer`, and any
other action is an observation for the observer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from realtime_proxy.core.actions import Action, CancelTimer, Frame, StartTimer, ToClient, ToUpstream
from realtime_proxy.core.closing import LegClosed, SessionOutcome, Side, close_for_peer, outcome_of
from realtime_proxy.edge.relay_resume import Resumer
from realtime_proxy.edge.upstream_leg import UpstreamLeg
from realtime_proxy.edge.wire import Leg


class Core(Protocol):
    """What the relay needs of the core (a SessionCore, or a wrapper such as a recorder)."""

    def from_client(self, frame: Frame, now: float) -> list[Action] | None: ...
    def from_upstream(self, frame: Frame, now: float) -> list[Action] | None: ...
    def on_timer(self, token: str, now: float) -> list[Action]: ...
    def close(self, now: float) -> list[Action]: ...


@dataclass(frozen=True, slots=True)
class Limits:
    idle_timeout: float = 0.0
    max_duration: float = 0.0
    max_client_fps: float = 0.0


class Relay:
    __slots__ = (
        "_watchdog", "_window_frames", "_window_start", "client", "client_bytes", "client_frames",
        "closed_by", "core", "done", "finishing", "held", "held_bytes", "held_up", "last_activity",
        "limits", "loop", "max_held_bytes", "observe", "on_done", "outcome", "resumer", "resuming",
        "started", "timers", "upstream", "upstream_bytes", "upstream_frames",
    )  # fmt: skip

    def __init__(
        self,
        client: Leg,
        upstream: UpstreamLeg,  # typed: `start` releases the frames it held (no getattr)
        core: Core,
        observe: Callable[[Any], None],
        limits: Limits,
        on_done: Callable[[Relay], None],
    ) -> None:
        self.client, self.upstream, self.core, self.observe = client, upstream, core, observe
        self.limits, self.on_done = limits, on_done
        self.loop = asyncio.get_running_loop()
        self.started = self.last_activity = self.loop.time()
        self.client_frames = self.upstream_frames = self.client_bytes = self.upstream_bytes = 0
        self.outcome = SessionOutcome.ERROR
        self.closed_by = ""
        self.finishing = False  # a leg ended or the proxy stopped the session: nothing more is relayed
        self.done = False
        # Made on first use (None until then), like the holding lists below: ~180 B of empty
        # containers in every idle session otherwise (issue 26).
        self.timers: dict[str, asyncio.TimerHandle] | None = None
        self._window_start, self._window_frames = self.started, 0
        self._watchdog: asyncio.TimerHandle | None = None
        # Continuity: while a new upstream is being opened, client frames (and frames the core sends
        # up from timers) are held, then delivered in order; past max_held_bytes the client is paused.
        self.resumer: Resumer | None = None
        self.resuming = False
        self.held: list[tuple[bytes, bool]] | None = None  # made by begin_resume
        self.held_up: list[Frame] | None = None
        self.held_bytes = 0
        self.max_held_bytes = 4 * 1024 * 1024
        client.peer, upstream.peer = upstream, client
        client.sink = self
        upstream.sink = self

    def start(self) -> None:
        """Begin relaying (the client has its 101); frames the upstream sent early go first."""
        limits = self.limits
        if limits.idle_timeout or limits.max_duration:
            tick = min(t for t in (limits.idle_timeout / 4, limits.max_duration / 4, 1.0) if t > 0)
            self._watchdog = self.loop.call_later(tick, self._watch, tick)
        for leg in (self.client, self.upstream):
            leg.start_keepalive()
        self.upstream.release_early()
        for leg in (self.client, self.upstream):
            if leg.closed or leg.ended:
                self.on_leg_ended(leg)
                if leg.closed:
                    self.on_transport_closed(leg)

    # -- messages -----------------------------------------------------------------------------

    def on_message(self, leg: Leg, data: bytes, text: bool, now: float) -> None:
        if self.finishing:
            return
        peer: Leg
        if leg is self.client:
            if self.resuming:
                self._hold(data, text)
                return
            self.client_frames += 1
            self.client_bytes += len(data)
            self.last_activity = now
            if self.limits.max_client_fps and self._over_rate(now):
                self.stop(SessionOutcome.RATE_LIMITED, 1008, "client frame rate limit exceeded")
                return
            feed, peer = self.core.from_client, self.upstream
        elif leg is self.upstream:
            self.upstream_frames += 1
            self.upstream_bytes += len(data)
            self.last_activity = now
            feed, peer = self.core.from_upstream, self.client
        else:
            return  # a replaced upstream leg
        frame: Frame
        if text:
            try:
                frame = data.decode()  # the UTF-8 check (1007); the core reads text frames as str
            except UnicodeDecodeError as exc:
                leg.fail(1007, f"{exc.reason} at position {exc.start}")
                return
        else:
            frame = data
        actions = feed(frame, now)
        if actions is None:
            peer.send(data, text)
        else:
            self.execute(actions)

    def _over_rate(self, now: float) -> bool:
        self._window_frames += 1
        if now - self._window_start >= 1.0:
            self._window_start, self._window_frames = now, 1
        return self._window_frames > self.limits.max_client_fps

    def execute(self, actions: list[Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is ToUpstream or kind is ToClient:
                frame = action.frame  # type: ignore[union-attr]
                if kind is ToUpstream and self.resuming:
                    if self.held_up is None:
                        self.held_up = []
                    self.held_up.append(frame)
                    continue
                leg = self.upstream if kind is ToUpstream else self.client
                if isinstance(frame, str):
                    leg.send(frame.encode(), True)
                else:
                    leg.send(frame, False)
            elif kind is StartTimer:
                token = action.token  # type: ignore[union-attr]
                timers = self.timers
                if timers is None:
                    timers = self.timers = {}
                old = timers.pop(token, None)
                if old is not None:
                    old.cancel()
                timers[token] = self.loop.call_later(action.delay, self._fire, token)  # type: ignore[union-attr]
            elif kind is CancelTimer:
                handle = self.timers.pop(action.token, None) if self.timers else None  # type: ignore[union-attr]
                if handle is not None:
                    handle.cancel()
            else:
                self.observe(action)

    def _fire(self, token: str) -> None:
        if self.timers is not None:
            self.timers.pop(token, None)
        if self.finishing:
            return
        self.execute(self.core.on_timer(token, self.loop.time()))
        self.client.flush()
        self.upstream.flush()

    # -- endings ------------------------------------------------------------------------------

    def stop(self, outcome: SessionOutcome, code: int, reason: str) -> None:
        """The proxy ends the session (limits, shutdown): both legs get `code` and `reason`."""
        if self.finishing:
            return
        self.finishing = True
        self.outcome, self.closed_by = outcome, "proxy"
        self.client.close(code, reason)
        self.upstream.close(code, reason)

    def abort(self) -> None:
        """Drop both TCP connections now (shutdown after the close bound)."""
        self.client.abort()
        self.upstream.abort()

    def on_leg_ended(self, leg: Leg) -> None:
        if self.finishing or (leg is not self.client and leg is not self.upstream):
            return
        if leg is self.upstream and self.resumer is not None and self.resumer.on_upstream_ended(leg):
            return  # the client keeps its socket; edge.continuity opens a new upstream
        self.finishing = True
        ended = LegClosed(Side(leg.side), leg.ws.close_rcvd, leg.ws.close_sent)
        self.outcome, self.closed_by = outcome_of(ended), leg.side
        peer = self.upstream if leg is self.client else self.client
        peer.close(*close_for_peer(ended))

    def _hold(self, data: bytes, text: bool) -> None:
        """A client frame while resuming (edge.relay_resume)."""
        if self.held is None:
            self.held = []
        self.held.append((data, text))
        self.held_bytes += len(data)
        if self.held_bytes > self.max_held_bytes:
            self.client.pause_reading()  # the rest waits in the kernel and the client's buffers

    def on_transport_closed(self, leg: Leg) -> None:
        if self.done or not (self.client.closed and self.upstream.closed):
            return
        self.done = True
        for handle in [*(self.timers or {}).values(), self._watchdog]:
            if handle is not None:
                handle.cancel()
        self.timers = None
        for action in self.core.close(self.loop.time()):
            if type(action) not in (ToUpstream, ToClient, StartTimer, CancelTimer):
                self.observe(action)
        self.on_done(self)

    def _watch(self, tick: float) -> None:
        if self.finishing:
            return
        now, limits = self.loop.time(), self.limits
        if limits.max_duration and now - self.started >= limits.max_duration:
            self.stop(SessionOutcome.MAX_DURATION, 1001, "session duration limit reached")
        elif limits.idle_timeout and now - self.last_activity >= limits.idle_timeout:
            self.stop(SessionOutcome.IDLE_TIMEOUT, 1000, "idle timeout")
        else:
            self._watchdog = self.loop.call_later(tick, self._watch, tick)

    @property
    def frames(self) -> dict[str, int]:
        """Frames relayed per side (plain ints on the hot path)."""
        return {"client": self.client_frames, "upstream": self.upstream_frames}

    @property
    def bytes(self) -> dict[str, int]:
        return {"client": self.client_bytes, "upstream": self.upstream_bytes}
