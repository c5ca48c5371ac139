"""The upstream failures of issue 25, as the fake reproduces them (PROTOCOL.md, "Upstream failures in
the field"): TCP dropped after N responses (livekit/agents #3145), the 60-minute cap (`session_expired`
then close 1001, pipecat #3170), handshakes refused with 5xx/429 and `Retry-After` (livekit #3101),
in-band responses failed with `server_error` and empty output (livekit #4617, #6205), responses the
server starts itself (server VAD), and a server that names items itself."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from realtime_proxy.api.errors import MESSAGE_TYPE_CODE, ApiError

from .session import FakeSession

SESSION_EXPIRED_MESSAGE = "Your session hit the maximum duration of 60 minutes."
OVERLOADED = "The server is overloaded. Please retry."


class FailureControls:
    """Scripting knobs, mixed into FakeUpstream."""

    def init_failures(self) -> None:
        # Each connection's TCP connection is dropped after its `drop_after_responses`-th
        # response.done (0: never), at most `drops_left` times (None: always).
        self.drop_after_responses = 0
        self.drops_left: int | None = None
        # Each session ends after this many seconds like the 60-minute cap (0: never).
        self.session_max_seconds = 0.0
        self.keep_client_item_ids = True  # False: items get the server's ids whatever the client asked
        self._handshake_failures: list[tuple[int, float | None]] = []
        self._in_band_failures: list[tuple[str, str | None]] = []
        self._sessions: dict[int, tuple[ServerConnection, FakeSession]] = {}

    def fail_next_in_band(self, n: int, *, error_type: str = "server_error", code: str | None = None) -> None:
        """The next `n` in-band responses fail with empty output."""
        self._in_band_failures.extend([(error_type, code)] * n)

    def take_in_band_failure(self) -> tuple[str, str | None] | None:
        return self._in_band_failures.pop(0) if self._in_band_failures else None

    def fail_next_handshakes(self, n: int, status: int = 503, *, retry_after: float | None = None) -> None:
        """The next `n` WebSocket handshakes are refused with `status`."""
        self._handshake_failures.extend([(status, retry_after)] * n)

    def take_handshake_failure(self) -> tuple[int, dict[str, Any], float | None] | None:
        if not self._handshake_failures:
            return None
        status, retry_after = self._handshake_failures.pop(0)
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        return (
            status,
            {"error": ApiError(OVERLOADED, code=None, type=kind).fields(MESSAGE_TYPE_CODE)},
            retry_after,
        )

    async def expire_all(self) -> None:
        """End every live session now the way the 60-minute cap does."""
        await asyncio.gather(*(expire(ws, session) for ws, session in list(self._sessions.values())))

    async def start_responses(self) -> None:
        """Every live session starts an in-band response itself, as server VAD does when speech ends."""
        for _, session in list(self._sessions.values()):
            await session.start_response()

    def should_drop(self, responses_done: int) -> bool:
        if (
            not self.drop_after_responses
            or responses_done < self.drop_after_responses
            or self.drops_left == 0
        ):
            return False
        if self.drops_left is not None:
            self.drops_left -= 1
        return True

    def watch_session(self, ws: ServerConnection, session: FakeSession) -> asyncio.TimerHandle | None:
        """Track a live session; its expiry timer when `session_max_seconds` is set."""
        self._sessions[id(ws)] = (ws, session)
        if self.session_max_seconds <= 0:
            return None
        loop = asyncio.get_running_loop()
        return loop.call_later(self.session_max_seconds, lambda: asyncio.ensure_future(expire(ws, session)))

    def forget_session(self, ws: ServerConnection) -> None:
        self._sessions.pop(id(ws), None)


async def drop(ws: ServerConnection) -> None:
    """A TCP reset after what was sent so far has left (a response.done arrives, then nothing)."""
    while ws.transport.get_write_buffer_size():  # noqa: ASYNC110 (no event for an emptied buffer)
        await asyncio.sleep(0)
    ws.transport.abort()


async def expire(ws: ServerConnection, session: FakeSession) -> None:
    with contextlib.suppress(ConnectionClosed):
        await session.send_error(ApiError(SESSION_EXPIRED_MESSAGE, code="session_expired"), None)
        await ws.close(1001, "session expired")
