"""The leg's own frame reader and writer (edge.frames, edge.wire) against websockets itself.

Whatever bytes arrive, cut wherever the network cuts them, the leg delivers the same messages in
the same order and ends the connection with the same Close as websockets' own parser would; what
the leg writes, websockets reads back as the messages sent. Bad frames, oversize frames, control
frames, fragments and frames after a Close all go through websockets, so its rules still hold."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side, State

from realtime_proxy.edge import frames as codec
from realtime_proxy.edge.frames import COMMON, INVALID, OTHER, PARTIAL, frame_limit, head, scan
from realtime_proxy.edge.handshake_memory import parser_idle
from realtime_proxy.edge.wire import Leg, LegTiming

LIMIT = 1000
MASK = b"\x01\x02\x03\x04"


def raw(first: int, payload: bytes, masked: bool, length_bytes: int = 0) -> bytes:
    """A frame as bytes, any header (RSV bits, opcodes, non-minimal lengths) allowed."""
    n = len(payload)
    bit = 0x80 if masked else 0
    if length_bytes == 8 or n > 65535:
        header = struct.pack("!BBQ", first, bit | 127, n)
    elif length_bytes == 2 or n > 125:
        header = struct.pack("!BBH", first, bit | 126, n)
    else:
        header = struct.pack("!BB", first, bit | n)
    if not masked:
        return header + payload
    return header + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def frames(masked: bool) -> st.SearchStrategy[bytes]:
    """One frame of every kind a peer may send, valid or not."""
    body = st.binary(max_size=300)
    text = st.text(max_size=100).map(str.encode)
    return st.one_of(
        text.map(lambda p: raw(0x81, p, masked)),
        body.map(lambda p: raw(0x82, p, masked)),
        st.tuples(text, st.sampled_from([2, 8])).map(lambda t: raw(0x81, t[0], masked, t[1])),  # long form
        body.map(lambda p: raw(0x01, p, masked)),  # a fragment begins
        body.map(lambda p: raw(0x00, p, masked)),  # continuation
        body.map(lambda p: raw(0x80, p, masked)),  # final continuation
        st.binary(max_size=125).map(lambda p: raw(0x89, p, masked)),  # ping
        st.binary(max_size=125).map(lambda p: raw(0x8A, p, masked)),  # pong
        st.sampled_from([1000, 1001, 4000]).map(lambda c: raw(0x88, Close(c, "bye").serialize(), masked)),
        body.map(lambda p: raw(0x81, p, not masked)),  # masked the wrong way
        body.map(lambda p: raw(0xC1, p, masked)),  # RSV1 without an extension
        body.map(lambda p: raw(0x83, p, masked)),  # reserved opcode
        st.binary(min_size=126, max_size=200).map(lambda p: raw(0x89, p, masked)),  # long ping
        st.integers(LIMIT + 1, LIMIT + 50).map(lambda n: raw(0x82, bytes(n), masked)),  # too big
        st.just(raw(0x82, bytes(LIMIT), masked)),  # exactly the limit
    )


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bool]] = []

    def on_message(self, leg: Leg, data: bytes, text: bool, now: float) -> None:
        self.messages.append((data, text))

    def on_leg_ended(self, leg: Leg) -> None: ...
    def on_transport_closed(self, leg: Leg) -> None: ...


class Transport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None: ...
    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


def reference(side: Side, wire: bytes) -> tuple[list[tuple[bytes, bool]], int | None]:
    """websockets alone: the messages it assembles and the Close code it sends."""
    ws = Protocol(side, state=State.OPEN, max_size=LIMIT)
    ws.receive_data(wire)
    messages: list[tuple[bytes, bool]] = []
    parts, text = b"", False
    for frame in ws.events_received():
        assert isinstance(frame, Frame)
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            if frame.fin:
                messages.append((bytes(frame.data), frame.opcode is Opcode.TEXT))
            else:
                parts, text = bytes(frame.data), frame.opcode is Opcode.TEXT
        elif frame.opcode is Opcode.CONT:
            parts += frame.data
            if frame.fin:
                messages.append((parts, text))
    return messages, ws.close_sent.code if ws.close_sent else None


def leg(side: Side) -> tuple[Leg, Recorder, Transport]:
    made = Leg(Protocol(side, state=State.OPEN, max_size=LIMIT), LegTiming())
    sink, transport = Recorder(), Transport()
    made.sink, made.transport = sink, transport  # type: ignore[assignment]
    return made, sink, transport


def cut(wire: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p % (len(wire) + 1) for p in points} | {0, len(wire)})
    return [wire[a:b] for a, b in itertools.pairwise(edges) if b > a]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([Side.SERVER, Side.CLIENT]),
    st.data(),
    st.lists(st.integers(0, 10_000), max_size=12),
)
async def test_any_frames_cut_anywhere_read_as_websockets_reads_them(
    side: Side, data: st.DataObject, points: list[int]
) -> None:
    wire = b"".join(data.draw(st.lists(frames(masked=side is Side.SERVER), max_size=8)))
    expected_messages, expected_close = reference(side, wire)
    under_test, sink, _ = leg(side)
    for chunk in cut(wire, points):
        under_test.data_received(chunk)
    assert sink.messages == expected_messages
    assert (under_test.ws.close_sent.code if under_test.ws.close_sent else None) == expected_close


async def test_common_frames_take_the_fast_path_and_a_ping_between_them_is_answered() -> None:
    under_test, sink, transport = leg(Side.SERVER)
    wire = raw(0x81, b'{"type":"a"}', True) + raw(0x89, b"p", True) + raw(0x82, b"\x00" * 300, True)
    under_test.data_received(wire)
    assert under_test._fast is True  # websockets only saw the ping
    assert sink.messages == [(b'{"type":"a"}', True), (b"\x00" * 300, False)]
    assert bytes(transport.written) == Frame(Opcode.PONG, b"p").serialize(mask=False, extensions=[])


async def test_a_frame_split_across_reads_is_buffered_then_delivered_once() -> None:
    under_test, sink, _ = leg(Side.CLIENT)
    wire = raw(0x81, b"x" * 500, False)
    for i in range(len(wire)):
        under_test.data_received(wire[i : i + 1])
    assert sink.messages == [(b"x" * 500, True)]
    assert under_test._read_buffer is None


async def test_a_64_bit_length_frame_within_a_larger_limit_is_read() -> None:
    made = Leg(Protocol(Side.SERVER, state=State.OPEN, max_size=2**20), LegTiming())
    sink = Recorder()
    made.sink, made.transport = sink, Transport()  # type: ignore[assignment]
    payload = bytes(range(256)) * 300
    made.data_received(raw(0x82, payload, True))
    assert sink.messages == [(payload, False)]


async def test_a_partial_frame_at_eof_fails_the_leg_like_websockets() -> None:
    under_test, sink, _ = leg(Side.SERVER)
    under_test.data_received(raw(0x81, b"hello", True)[:4])
    under_test.eof_received()
    assert sink.messages == []
    assert under_test.ws.state is not OPEN
    assert isinstance(under_test.ws.parser_exc, EOFError)  # websockets saw the half frame, then EOF


async def test_once_the_sink_closes_the_leg_websockets_reads_what_follows() -> None:
    under_test, _, _transport = leg(Side.SERVER)

    class Closer(Recorder):
        def on_message(self, leg: Leg, data: bytes, text: bool, now: float) -> None:
            super().on_message(leg, data, text, now)
            leg.close(1008, "enough")

    closer = Closer()
    under_test.sink = closer
    under_test.data_received(raw(0x81, b"one", True) + raw(0x81, b"two", True))
    # websockets still reads data while it waits for the peer's Close (the relay ignores it by then)
    assert closer.messages == [(b"one", True), (b"two", True)]
    assert under_test._fast is False
    assert under_test.ws.close_sent is not None and under_test.ws.close_sent.code == 1008


async def test_a_compressed_leg_is_read_by_websockets_only() -> None:
    under_test, _sink, _ = leg(Side.SERVER)
    under_test.ws.extensions = [object()]  # type: ignore[list-item]
    under_test.data_received(b"")
    assert under_test._fast is False


@given(
    st.lists(st.tuples(st.binary(max_size=70_000), st.booleans()), max_size=5), st.sampled_from(list(Side))
)
@settings(max_examples=60, deadline=None)
async def test_what_the_leg_writes_websockets_reads_back(
    messages: list[tuple[bytes, bool]], side: Side
) -> None:
    made = Leg(Protocol(side, state=State.OPEN, max_size=2**20), LegTiming())
    transport = Transport()
    made.transport = transport  # type: ignore[assignment]
    made.ws.send_ping(b"k")  # queued by websockets first: keeps its place before our frames
    for data, text in messages:
        made.send(data, text)
    made.flush()
    peer = Protocol(Side.CLIENT if side is Side.SERVER else Side.SERVER, state=State.OPEN, max_size=2**20)
    peer.receive_data(bytes(transport.written))
    received = [frame for frame in peer.events_received() if isinstance(frame, Frame)]
    assert peer.parser_exc is None  # masked exactly when a client must mask
    assert [(f.opcode, f.data) for f in received] == [(Opcode.PING, b"k")] + [
        (Opcode.TEXT if text else Opcode.BINARY, data) for data, text in messages
    ]


def test_scan_names_each_kind_of_frame() -> None:
    common = raw(0x81, b"abc", True)
    assert scan(common, 0, True, LIMIT) == (COMMON, 6, 9)
    assert scan(common[:-1], 0, True, LIMIT)[0] == PARTIAL
    assert scan(common[:1], 0, True, LIMIT)[0] == PARTIAL
    assert scan(raw(0x89, b"p", True), 0, True, LIMIT)[0] == OTHER
    assert scan(raw(0x01, b"p", True), 0, True, LIMIT)[0] == OTHER
    assert scan(raw(0x81, b"p", False), 0, True, LIMIT)[0] == INVALID  # unmasked from a client
    assert scan(raw(0xC1, b"p", True), 0, True, LIMIT)[0] == INVALID
    assert scan(raw(0x83, b"p", True), 0, True, LIMIT)[0] == INVALID
    assert scan(raw(0x89, bytes(126), True), 0, True, LIMIT)[0] == INVALID
    assert scan(raw(0x82, bytes(LIMIT + 1), True)[:10], 0, True, LIMIT)[0] == INVALID  # said in the header
    assert scan(raw(0x82, bytes(70_000), False)[:9], 0, False, 2**20)[0] == PARTIAL


def test_head_and_frame_limit() -> None:
    assert head(True, 5, 0) == b"\x81\x05"
    assert head(False, 300, 0x80) == b"\x82\xfe\x01\x2c"
    assert head(True, 70_000, 0) == b"\x81\x7f" + (70_000).to_bytes(8, "big")
    assert frame_limit(Protocol(Side.SERVER, max_size=1234)) == 1234
    if hasattr(Protocol(Side.SERVER), "max_message_size"):  # websockets >= 16: (message, fragment)
        assert frame_limit(Protocol(Side.SERVER, max_size=(5000, 300))) == 300  # type: ignore[arg-type,unused-ignore]
    assert frame_limit(Protocol(Side.SERVER, max_size=None)) == 2**63


def test_parser_idle_only_between_frames() -> None:
    ws = Protocol(Side.SERVER, state=State.OPEN)
    assert parser_idle(ws)
    ws.receive_data(raw(0x81, b"abc", True)[:3])
    assert not parser_idle(ws)  # a header was read: the rest belongs to websockets
    ws.receive_data(raw(0x81, b"abc", True)[3:])
    assert parser_idle(ws)
    ws.receive_data(raw(0x01, b"abc", True))
    assert not parser_idle(ws)  # inside a fragmented message


async def test_after_a_bad_frame_that_ends_a_read_websockets_reads_the_next_reads_too() -> None:
    """Found by the property test: the failure came at a read's end, and the next read was read fast."""
    under_test, sink, _ = leg(Side.SERVER)
    under_test.data_received(raw(0x00, bytes(11), True))  # a continuation with nothing to continue
    under_test.data_received(raw(0x81, b"", True))
    assert sink.messages == []
    assert under_test.ws.close_sent is not None and under_test.ws.close_sent.code == 1002


