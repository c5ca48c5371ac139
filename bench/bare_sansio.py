"""The floor of the proxy's own transport: its sans-I/O legs (`realtime_proxy.edge.wire`) with no core, no
rules, no metrics, no logging: every message forwarded as received, closes mirrored.

Run: `python -m bench.bare_sansio --upstream-url ws://127.0.0.1:P`; prints one JSON line
`{"event": "listening", "port": N}`. Same settings as the bare asyncio relay (16 MiB frames, no
compression, pings 20 s / 20 s).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable

from websockets.http11 import Request

from bench.bare_relay import relay_main
from realtime_proxy.core.closing import LegClosed, close_for_peer
from realtime_proxy.edge.listener import ClientLeg
from realtime_proxy.edge.upstream import UpstreamFailure, UpstreamOptions, offered_subprotocols
from realtime_proxy.edge.upstream_leg import open_upstream
from realtime_proxy.edge.wire import Leg, LegTiming

OPTIONS = UpstreamOptions(16 * 1024 * 1024, 10.0, 20.0, 20.0, False, None)


class Forward:
    """A sink that forwards every message unchanged and mirrors the first close."""

    def __init__(self, client: Leg, upstream: Leg) -> None:
        client.peer, upstream.peer = upstream, client
        client.sink = upstream.sink = self
        self.ended = False

    def on_message(self, leg: Leg, data: bytes, text: bool, now: float) -> None:
        if not self.ended:
            leg.peer.send(data, text)  # type: ignore[union-attr]

    def on_leg_ended(self, leg: Leg) -> None:
        if not self.ended and leg.peer is not None:
            self.ended = True
            leg.peer.close(*close_for_peer(LegClosed(leg.side, leg.ws.close_rcvd, leg.ws.close_sent)))

    def on_transport_closed(self, leg: Leg) -> None:
        pass


class Gateway:
    http_factory: Callable[[], asyncio.Protocol] | None = None

    def __init__(self, upstream_base: str) -> None:
        self.upstream_base = upstream_base
        self.connections: set[ClientLeg] = set()
        self.client_timing = LegTiming(20.0, 20.0, 10.0)
        self.head_timeout, self.max_frame_bytes, self.compression = 30.0, 16 * 1024 * 1024, False
        self.tasks: set[asyncio.Task[None]] = set()

    def upgrade(self, leg: ClientLeg, request: Request) -> None:
        task = asyncio.get_running_loop().create_task(self._connect(leg, request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, leg: ClientLeg, request: Request) -> None:
        offered = offered_subprotocols(request.headers)
        try:
            upstream = await open_upstream(self.upstream_base + request.path, [], offered, OPTIONS)
        except UpstreamFailure:
            leg.abort()
            return
        if not leg.accept(request, upstream.subprotocol):
            upstream.abort()
            return
        Forward(leg, upstream)
        leg.start_keepalive()
        upstream.start_keepalive()
        upstream.release_early()


async def main_async(port: int, upstream_base: str) -> None:
    gateway = Gateway(upstream_base)
    server = await asyncio.get_running_loop().create_server(lambda: ClientLeg(gateway), "127.0.0.1", port)
    print(json.dumps({"event": "listening", "port": server.sockets[0].getsockname()[1]}), flush=True)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    return relay_main("python -m bench.bare_sansio", main_async, argv)


if __name__ == "__main__":
    sys.exit(main())
