"""The HTTP side of the client listener: the protocol factory the listener hands non-upgrade
connections to, the shared upstream client, and shutdown of both."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from realtime_proxy.core.rules import RuleChain
from realtime_proxy.edge.auth import Admission
from realtime_proxy.edge.http.client import Timeouts, UpstreamClient
from realtime_proxy.edge.http.connection import ConnectionLimits, HttpConnection
from realtime_proxy.edge.http.forward import Forwarder
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.settings import Settings


def upstream_client(settings: Settings, ssl_context: ssl.SSLContext | None) -> UpstreamClient:
    """One connection pool to the upstream. No environment proxies (they must not silently carry
    API keys), no redirects (they could carry credentials elsewhere)."""
    h = settings.http
    timeouts = Timeouts(
        connect=h.connect_timeout, read=h.upstream_read_timeout, write=h.client_idle_timeout,
        pool=h.connect_timeout,
    )  # fmt: skip
    return UpstreamClient(timeouts, ssl_context=ssl_context, max_connections=h.max_upstream_connections)


class HttpService:
    def __init__(
        self,
        settings: Settings,
        chain: RuleChain,
        admission: Admission,
        metrics: Metrics,
        *,
        upstream_ssl: ssl.SSLContext | None = None,
    ) -> None:
        h = settings.http
        self.client = upstream_client(settings, upstream_ssl)
        self.forwarder = Forwarder(settings, chain, admission, metrics, self.client)
        self.limits = ConnectionLimits(
            max_header_bytes=h.max_header_bytes,
            header_timeout=h.header_timeout,
            keepalive_timeout=h.keepalive_timeout,
            idle_timeout=h.client_idle_timeout,
        )
        self.connections: set[HttpConnection] = set()

    def factory(self) -> asyncio.Protocol:
        """`http_factory` for the listener: a fresh protocol for one client connection."""
        return HttpConnection(self.forwarder.handle, self.limits, self.connections)

    async def close(self, grace: float = 0.0) -> None:
        """Close idle connections now; requests in flight get `grace` seconds to finish (their
        response says `Connection: close`), then the rest are aborted and the pool closed."""
        for connection in list(self.connections):
            connection.close_if_idle()
        tasks = [c.task for c in self.connections if c.task is not None]
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for connection in list(self.connections):
            connection.abort()
        with contextlib.suppress(Exception):
            await self.client.aclose()
