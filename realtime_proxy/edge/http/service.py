"""The HTTP side of the client listener: the protocol factory the listener hands non-upgrade
connections to, the shared upstream client, and shutdown of both."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

import httpx

from realtime_proxy.core.rules import RuleChain
from realtime_proxy.edge.auth import Admission
from realtime_proxy.edge.http.connection import ConnectionLimits, HttpConnection
from realtime_proxy.edge.http.forward import Forwarder
from realtime_proxy.ops.metrics import Metrics
from realtime_proxy.ops.settings import Settings

# httpx logs every request at INFO with its full URL (a query can carry an Azure `api-key`); the
# proxy's own `http_request` line says what is needed, without the URL.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def upstream_transport(settings: Settings, ssl_context: ssl.SSLContext | None) -> httpx.AsyncHTTPTransport:
    """One connection pool to the upstream. A transport ignores environment proxies (they must not
    silently carry API keys) and never follows redirects (they could carry credentials elsewhere)."""
    limits = httpx.Limits(
        max_connections=settings.http.max_upstream_connections, max_keepalive_connections=32
    )
    return httpx.AsyncHTTPTransport(verify=ssl_context or True, trust_env=False, limits=limits)


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
        self.transport = upstream_transport(settings, upstream_ssl)
        self.forwarder = Forwarder(settings, chain, admission, metrics, self.transport)
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
            await self.transport.aclose()
