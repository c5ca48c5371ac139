"""An HTTP/1.1 server connection: an asyncio.Protocol driving h11 (sans-I/O), one Exchange at a time.

Keep-alive and pipelining (pipelined requests wait in h11's buffer, reading paused), back-pressure
both ways (the client socket is not read while the body buffer is full; the response waits while
the transport's write buffer is full), and timeouts for idle connections and slow request heads."""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import h11

from realtime_proxy.edge.http.exchange import CutOff, Exchange, RequestHead, error_body
from realtime_proxy.edge.http.framing import MESSAGES, framing_problem, h11_reason, head_end
from realtime_proxy.observe.logs import get_logger

log = get_logger("proxy.http")
Handler = Callable[[Exchange], Awaitable[None]]
_HOLD_BYTES = 64 * 1024  # response bytes held for one write before they are written at once
_LINGER_SECONDS = 2.0  # after an early answer, how long the rest of a request body is read and dropped


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_header_bytes: int = 16 * 1024
    header_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    idle_timeout: float = 60.0  # request body stalled / response not read


class HttpConnection(asyncio.Protocol):
    def __init__(
        self, handler: Handler, limits: ConnectionLimits, live: set[HttpConnection] | None = None
    ) -> None:
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self._handler = handler
        self._limits = limits
        self._live = live if live is not None else set()
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._exchange: Exchange | None = None
        self.task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # One lazy timer: re-arming only moves `_deadline`; the handle fires, then re-arms itself
        # if the deadline moved later (no heap push and cancel per request).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._deadline: float | None = None
        self._on_deadline: Callable[[], None] | None = None
        # Bytes h11 produced and not yet written: one write per loop iteration (head and body
        # together, a streamed response's queued chunks together), flushed by `_flush`.
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._flush_handle: asyncio.Handle | None = None
        self._awaiting_head = True  # no byte of the next request seen yet
        self._read_pauses: set[str] = set()
        self._discarding = False
        self._head_checked = False  # framing.py has passed the current request's raw head
        self._refused = False  # a malformed request was answered: nothing more is read
        self.closing = False  # finish the current exchange, then close
        self.closed = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses
        self._loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        self._live.add(self)
        self._arm(self._limits.keepalive_timeout, self._close)

    def data_received(self, data: bytes) -> None:
        if self.closed or self._refused:
            return
        if self._exchange is None and self._awaiting_head and data:
            self._awaiting_head = False
            self._arm(self._limits.header_timeout, self._head_timed_out)
        self._h11.receive_data(data)
        self._pump()

    def eof_received(self) -> bool | None:
        with contextlib.suppress(RuntimeError):  # already closed on h11's side
            self._h11.receive_data(b"")
        self._pump()
        # EOF means the client is gone (a half-close cannot be told from a close): returning None
        # closes the transport, and connection_lost cancels a request in flight, upstream included.
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._live.discard(self)
        self._disarm()
        if self._timer is not None:  # it would keep this connection alive until it fires
            self._timer.cancel()
            self._timer = None
        self._held.clear()
        self._held_bytes = 0
        self._writable.set()
        if self._exchange is not None:
            self._exchange.lost()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- Wire (used by the Exchange) ----------------------------------------------------------

    def continue_(self) -> None:
        if self._h11.they_are_waiting_for_100_continue:
            self._write(h11.InformationalResponse(status_code=100, headers=[]))
            self._flush()  # the client waits for it before sending its body

    def pause_reading(self, reason: str = "body") -> None:
        if not self._read_pauses and self._transport is not None and not self.closed:
            self._transport.pause_reading()
        self._read_pauses.add(reason)

    def resume_reading(self, reason: str = "body") -> None:
        self._read_pauses.discard(reason)
        if not self._read_pauses and self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def start_response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._write(h11.Response(status_code=status, headers=headers, reason=_phrase(status)))

    def write_body(self, data: bytes) -> None:
        self._write(h11.Data(data=data))

    def end_response(self) -> None:
        self._write(h11.EndOfMessage())
        self._flush()

    async def writable(self) -> None:
        """Returns once the transport takes more; TimeoutError after `idle_timeout` (a client that
        stopped reading). No timer unless it has to wait."""
        if self._writable.is_set():
            return
        self._flush()
        async with asyncio.timeout(self._limits.idle_timeout):
            await self._writable.wait()

    # -- request parsing ----------------------------------------------------------------------

    def _pump(self) -> None:
        while not self.closed and not self._refused:
            if not self._head_checked and self._h11.their_state is h11.IDLE and not self._check_head():
                return
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint, h11_reason(exc.error_status_hint))
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:  # a pipelined request: parse it once this response is done
                self.pause_reading("pipelined")
                return
            if isinstance(event, h11.Request):
                self._begin(event)
            elif isinstance(event, h11.Data):
                if self._exchange is not None and not self._discarding:
                    self._exchange.feed(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                if self._discarding:
                    self._close()
                    return
                if self._exchange is not None:
                    self._exchange.end_of_body()
            elif isinstance(event, h11.ConnectionClosed):
                if self._exchange is not None and not self._exchange.body_complete:
                    self._exchange.lost()
                if self.task is None:
                    self._close()
                return

    def _begin(self, request: h11.Request) -> None:
        self._disarm()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        names = {k for k, _ in headers}
        length = next((v for k, v in headers if k == "content-length"), "0")
        has_body = "transfer-encoding" in names or (length.isdigit() and int(length) > 0)
        head = RequestHead(
            request.method.decode("ascii"), request.target.decode("latin-1"), headers, has_body
        )
        self._exchange = Exchange(head, self, self._limits.idle_timeout, self._peer)
        self.task = asyncio.get_running_loop().create_task(self._run(self._exchange))

    async def _run(self, exchange: Exchange) -> None:
        try:
            await self._handler(exchange)
        except asyncio.CancelledError:
            if not self.closed:
                raise
            return  # the client went away and connection_lost cancelled us
        except CutOff:
            pass  # deliberate: the unfinished response closes the connection below
        except Exception:
            log.exception("http_handler_failed", method=exchange.head.method)
            if exchange.status is None and not self.closed:
                body = error_body(
                    "The proxy failed to handle the request.", code=None, error_type="server_error"
                )
                with contextlib.suppress(Exception):
                    await exchange.respond(500, body)
        self.task = None
        self._next_cycle(exchange)

    def _next_cycle(self, exchange: Exchange) -> None:
        if self.closed:
            return
        if not exchange.finished:  # the response broke off: closing tells the client it is truncated
            self._close()
            return
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE and not self.closing:
            self._h11.start_next_cycle()
            self._exchange = None
            self._head_checked = False
            self._awaiting_head = not self._h11.trailing_data[0]
            timeout = self._limits.keepalive_timeout if self._awaiting_head else self._limits.header_timeout
            self._arm(timeout, self._close if self._awaiting_head else self._head_timed_out)
            self.resume_reading("pipelined")
            self.resume_reading("body")
            self._pump()
        elif not exchange.body_complete and not exchange.gone and not exchange.stalled:
            # Answered before the body ended (e.g. 413): read and drop the rest for a moment so the
            # client sees the answer instead of a reset, then close.
            self._discarding = True
            self._arm(_LINGER_SECONDS, self._close)
            self.resume_reading("body")
            self._pump()
        else:
            self._close()

    def _check_head(self) -> bool:
        """framing.py's checks on the next request's raw head, before h11 parses it. False: wait
        for more bytes, or refused."""
        buffered = self._h11.trailing_data[0]
        end = head_end(buffered)
        if end < 0:
            return True  # h11 says NEED_DATA (or refuses a head past its size limit)
        self._head_checked = True
        problem = framing_problem(buffered[:end])
        if problem is not None:
            self._refuse(400, problem)
            return False
        return True

    # -- errors, timers, closing --------------------------------------------------------------

    def _refuse(self, status: int, code: str) -> None:
        """A fixed-text answer (framing.MESSAGES: never the offending bytes, which may be a key)
        to a request that cannot be read one way only; the connection is closed, nothing after
        it is read."""
        self._refused = True
        log.debug("http_request_refused", client=self._peer, status=status, code=code)  # as the listener
        exchange = self._exchange
        if exchange is not None and self.task is not None:
            exchange.lost()  # e.g. a malformed chunk mid-body: the handler stops
        answerable = self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE)
        if answerable and (exchange is None or exchange.status is None):
            body = error_body(MESSAGES.get(code, MESSAGES["invalid_http_request"]), code=code)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            with contextlib.suppress(h11.LocalProtocolError):
                self._write(h11.Response(status_code=status, headers=headers, reason=_phrase(status)))
                self._write(h11.Data(data=body))
                self._write(h11.EndOfMessage())
        self._close()

    def _head_timed_out(self) -> None:
        self._refuse(408, "request_timeout")

    def _write(self, event: h11.Event) -> None:
        data = self._h11.send(event)
        if data and self._transport is not None and not self.closed:
            self._held.append(data)
            self._held_bytes += len(data)
            if self._held_bytes >= _HOLD_BYTES:  # a handler that never suspends still meets back-pressure
                self._flush()
            elif self._flush_handle is None:
                self._flush_handle = (self._loop or asyncio.get_running_loop()).call_soon(self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._held and self._transport is not None and not self.closed:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held.clear()
            self._held_bytes = 0
            self._transport.write(data)

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        loop = self._loop or asyncio.get_running_loop()
        when = loop.time() + delay
        self._deadline, self._on_deadline = when, callback
        if self._timer is None or self._timer_at > when:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = loop.call_at(when, self._fire), when

    def _disarm(self) -> None:
        self._deadline = self._on_deadline = None

    def _fire(self) -> None:
        self._timer = None
        deadline, callback = self._deadline, self._on_deadline
        if deadline is None or callback is None or self.closed:
            return
        loop = self._loop or asyncio.get_running_loop()
        if deadline - loop.time() > 0.001:  # moved later since this handle was set
            self._timer, self._timer_at = loop.call_at(deadline, self._fire), deadline
            return
        self._deadline = self._on_deadline = None
        callback()

    def _close(self) -> None:
        """Close after flushing what is buffered; a client that does not read for `idle_timeout`
        would keep that flush (and this connection) forever, so it is aborted then."""
        if self._transport is not None and not self._transport.is_closing():
            self._flush()
            self._transport.close()
            self._arm(self._limits.idle_timeout, self.abort)
        else:
            self._disarm()

    def close_if_idle(self) -> None:
        """For shutdown: close now unless a request is in flight (that one closes when done)."""
        self.closing = True
        if self.task is None:
            self._close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _phrase(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
