"""One WebSocket leg: websockets' sans-I/O protocol driven from an asyncio.Protocol.

Bytes in -> `receive_data` -> frames -> whole messages handed to the leg's `sink` (the relay) ->
the sink sends on the other leg -> `data_to_send` -> `transport.write`. No future or queue per
message. Backpressure: when this leg's transport buffer is full, the peer leg stops reading.
Keepalive pings and every close are bounded in time, so a peer that stops reading is reaped.

Every buffer is bounded per direction and per source. A leg whose transport buffer is full stops
the peer's reads (what the peer sends would pile up here); past `own_buffer_limit` it also stops
its own reads, since what it sends makes the proxy answer it (Pongs to its Pings, refusals); and
a leg that does not drain for `write_stall_timeout` is closed with 1008, whatever the keepalive.
A fragmented message is gathered in one buffer (no object per fragment) and closed with 1009 past
`max_fragments`; its bytes are bounded by websockets' max_size.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol as Interface

from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import CONNECTING, OPEN, SERVER, Protocol

from realtime_proxy.edge.frames import (
    COMMON,
    INVALID,
    PARTIAL,
    apply_mask,
    frame_limit,
    head,
    in_message,
    masked,
    scan,
)
from realtime_proxy.edge.handshake_memory import parser_idle

# websockets 17 dropped the OP_* aliases; the Opcode members exist since 10.
OP_BINARY = Opcode.BINARY
OP_CONT = Opcode.CONT
OP_PONG = Opcode.PONG
OP_TEXT = Opcode.TEXT


KEEPALIVE_TIMEOUT = (1011, "keepalive ping timeout")
WRITE_STALLED = (1008, "not reading: write buffer not drained")
TOO_MANY_FRAGMENTS = (1009, "message has too many fragments")
# Why a leg is not read (a bit each, read again once none is left).
_PEER_FULL = 1  # the peer's write buffer is full: what this leg sends would pile up there
_OWN_FULL = 2  # this leg's own write buffer is over own_buffer_limit: it is not taking our answers
_ALL = _PEER_FULL | _OWN_FULL


_SHARED_ID = uuid.UUID(int=0)  # see Leg.__init__


@dataclass(frozen=True, slots=True)
class LegTiming:
    ping_interval: float = 0.0  # 0: no keepalive pings
    ping_timeout: float = 0.0
    close_timeout: float = 10.0  # after our Close (or a failure), abort the TCP connection
    write_stall_timeout: float = 30.0  # write buffer full this long: closed with 1008 (0: never)
    own_buffer_limit: int = 1024 * 1024  # past this, the leg's own reads stop too
    max_fragments: int = 1024  # fragments per message; past it: closed with 1009


class Sink(Interface):
    """What a leg reports to (the relay)."""

    def on_message(self, leg: Leg, data: bytes, text: bool, now: float) -> None: ...

    def on_leg_ended(self, leg: Leg) -> None: ...  # the WebSocket left OPEN (Close sent/received, lost)

    def on_transport_closed(self, leg: Leg) -> None: ...


class Leg(asyncio.Protocol):
    """A WebSocket connection after its opening handshake. Subclasses handle the handshake."""

    side = "leg"
    # Slots, not a dict per instance: two legs per session, thousands of idle sessions.
    __slots__ = (
        "_close_handle", "_fast", "_fragments", "_in_message", "_limit", "_parts", "_pauses",
        "_peer_masks", "_pending", "_ping", "_ping_handle", "_pings_sent", "_read_buffer",
        "_stall_handle", "_text", "closed", "ended", "loop", "peer", "sink", "timing", "transport",
        "write_blocked_since", "ws",
    )  # fmt: skip

    def __init__(self, ws: Protocol, timing: LegTiming) -> None:
        # websockets gives each protocol a fresh UUID that only its asyncio layer's logs read (the
        # sans-I/O protocol never does): one shared value saves ~270 B per leg (issue 26).
        ws.id = _SHARED_ID
        self.ws = ws
        self.timing = timing
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.sink: Sink | None = None
        self.peer: Leg | None = None
        self.ended = False  # reported to the sink as no longer OPEN
        self.closed = False  # the TCP connection is gone
        self._pauses = 0  # _PEER_FULL | _OWN_FULL: why the transport is not read
        self.write_blocked_since: float | None = None
        self._stall_handle: asyncio.TimerHandle | None = None
        self._parts = bytearray()  # the fragmented message being gathered
        self._fragments = 0
        self._text = False
        self._ping: bytes | None = None  # payload of the unanswered keepalive ping
        self._pings_sent = 0
        self._ping_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        # The common frame's own reader and writer (edge.frames): None until websockets' parser is
        # known to be between frames, then True; False for good once websockets must read it all
        # (compression, a bad frame, closing).
        self._fast: bool | None = None
        self._peer_masks = ws.side is SERVER  # frames from a client are masked, ours to it are not
        self._limit = frame_limit(ws)
        self._in_message = False  # websockets is gathering a fragmented message
        self._read_buffer: bytearray | None = None  # a frame not all received yet
        self._pending: list[bytes] | None = None  # frames written on the next flush

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        fast = self._fast
        if fast or (fast is None and self._can_read_fast()):
            self._read(data)
        else:
            self._to_websockets(data, self.loop.time())
        if self._pending is not None or ws.writes or self.ended:  # anything for this leg to write
            self.flush()
        if self.write_blocked_since is not None and self._over_own_limit():
            self.pause_reading(_OWN_FULL)  # our answers to it pile up: stop reading it too
        peer = self.peer
        if peer is not None:
            peer.flush()
        if not self._fast and ws.state is not OPEN:  # read fast, the leg is OPEN or already reported
            self.report_ended()

    def eof_received(self) -> bool | None:
        self._unread()
        self.ws.receive_eof()
        self.flush()
        self.report_ended()
        return None  # let asyncio close the transport (after flushing what is buffered)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._unread()
        self._pending = None
        self.ws.receive_eof()
        self.ws.data_to_send()  # nowhere to write any more
        for handle in (self._ping_handle, self._close_handle, self._stall_handle):
            if handle is not None:
                handle.cancel()
        if self.peer is not None:
            self.peer.resume_reading()  # nothing left to wait for on this side
        self.report_ended()
        if self.sink is not None:
            self.sink.on_transport_closed(self)

    @property
    def read_paused(self) -> bool:
        return bool(self._pauses)

    def pause_writing(self) -> None:
        self.write_blocked_since = self.loop.time()
        if self.peer is not None:
            self.peer.pause_reading()
        stall = self.timing.write_stall_timeout
        if stall > 0 and self._stall_handle is None:
            self._stall_handle = self.loop.call_later(stall, self._write_stalled)

    def resume_writing(self) -> None:
        self.write_blocked_since = None
        if self._stall_handle is not None:
            self._stall_handle.cancel()
            self._stall_handle = None
        if self.peer is not None:
            self.peer.resume_reading()
        self.resume_reading(_OWN_FULL)

    def _over_own_limit(self) -> bool:
        transport = self.transport
        return transport is not None and transport.get_write_buffer_size() > self.timing.own_buffer_limit

    def _write_stalled(self) -> None:
        """Nothing we wrote drained for write_stall_timeout: the Close (recorded as ours, for the
        session's outcome) would not be read either, so the connection is dropped with it."""
        self._stall_handle = None
        if self.write_blocked_since is not None and not self.closed:
            self.fail(*WRITE_STALLED)
            self.abort()

    # -- frames in ----------------------------------------------------------------------------

    def _can_read_fast(self) -> bool:
        ws = self.ws
        if ws.extensions or ws.state is not OPEN:
            self._fast = False
        elif parser_idle(ws):  # nothing of a frame is buffered in websockets: the next byte starts one
            self._fast = True
        return bool(self._fast)

    def _read(self, data: bytes | bytearray) -> None:
        """Common frames go straight to the sink; any other frame goes whole to websockets, in
        order; once the leg is not OPEN or a frame is bad, websockets reads everything."""
        buffered = self._read_buffer
        if buffered is not None:
            self._read_buffer = None
            buffered += data
            data = buffered
        sink, now = self.sink, self.loop.time()
        peer_masks, limit = self._peer_masks, self._limit
        mask_bit = 0x80 if peer_masks else 0
        pos, end, closing = 0, len(data), False
        while pos < end:
            # A voice frame's header (7 or 16-bit length, whole in this read) inline: a call to scan()
            # per frame cost ~1.6k instructions of the ~43k a client append costs in all.
            first = data[pos]
            second = data[pos + 1] if end - pos >= 4 else 0xFF  # 0xFF: too short here, scan() decides
            length = second & 0x7F
            common = (first == 0x81 or first == 0x82) and second & 0x80 == mask_bit
            if common and length < 126:
                start = pos + (6 if peer_masks else 2)
                kind, stop = COMMON, start + length
            elif common and length == 126:
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + (8 if peer_masks else 4)
                kind, stop = (COMMON if length <= limit else INVALID), start + length
            else:
                kind, start, stop = scan(data, pos, peer_masks, limit)
            if kind == COMMON and stop > end:
                kind = PARTIAL
            if kind == COMMON and not self._in_message:
                if peer_masks:
                    payload = apply_mask(data[start:stop], data[start - 4 : start])
                else:
                    payload = bytes(data[start:stop])  # no second copy: bytes() of bytes is itself
                if sink is not None:
                    sink.on_message(self, payload, data[pos] == 0x81, now)
                closing = self.ended  # the sink closed this leg
            elif kind == PARTIAL:
                if pos or buffered is None:
                    buffered = bytearray(data[pos:])
                self._read_buffer = buffered
                return
            elif kind == INVALID:
                break  # websockets fails the leg with the code this frame deserves
            else:  # any other valid frame, or a data frame where websockets expects a continuation
                self._to_websockets(data[pos:stop], now)
                self._in_message = in_message(self.ws)
                closing = self.ws.state is not OPEN
            pos = stop
            if closing:
                break  # websockets reads (or discards) what follows
        if pos < end or closing:
            self._fast = False
        if pos < end:
            self._to_websockets(data[pos:], now)

    def _to_websockets(self, data: bytes | bytearray, now: float) -> None:
        ws = self.ws
        ws.receive_data(data)
        events = ws.events_received()
        if events:
            self.handle_frames(events, now)

    def _unread(self) -> None:
        """A partly received frame goes to websockets before the EOF, which fails it (1006)."""
        buffered = self._read_buffer
        if buffered is not None:
            self._read_buffer = None
            self.ws.receive_data(bytes(buffered))

    def handle_frames(self, frames: Iterable[object], now: float) -> None:
        sink = self.sink
        for frame in frames:
            assert isinstance(frame, WsFrame)
            opcode = frame.opcode
            if opcode is OP_TEXT or opcode is OP_BINARY:
                if frame.fin:
                    if sink is not None:
                        sink.on_message(self, frame.data, opcode is OP_TEXT, now)  # type: ignore[arg-type]
                else:
                    self._parts, self._text, self._fragments = bytearray(frame.data), opcode is OP_TEXT, 1
            elif opcode is OP_CONT:
                self._fragments += 1
                if self._fragments > self.timing.max_fragments:
                    self._parts, self._fragments = bytearray(), 0
                    self.fail(*TOO_MANY_FRAGMENTS)
                    return  # what followed in this read is dropped with the connection
                self._parts += frame.data
                if frame.fin:
                    data, self._parts, self._fragments = bytes(self._parts), bytearray(), 0
                    if sink is not None:
                        sink.on_message(self, data, self._text, now)
            elif opcode is OP_PONG and frame.data == self._ping:
                self._ping = None

    # -- frames out ---------------------------------------------------------------------------

    def send(self, data: bytes, text: bool) -> None:
        """Queue one message (written on the next `flush`); dropped once the leg is closing."""
        ws = self.ws
        if ws.state is not OPEN:
            return
        if ws.extensions:  # compressed: websockets frames it
            if text:
                ws.send_text(data)
            else:
                ws.send_binary(data)
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = []
        if ws.writes:  # what websockets queued first (a Pong, the handshake) keeps its place
            pending.extend(ws.data_to_send())
        if self._peer_masks:  # we are the server: nothing we send is masked
            pending.append(head(text, len(data), 0))
        else:
            header, data = masked(text, data)
            pending.append(header)
        if data:  # an empty chunk would mean EOF to flush
            pending.append(data)

    def flush(self) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        ws = self.ws
        pending = self._pending
        if pending:
            self._pending = None
        from_websockets = bool(ws.writes)  # a Pong, a Close, EOF: only these can follow a state change
        if from_websockets:
            chunks = ws.data_to_send()
            if pending:
                chunks = pending + chunks  # websockets' frames come after ours (its Close last of all)
            if len(chunks) == 1 and chunks[0]:
                transport.write(chunks[0])
            else:
                self._write_all(transport, chunks)
        elif pending:
            transport.write(b"".join(pending))  # only our frames: no EOF marker among them
        if self._close_handle is None and (from_websockets or self.ended):
            state = ws.state
            if state is not OPEN and (state is not CONNECTING or ws.eof_sent):
                # Never wait without bound for a peer to finish closing (it may have stopped reading).
                self._close_handle = self.loop.call_later(self.timing.close_timeout, self.abort)

    def _write_all(self, transport: asyncio.Transport, chunks: list[bytes]) -> None:
        """One write (one syscall) for the frames queued together; the empty chunk means EOF."""
        pending: list[bytes] = []
        for data in chunks:
            if data:
                pending.append(data)
                continue
            if pending:
                transport.write(b"".join(pending))
                pending = []
            if self.side == "client" or not transport.can_write_eof():
                transport.close()  # a server closes the TCP connection first (RFC 6455 §7.1.1)
            else:
                transport.write_eof()
        if pending:
            transport.write(b"".join(pending))

    def close(self, code: int | None, reason: str) -> None:
        """Send a Close (`code` None: an empty Close frame, which the peer reads as 1005)."""
        if self.ws.state is OPEN:
            self.ws.send_close(code, reason if code is not None else "")
        self.flush()
        self.resume_reading(_ALL)  # keep reading (and dropping) so the peer's Close is seen
        self.report_ended()

    def fail(self, code: int, reason: str) -> None:
        self.ws.fail(code, reason)
        self.flush()
        self.resume_reading(_ALL)
        self.report_ended()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def report_ended(self) -> None:
        if not self.ended and self.ws.state is not OPEN:
            self.ended = True
            if self._ping_handle is not None:
                self._ping_handle.cancel()
            if self.sink is not None:
                self.sink.on_leg_ended(self)

    # -- flow control -------------------------------------------------------------------------

    def pause_reading(self, reason: int = _PEER_FULL) -> None:
        if self.transport is None or self.closed or self.ended:
            return
        if not self._pauses:
            self.transport.pause_reading()
        self._pauses |= reason

    def resume_reading(self, reason: int = _PEER_FULL) -> None:
        if not self._pauses & reason:
            return
        self._pauses &= ~reason
        if not self._pauses and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    # -- keepalive ----------------------------------------------------------------------------

    def start_keepalive(self) -> None:
        if self.timing.ping_interval > 0:
            self._ping_handle = self.loop.call_later(self.timing.ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        if self.ws.state is not OPEN:
            return
        self._pings_sent += 1
        self._ping = struct.pack("!I", self._pings_sent)
        self.ws.send_ping(self._ping)
        self.flush()
        timing = self.timing
        if timing.ping_timeout > 0:
            self._ping_handle = self.loop.call_later(timing.ping_timeout, self._ping_deadline)
        else:
            self._ping_handle = self.loop.call_later(timing.ping_interval, self._send_ping)

    def _ping_deadline(self) -> None:
        timing = self.timing
        if self._ping is None:  # answered
            delay = max(timing.ping_interval - timing.ping_timeout, 0.0)
            self._ping_handle = self.loop.call_later(delay, self._send_ping)
        elif self._stuck_elsewhere():
            # The pong may be waiting unread behind a peer that stopped reading: not this leg's fault.
            self._ping_handle = self.loop.call_later(timing.ping_timeout, self._ping_deadline)
        else:
            self.fail(*KEEPALIVE_TIMEOUT)

    def _stuck_elsewhere(self) -> bool:
        """This leg is not read because the peer's buffer is full, and this leg itself is still
        taking what we write (were it not, it is stuck too and is reaped)."""
        if self._pauses != _PEER_FULL:
            return False  # read as usual, or not taking what we write either: stuck itself
        blocked = self.write_blocked_since
        return blocked is None or self.loop.time() - blocked < self.timing.ping_timeout
