"""A tiny HTTP endpoint beside the proxy: /metrics (Prometheus), /healthz (alive), /readyz (accepting).

asyncio streams instead of prometheus_client's threaded server, so it shares the proxy's loop and
can answer readiness from the proxy's own state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class HealthServer:
    def __init__(
        self,
        registry: CollectorRegistry | None,
        is_ready: Callable[[], bool | Awaitable[bool]],
        *,
        scrape: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        """`scrape` replaces the registry's exposition (the supervisor of several workers sums theirs)."""
        self.registry = registry
        self.is_ready = is_ready
        self.scrape = scrape
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request_line = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers are not needed
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            method = parts[0] if parts else ""
            status, content_type, body = await self._route(method, path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            # HEAD: the GET's headers (Content-Length included), never its body (RFC 9110 9.3.2).
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except ValueError:  # a line over the reader's 64 KiB limit: refuse it, log nothing
            writer.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        if path == "/metrics":
            if self.scrape is not None:
                return "200 OK", CONTENT_TYPE_LATEST, await self.scrape()
            assert self.registry is not None
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/healthz":
            return "200 OK", "text/plain", b"ok\n"
        if path == "/readyz":
            ready = self.is_ready()
            if ready if isinstance(ready, bool) else await ready:
                return "200 OK", "text/plain", b"ready\n"
            return "503 Service Unavailable", "text/plain", b"not ready\n"
        return "404 Not Found", "text/plain", b"not found\n"
