"""The thin asyncio relay of one session: two pumps, timers, close mirroring. The only code that awaits
frames; every decision is the core's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from proxy.core.actions import Action, CancelTimer, Frame, Observation, StartTimer, ToClient, ToUpstream
from proxy.core.closing import LegClosed, close_for_peer, outcome_of
from proxy.core.session import SessionCore
from proxy.ops.observe import SessionObserver

Handler = Callable[[Frame, float], list[Action] | None]


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The proxy itself ends the session (limits, shutdown): both legs get `code` and `reason`.
    Returned by a pump or set by `Relay.stop`."""

    outcome: str
    code: int
    reason: str


class Relay:
    def __init__(
        self,
        client: Connection,
        upstream: Connection,
        core: SessionCore,
        observer: SessionObserver,
        *,
        idle_timeout: float = 0.0,
        max_duration: float = 0.0,
        max_client_fps: float = 0.0,
    ) -> None:
        self.client, self.upstream, self.core, self.observer = client, upstream, core, observer
        self.loop = asyncio.get_running_loop()
        self.idle_timeout, self.max_duration, self.max_client_fps = idle_timeout, max_duration, max_client_fps
        self.last_activity = self.loop.time()
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.timer_tasks: set[asyncio.Task[None]] = set()
        self.stopping: asyncio.Future[SessionEnded] = self.loop.create_future()
        self.frames = {"client": 0, "upstream": 0}
        self.bytes = {"client": 0, "upstream": 0}
        self.outcome = "error"
        self.closed_by = ""

    def stop(self, outcome: str, code: int, reason: str) -> None:
        """End the session from outside (shutdown): both sides get `code`."""
        if not self.stopping.done():
            self.stopping.set_result(SessionEnded(outcome, code, reason))

    async def run(self) -> None:
        pumps = {
            asyncio.create_task(self._pump(self.client, self.upstream, self.core.from_client, "client")),
            asyncio.create_task(self._pump(self.upstream, self.client, self.core.from_upstream, "upstream")),
        }
        watchdog = asyncio.create_task(self._watchdog()) if self.idle_timeout or self.max_duration else None
        waiters: set[asyncio.Future[Any]] = {*pumps, self.stopping}
        tasks = [*pumps, *(t for t in [watchdog] if t)]
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            first = next(iter(done))
            # Stop the pumps before closing: `_close` then owns recv on both legs (see there).
            await _cancel_all(tasks)
            await self._finish(first)
        finally:
            await _cancel_all(tasks)
            self._cancel_timers()
            for action in self.core.close(self.loop.time()):
                if isinstance(action, Observation):
                    self.observer.observe(action)

    async def _finish(self, first: asyncio.Future[Any]) -> None:
        ended: LegClosed | SessionEnded | None = first.result() if not first.cancelled() else None
        if isinstance(ended, SessionEnded):
            self.outcome, self.closed_by = ended.outcome, "proxy"
            await asyncio.gather(
                self._close(self.client, ended.code, ended.reason),
                self._close(self.upstream, ended.code, ended.reason),
            )
            return
        assert isinstance(ended, LegClosed)
        self.outcome, self.closed_by = outcome_of(ended), ended.side
        code, reason = close_for_peer(ended)
        peer = self.upstream if ended.side == "client" else self.client
        await self._close(peer, code, reason)

    async def _close(self, connection: Connection, code: int, reason: str) -> None:
        # Keep reading (and dropping) during the close handshake: websockets stops reading a leg whose
        # receive queue is full (a client still streaming), would never see the peer's Close, and
        # each side then waited out the 10 s close timeout.
        drain = asyncio.create_task(_discard(connection))
        try:
            with contextlib.suppress(Exception):
                await connection.close(code, reason)
        finally:
            await _cancel_all([drain])

    async def _pump(self, source: Connection, destination: Connection, handler: Handler, side: str) -> Any:
        """Relay one direction until a leg ends; returns how it ended. Backpressure is end to end:
        a slow `destination` blocks `send`, so this pump stops reading `source`."""
        time = self.loop.time
        recv, send = source.recv, destination.send
        frames = size = 0
        window_start, window_frames = time(), 0
        limit = self.max_client_fps if side == "client" else 0.0
        try:
            while True:
                try:
                    frame = await recv()
                except ConnectionClosed:
                    return self._leg(source)
                frames += 1
                size += len(frame)
                self.last_activity = now = time()
                if limit:
                    window_frames += 1
                    if now - window_start >= 1.0:
                        window_start, window_frames = now, 1
                    elif window_frames > limit:
                        return SessionEnded("rate_limited", 1008, "client frame rate limit exceeded")
                try:
                    actions = handler(frame, now)
                    if actions is None:
                        await send(frame)
                    else:
                        await self._execute(actions)
                except ConnectionClosed:
                    # A send failed: report the leg that is gone (usually `destination`).
                    gone = destination if destination.state is not State.OPEN else source
                    return self._leg(gone)
        finally:
            self.frames[side] = frames
            self.bytes[side] = size

    def _leg(self, connection: Connection) -> LegClosed:
        protocol = connection.protocol
        side = "client" if connection is self.client else "upstream"
        return LegClosed(side, protocol.close_rcvd, protocol.close_sent)

    async def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, ToUpstream):
                await self.upstream.send(action.frame)
            elif isinstance(action, ToClient):
                await self.client.send(action.frame)
            elif isinstance(action, Observation):
                self.observer.observe(action)
            elif isinstance(action, StartTimer):
                self.timers[action.token] = self.loop.call_later(action.delay, self._fire, action.token)
            elif isinstance(action, CancelTimer):
                handle = self.timers.pop(action.token, None)
                if handle is not None:
                    handle.cancel()

    def _fire(self, token: str) -> None:
        self.timers.pop(token, None)
        task = self.loop.create_task(self._run_timer(token))
        self.timer_tasks.add(task)
        task.add_done_callback(self.timer_tasks.discard)

    async def _run_timer(self, token: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._execute(self.core.on_timer(token, self.loop.time()))

    def _cancel_timers(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for task in self.timer_tasks:
            task.cancel()

    async def _watchdog(self) -> None:
        started = self.loop.time()
        tick = min(t for t in (self.idle_timeout / 4, self.max_duration / 4, 1.0) if t > 0)
        while True:
            await asyncio.sleep(tick)
            now = self.loop.time()
            if self.max_duration and now - started >= self.max_duration:
                self.stop("max_duration", 1001, "session duration limit reached")
            elif self.idle_timeout and now - self.last_activity >= self.idle_timeout:
                self.stop("idle_timeout", 1000, "idle timeout")


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _discard(connection: Connection) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await connection.recv()
