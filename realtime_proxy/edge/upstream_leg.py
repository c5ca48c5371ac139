"""The upstream leg: a sans-I/O `ClientProtocol` on an asyncio connection, and its handshake.

The handshake is awaited once per session (one future); frames the upstream sends right after its
101 are held, with reading paused, until the relay takes over (the client has its own 101 by then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame as WsFrame
from websockets.http11 import Response
from websockets.protocol import OPEN
from websockets.typing import Subprotocol
from websockets.uri import WebSocketURI, parse_uri

from realtime_proxy.core.interned import interned
from realtime_proxy.edge.failure_cause import cause_of
from realtime_proxy.edge.handshake_memory import drop_handshake
from realtime_proxy.edge.upstream import (
    UpstreamFailure,
    UpstreamOptions,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from realtime_proxy.edge.wire import Leg, LegTiming


class UpstreamLeg(Leg):
    side = "upstream"
    __slots__ = ("client_ws", "early", "headers", "opened")

    def __init__(self, ws: ClientProtocol, timing: LegTiming, headers: Iterable[tuple[str, str]]) -> None:
        super().__init__(ws, timing)
        self.client_ws = ws
        self.headers: tuple[tuple[str, str], ...] = tuple(headers)
        # Awaited once by open_upstream, then None: a done future kept ~150 B per session (issue 26).
        self.opened: asyncio.Future[None] | None = self.loop.create_future()
        self.early: list[WsFrame] = []

    @property
    def subprotocol(self) -> str | None:
        return self.ws.subprotocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        request = self.client_ws.connect()
        request.headers.update(self.headers)
        self.client_ws.send_request(request)
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.sink is not None:
            super().data_received(data)
            return
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Response):
                self._handshake_done(event)
            else:
                assert isinstance(event, WsFrame)
                self.early.append(event)
        self.flush()
        if self.early:
            self.pause_reading()  # hold the rest in the kernel until the relay takes over

    def _handshake_done(self, response: Response) -> None:
        if self.opened is None or self.opened.done():
            return
        exc = self.ws.handshake_exc
        if exc is None:
            drop_handshake(self.ws)
            self.opened.set_result(None)  # the response is not kept: a session holds no headers
        elif response.status_code != 101:
            refused = UpstreamRefused(response.status_code, response.headers, bytes(response.body or b""))
            self.opened.set_exception(refused)
        else:
            self.opened.set_exception(unreachable(exc))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.opened is not None and not self.opened.done():
            if self.ws.handshake_exc is not None:
                failure = unreachable(self.ws.handshake_exc)
            else:
                failure = UpstreamUnreachable("upstream closed the connection during the handshake")
            self.opened.set_exception(failure)
        super().connection_lost(exc)

    def release_early(self) -> None:
        """Called by the relay once attached: deliver held frames, then read again."""
        early, self.early = self.early, []
        if early:
            self.handle_frames(early, self.loop.time())
            self.flush()
            if self.peer is not None:
                self.peer.flush()
        self.resume_reading()
        if self.ws.state is not OPEN:
            self.report_ended()


def _timing(options: UpstreamOptions) -> LegTiming:
    timeout = options.ping_timeout or 0.0
    return interned(
        LegTiming(
            ping_interval=options.ping_interval or 0.0,
            ping_timeout=timeout,
            # An upstream that missed a pong will not answer our Close either: don't wait 10 s for it.
            close_timeout=min(timeout, 10.0) if timeout else 10.0,
            write_stall_timeout=options.write_stall_timeout,
            max_fragments=options.max_fragments,
        )
    )


async def open_upstream(
    url: str, headers: Iterable[tuple[str, str]], subprotocols: list[str], options: UpstreamOptions
) -> UpstreamLeg:
    """Open the upstream WebSocket or raise an UpstreamFailure that maps to an HTTP status.
    Redirects are never followed (they could carry the client's credentials to another host); an
    environment HTTP proxy is never used (it must not silently carry API keys)."""
    uri = _parsed(url)
    ws = ClientProtocol(
        uri,
        subprotocols=[Subprotocol(s) for s in subprotocols] or None,
        extensions=[ClientPerMessageDeflateFactory()] if options.compression else None,
        max_size=options.max_size,
    )
    loop = asyncio.get_running_loop()
    leg = UpstreamLeg(ws, _timing(options), headers)
    opened = leg.opened
    assert opened is not None
    ssl_context = (options.ssl_context or True) if uri.secure else None
    try:
        async with asyncio.timeout(options.open_timeout):
            await loop.create_connection(lambda: leg, uri.host, uri.port, ssl=ssl_context)
            await opened
        leg.headers, leg.opened = (), None
    except UpstreamFailure:
        _give_up(leg)
        raise
    except TimeoutError:
        _give_up(leg)
        raise UpstreamTimeout("upstream handshake timed out") from None
    except OSError as exc:
        _give_up(leg)
        raise unreachable(exc) from None
    except BaseException:  # cancelled: the client left during the handshake
        _give_up(leg)
        raise
    return leg


_URIS: dict[str, WebSocketURI] = {}


def _parsed(url: str) -> WebSocketURI:
    """One parsed URI per upstream URL, shared by its sessions' protocols (which only read it, for
    the handshake): a parse each kept ~400 B in every idle session (issue 26). Bounded."""
    query = url.partition("?")[2].lower()
    if "key" in query or "token" in query or "auth" in query:
        return parse_uri(url)  # may carry a credential (Azure's api-key): not kept past its session
    uri = _URIS.get(url)
    if uri is None:
        if len(_URIS) >= 64:
            _URIS.clear()
        uri = _URIS[url] = parse_uri(url)
    return uri


def unreachable(exc: BaseException) -> UpstreamUnreachable:
    name = type(exc).__name__
    return UpstreamUnreachable(f"upstream unreachable: {name}", cause=cause_of(exc), error=name)


def _give_up(leg: UpstreamLeg) -> None:
    if leg.opened is not None and not leg.opened.done():
        leg.opened.cancel()
    leg.abort()
