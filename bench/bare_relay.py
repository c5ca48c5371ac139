"""The floor for a Python relay: a websockets pump with no logic (recv -> send, both directions).

Same websockets settings as the proxy's defaults (max_size 16 MiB, no compression, ping 20 s/20 s,
no system proxy) and the same event loop as the proxy (stdlib asyncio; `--uvloop` optional).

Run: `python -m bench.bare_relay --upstream-url ws://127.0.0.1:P [--uvloop]`; prints one JSON line
`{"event": "listening", "port": N}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

WS_SETTINGS: dict[str, Any] = {
    "max_size": 16 * 1024 * 1024,
    "compression": None,
    "ping_interval": 20.0,
    "ping_timeout": 20.0,
}


def run_loop(coro: Coroutine[Any, Any, None], *, use_uvloop: bool) -> None:
    try:
        if use_uvloop:
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)
    except KeyboardInterrupt:
        pass


async def pump(source: ServerConnection | ClientConnection, destination: Any) -> None:
    send = destination.send
    with contextlib.suppress(ConnectionClosed):
        async for message in source:
            await send(message)


async def relay(upstream_base: str, client: ServerConnection) -> None:
    path = client.request.path if client.request else "/"
    async with connect(upstream_base + path, proxy=None, user_agent_header=None, **WS_SETTINGS) as upstream:
        pumps = {asyncio.create_task(pump(client, upstream)), asyncio.create_task(pump(upstream, client))}
        _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await client.close()


async def main_async(port: int, upstream_base: str) -> None:
    async def handler(client: ServerConnection) -> None:
        await relay(upstream_base, client)

    async with serve(handler, "127.0.0.1", port, server_header=None, **WS_SETTINGS) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"event": "listening", "port": bound}), flush=True)
        await server.serve_forever()


def relay_main(
    prog: str, serve_relay: Callable[[int, str], Coroutine[Any, Any, None]], argv: list[str] | None
) -> int:
    """The command line every bench relay shares: a port, the upstream, the event loop."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream-url", required=True, help="e.g. ws://127.0.0.1:9000")
    parser.add_argument("--uvloop", action="store_true", help="use uvloop (default: stdlib asyncio)")
    args = parser.parse_args(argv)
    run_loop(serve_relay(args.port, args.upstream_url.rstrip("/")), use_uvloop=args.uvloop)
    return 0


def main(argv: list[str] | None = None) -> int:
    return relay_main("python -m bench.bare_relay", main_async, argv)


if __name__ == "__main__":
    sys.exit(main())