def test_scan_reads_each_length_form_at_any_position_and_at_its_edges() -> None:
    # Empty payloads in the long forms: the header alone is the whole frame.
    assert scan(raw(0x81, b"", False, 2), 0, False, LIMIT) == (COMMON, 4, 4)
    assert scan(raw(0x81, b"", False, 8), 0, False, LIMIT) == (COMMON, 10, 10)
    assert scan(raw(0x81, b"", False, 8)[:9], 0, False, LIMIT)[0] == PARTIAL
    # Lengths are read where the frame starts, not at the buffer's start.
    assert scan(b"xx" + raw(0x01, bytes(200), True), 2, True, LIMIT) == (OTHER, 10, 210)
    assert scan(b"abc" + raw(0x01, bytes(5), True, 8), 3, True, LIMIT) == (OTHER, 17, 22)
    # Exactly the limit is accepted; a data frame over 125 bytes is not a long control frame.
    assert scan(raw(0x82, bytes(LIMIT), True), 0, True, LIMIT)[0] == COMMON
    assert scan(raw(0x81, bytes(200), True), 0, True, LIMIT)[0] == COMMON
    assert scan(raw(0x82, bytes(200), True), 0, True, LIMIT)[0] == COMMON
    assert scan(raw(0x89, bytes(125), True), 0, True, LIMIT)[0] == OTHER


def test_head_switches_length_form_at_126_and_65536() -> None:
    assert head(True, 125, 0) == b"\x81\x7d"
    assert head(True, 126, 0) == b"\x81\x7e\x00\x7e"
    assert head(False, 65535, 0) == b"\x82\x7e\xff\xff"
    assert head(False, 65536, 0x80) == b"\x82\xff" + (65536).to_bytes(8, "big")


def test_masking_keys_are_cut_from_one_random_block_until_it_is_used_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws: list[int] = []

    def urandom(n: int) -> bytes:
        draws.append(n)
        return bytes(range(len(draws) * 16, len(draws) * 16 + n))

    monkeypatch.setattr(codec.os, "urandom", urandom)
    pool = codec.MaskPool(size=8)
    assert [pool.take() for _ in range(3)] == [b"\x10\x11\x12\x13", b"\x14\x15\x16\x17", b"\x20\x21\x22\x23"]
    assert draws == [8, 8]  # one syscall per block of two keys, the first on first use
