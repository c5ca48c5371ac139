"""One per-frame piece of the relay's Python, N times, for instruction counts under callgrind:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m bench.frame_costs PIECE N

Instructions per frame = (count at N - count at N=0) / N; callgrind counts do not depend on the
machine's load. Pieces: ws_parse, ws_write (websockets sans-I/O), core_append, core_delta (the
session core as `SessionBuilder.build_core` makes it), wrapped_append, wrapped_delta (that core inside
the re-drive and continuity wrappers, as `edge.resilience.wrap_core` deploys it with the default
settings), relay_append (`Relay.on_message` with that wrapped core, the legs stubbed), aiohttp_parse
(aiohttp's Cython reader on the same frame; needs aiohttp)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from bench.micro_core import APPEND, DELTA

WIRE = Frame(Opcode.TEXT, APPEND.encode()).serialize(mask=True, extensions=[])


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


def relay_append(n: int) -> None:
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
    elif piece == "relay_append":
        relay_append(count)
    else:
        {"ws_parse": ws_parse, "ws_write": ws_write, "aiohttp_parse": aiohttp_parse}[piece](count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
