"""One port for both protocols, like the real API: the request head decides whether a connection
goes to websockets (an Upgrade) or to the fake's plain HTTP routes.

Built on websockets' own `Server` with our own protocol factory in front (`attach_listener`): up to
websockets 16 through its documented `Server.wrap`; from 17 `serve()` builds the `Server` (whose
handler performs the handshake) and the listener is attached to it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

MAX_HEAD_BYTES = 64 * 1024


def is_upgrade(head: bytes) -> bool:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


class Dispatcher(asyncio.Protocol):
    """Buffers until the request head is complete, then hands the transport to the chosen protocol."""

    def __init__(
        self, ws_factory: Callable[[], asyncio.Protocol], http_factory: Callable[[], asyncio.Protocol]
    ):
        self._factories = (ws_factory, http_factory)
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                self._transport.close()
            return
        ws_factory, http_factory = self._factories
        protocol = ws_factory() if is_upgrade(bytes(self._buffer[:end])) else http_factory()
        self._transport.set_protocol(protocol)
        protocol.connection_made(self._transport)
        protocol.data_received(bytes(self._buffer))

    def connection_lost(self, exc: Exception | None) -> None:
        self._buffer.clear()


# websockets 17 made `Server(create_server, handler)` the constructor and dropped `wrap`.
_NEW_SERVER_API = "create_server" in inspect.signature(Server.__init__).parameters


def websocket_server(
    handler: Callable[[ServerConnection], Awaitable[None]], process_request: Callable[..., Any]
) -> Server:
    """A websockets `Server` that runs the handshake (with `process_request`, no Server header) and
    then `handler` for each connection our listener hands it; no listener of its own."""
    if _NEW_SERVER_API:
        return serve(handler, process_request=process_request, server_header=None)
    legacy: Any = Server
    return cast(Server, legacy(handler, process_request=process_request, server_header=None))


def attach_listener(server: Server, listener: asyncio.Server) -> None:
    if _NEW_SERVER_API:
        server.server = listener
    else:
        cast(Any, server).wrap(listener)


def websocket_factory(
    server: Server,
    select_subprotocol: Callable[[ServerConnection, Sequence[Subprotocol]], Subprotocol | None],
    **options: Any,
) -> Callable[[], ServerConnection]:
    """What `websockets.asyncio.server.serve` builds per connection, for our own listener."""
    max_size = options.pop("max_size")

    def factory() -> ServerConnection:
        def choose(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
            return select_subprotocol(connection, offered)

        protocol = ServerProtocol(select_subprotocol=choose, max_size=max_size)
        connection = ServerConnection(protocol, server, **options)
        return connection

    return factory
