"""The relay's side of session continuity (edge.continuity): while a new upstream leg is opened,
client frames (and frames the core sends up from timers) are held by the relay, then delivered in
order once the new leg is in place; past `Relay.max_held_bytes` the client is no longer read.
Functions of the relay, which owns the state (its slots), kept here so its message path stays short."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from realtime_proxy.core.actions import Frame, ToClient, ToUpstream
from realtime_proxy.core.closing import SessionOutcome, Side
from realtime_proxy.edge.upstream_leg import UpstreamLeg
from realtime_proxy.edge.wire import Leg

if TYPE_CHECKING:
    from realtime_proxy.edge.relay import Relay


class Resumer(Protocol):
    """Session continuity: may take over when the upstream leg ends."""

    def on_upstream_ended(self, leg: Leg) -> bool: ...  # True: a resumption started


def begin_resume(relay: Relay) -> None:
    """Hold client frames from now until `finish_resume` (the upstream leg is gone)."""
    relay.resuming = True
    relay.upstream.peer = None  # the old leg must no longer pause or resume the client
    if relay.held_bytes > relay.max_held_bytes:
        relay.client.pause_reading()


def attach(relay: Relay, upstream: UpstreamLeg) -> None:
    """Put a new upstream leg in place of the lost one."""
    relay.upstream = upstream
    upstream.peer, relay.client.peer = relay.client, upstream
    upstream.sink = relay
    upstream.start_keepalive()


def inject_from_upstream(relay: Relay, frame: str) -> None:
    """A server event the proxy made (e.g. the end of a response lost with the upstream)."""
    actions = relay.core.from_upstream(frame, relay.loop.time())
    relay.execute([ToClient(frame)] if actions is None else actions)


def send_upstream(relay: Relay, frame: Frame) -> None:
    relay.execute([ToUpstream(frame)])


def finish_resume(relay: Relay) -> None:
    """Deliver what was held, in order, and read the client again."""
    relay.resuming = False
    held_up, relay.held_up = relay.held_up or [], None
    relay.execute([ToUpstream(frame) for frame in held_up])
    held, relay.held, relay.held_bytes = relay.held or [], None, 0
    now = relay.loop.time()
    for data, text in held:
        relay.on_message(relay.client, data, text, now)
    relay.client.resume_reading()
    relay.client.flush()
    relay.upstream.flush()


def end_upstream_failed(relay: Relay, code: int, reason: str) -> None:
    """No resumption was possible: close the client with a code its SDK reconnects on."""
    if relay.finishing:
        return
    relay.resuming = False
    relay.finishing = True
    relay.outcome, relay.closed_by = SessionOutcome.UPSTREAM_LOST, Side.UPSTREAM
    relay.client.close(code, reason)
