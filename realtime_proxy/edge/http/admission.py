"""Admission of plain HTTP requests to the upstream: at most `http.max_concurrent_requests` at
once (per worker), the rest queued for up to `http.queue_timeout` seconds, then refused with 503
and Retry-After.

A bound in front of whatever client does the upstream request (edge/http/client.py; it was
written for httpx): httpcore's pool costs grow quadratically once requests queue past its
connection limit, and a burst of 500 then burnt 30 ms of CPU per request and starved every
WebSocket session on the same event loop (round trips of 8.7 s). Waiting here costs a deque entry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from realtime_proxy.observe.metrics import Metrics

RETRY_AFTER_SECONDS = 1


class QueueTimeout(Exception):
    """No upstream slot came free within the queue timeout."""


class UpstreamSlots:
    def __init__(self, limit: int, queue_timeout: float, metrics: Metrics) -> None:
        self._slots = asyncio.Semaphore(limit)
        self.queue_timeout = queue_timeout
        self._admissions = metrics.http_admissions_total

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """One slot for the upstream request's lifetime (its response streamed included)."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: no suspension
            self._admissions.labels("immediate").inc()
        else:
            try:
                async with asyncio.timeout(self.queue_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                self._admissions.labels("rejected").inc()
                raise QueueTimeout from None
            self._admissions.labels("queued").inc()
        try:
            yield
        finally:
            self._slots.release()
