"""One per-frame piece of the relay's Python, N times, for instruction counts under callgrind:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.frame_costs PIECE N

Instructions per frame = (count at N - count at N=0) / N; callgrind counts do not depend on the
machine's load. Pieces: ws_parse, ws_write (websockets sans-I/O), core_append, core_delta (the
core as deployed), wrapped_append, wrapped_delta (that session core inside the re-drive and
continuity wrappers, as `edge.resilience.wrap_core` deploys it with the default settings),
on_message_append (`Relay.on_message` with that wrapped core, legs stubbed), leg_read, leg_write (the
proxy's own legs: edge.wire with edge.frames), relay_append, relay_delta (one frame read, relayed
through the core and written: the whole path), aiohttp_parse (aiohttp's Cython reader on the same
frame; needs aiohttp)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from bench.micro_core import APPEND, DELTA

WIRE = Frame(Opcode.TEXT, APPEND.encode()).serialize(mask=True, extensions=[])
DELTA_WIRE = Frame(Opcode.TEXT, DELTA.encode()).serialize(mask=False, extensions=[])


def ws_parse(n: int) -> None:
    ws = Protocol(Side.SERVER, state=State.OPEN, max_size=2**24)
    for _ in range(n):
        ws.receive_data(WIRE)
        ws.events_received()


def ws_write(n: int) -> None:
    ws = Protocol(Side.CLIENT, state=State.OPEN, max_size=2**24)
    data = APPEND.encode()
    for _ in range(n):
        ws.send_text(data)
        ws.data_to_send()


class _NullSink:
    def on_message(self, leg: object, data: bytes, text: bool, now: float) -> None: ...
    def on_leg_ended(self, leg: object) -> None: ...
    def on_transport_closed(self, leg: object) -> None: ...


class _NullTransport:
    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0


def _leg(side: Side) -> object:
    from realtime_proxy.edge.wire import Leg, LegTiming

    async def build() -> Leg:
        leg = Leg(Protocol(side, state=State.OPEN, max_size=2**24), LegTiming())
        leg.transport, leg.sink = _NullTransport(), _NullSink()  # type: ignore[assignment]
        return leg

    return asyncio.run(build())


def leg_read(n: int) -> None:
    """The proxy's client leg reading the masked frame (edge.wire + edge.frames), one read each."""
    leg = _leg(Side.SERVER)
    for _ in range(n):
        leg.data_received(WIRE)  # type: ignore[attr-defined]


def leg_write(n: int) -> None:
    """The proxy's upstream leg sending the frame (masked) and flushing it, one write each."""
    leg = _leg(Side.CLIENT)
    data = APPEND.encode()
    for _ in range(n):
        leg.send(data, True)  # type: ignore[attr-defined]
        leg.flush()  # type: ignore[attr-defined]


def relay(n: int, upstream: bool) -> None:
    """One frame through the whole Python path: read by one leg, the relay, the deployed core,
    written by the other leg (client append up, or upstream audio delta down)."""
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    from bench.growth import build_core
    from realtime_proxy.edge.relay import Limits, Relay
    from realtime_proxy.edge.upstream_leg import UpstreamLeg
    from realtime_proxy.edge.wire import Leg, LegTiming

    async def run() -> None:
        client = Leg(Protocol(Side.SERVER, state=State.OPEN, max_size=2**24), LegTiming())
        ws = ClientProtocol(parse_uri("ws://upstream/v1/realtime"), state=State.OPEN, max_size=2**24)
        up = UpstreamLeg(ws, LegTiming(), [])
        for leg in (client, up):
            leg.transport = _NullTransport()  # type: ignore[assignment]
        Relay(client, up, build_core(), lambda action: None, Limits(), lambda relay: None)
        leg, wire = (up, DELTA_WIRE) if upstream else (client, WIRE)
        for _ in range(n):
            leg.data_received(wire)

    asyncio.run(run())


def core(n: int, frame: str, upstream: bool) -> None:
    from bench.growth import build_core

    session = build_core()
    feed = session.from_upstream if upstream else session.from_client
    for _ in range(n):
        feed(frame, 0.0)


def wrapped(n: int, frame: str, upstream: bool) -> None:
    core = _wrapped_core()
    feed = core.from_upstream if upstream else core.from_client
    for _ in range(n):
        feed(frame, 0.0)


def _wrapped_core() -> Any:
    """The default settings' wrapping (wrap_core): re-drive outermost, then continuity's mirror."""
    import random

    from bench.growth import build_core
    from realtime_proxy.core.conversation import ConversationMirror
    from realtime_proxy.core.redrive import RedriveCore, RedrivePolicy
    from realtime_proxy.core.resumable import ResumableCore

    resumable = ResumableCore(build_core(), ConversationMirror(1 << 20))
    return RedriveCore(resumable, RedrivePolicy(), random.Random(0))


class _Leg:
    """The relay's view of a leg, with sends counted and dropped."""

    def __init__(self) -> None:
        self.peer: Any = None
        self.sink: Any = None
        self.sent = 0

    def send(self, data: bytes, text: bool) -> None:
        self.sent += 1


def on_message_append(n: int) -> None:
    from realtime_proxy.edge.relay import Limits, Relay

    async def run() -> None:
        client, upstream = _Leg(), _Leg()
        relay = Relay(client, upstream, _wrapped_core(), lambda _: None, Limits(), lambda _: None)  # type: ignore[arg-type]
        data = APPEND.encode()
        on_message = relay.on_message
        for _ in range(n):
            on_message(client, data, True, 0.0)  # type: ignore[arg-type]
        assert upstream.sent == n

    asyncio.run(run())


def aiohttp_parse(n: int) -> None:
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader

    class Paused:
        _reading_paused = False

        def pause_reading(self) -> None: ...
        def resume_reading(self) -> None: ...

    loop = asyncio.new_event_loop()
    queue = WebSocketDataQueue(Paused(), 2**30, loop=loop)  # type: ignore[arg-type]
    reader = WebSocketReader(queue, 2**24, False, False)
    for _ in range(n):
        reader.feed_data(WIRE)
    loop.close()


def main(argv: list[str] | None = None) -> int:
    piece, n = (argv or sys.argv[1:])[:2]
    count = int(n)
    if piece == "core_append":
        core(count, APPEND, upstream=False)
    elif piece == "core_delta":
        core(count, DELTA, upstream=True)
    elif piece == "wrapped_append":
        wrapped(count, APPEND, upstream=False)
    elif piece == "wrapped_delta":
        wrapped(count, DELTA, upstream=True)
    elif piece == "on_message_append":
        on_message_append(count)
    elif piece in ("relay_append", "relay_delta"):
        relay(count, upstream=piece == "relay_delta")
    else:
        pieces = {"ws_parse": ws_parse, "ws_write": ws_write, "leg_read": leg_read, "leg_write": leg_write}
        pieces["aiohttp_parse"] = aiohttp_parse
        pieces[piece](count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
