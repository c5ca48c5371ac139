"""The common WebSocket frame read and written without websockets' generator parser.

A voice session moves ~50 frames a second each way, nearly all of one kind: a whole message in one
frame (FIN set, TEXT or BINARY, no RSV bits, no extension), masked when it comes from a client.
websockets' sans-I/O reader spends ~36k instructions on such a frame (a generator step per read, a
Frame object, its checks) and its writer ~16k (python -m bench.frame_costs). Here that frame costs
one header read and websockets' own C `apply_mask`.

`scan` only says what the next frame is; the leg decides. Every frame that is not the common kind
goes to websockets whole, so websockets keeps every protocol rule: control frames, fragments and
their limits, close codes, failures, and whatever follows a failure.
"""

from __future__ import annotations

import os
import struct
from typing import Final

from websockets.protocol import Protocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C speedups
    from websockets.utils import apply_mask

__all__ = [
    "COMMON", "INVALID", "MASKS", "OTHER", "PARTIAL", "MaskPool", "apply_mask", "frame_limit", "head",
    "in_message", "masked", "scan",
]  # fmt: skip

_U16: Final = struct.Struct("!H").unpack_from
_U64: Final = struct.Struct("!Q").unpack_from
_B2: Final = struct.Struct("!BB").pack
_B2H: Final = struct.Struct("!BBH").pack
_B2Q: Final = struct.Struct("!BBQ").pack

# What `scan` found at a position (its first value).
COMMON: Final = 0  # a whole FIN TEXT/BINARY frame, masked as required, within the limit
OTHER: Final = 1  # a whole frame of any other valid kind: websockets reads it
PARTIAL: Final = 2  # the frame is not all here yet (its length is within the limit)
INVALID: Final = 3  # websockets must see it now: a bad header, or over the limit (fails it at once)

_VALID_OPCODES: Final = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))


def scan(data: bytes | bytearray, pos: int, masked: bool, limit: int) -> tuple[int, int, int]:
    """(kind, payload start, frame end) of the frame at `pos`. `masked`: the peer must mask (it is a
    client). `limit`: the largest payload accepted (websockets' size limit)."""
    available = len(data) - pos
    if available < 2:
        return PARTIAL, 0, 0
    first, second = data[pos], data[pos + 1]
    length = second & 0x7F
    start = pos + 2
    if length == 126:
        if available < 4:
            return PARTIAL, 0, 0
        length = _U16(data, start)[0]
        start += 2
    elif length == 127:
        if available < 10:
            return PARTIAL, 0, 0
        length = _U64(data, start)[0]
        start += 8
    if bool(second & 0x80) is not masked or length > limit or first & 0x70 or (first & 0x08 and length > 125):
        return INVALID, 0, 0  # masking, size, RSV bits, a long control frame: websockets fails it
    if masked:
        start += 4
    end = start + length
    if first == 0x81 or first == 0x82:
        kind = COMMON
    elif first & 0x0F in _VALID_OPCODES:
        kind = OTHER
    else:
        return INVALID, 0, 0
    return (kind if end <= len(data) else PARTIAL), start, end


def frame_limit(ws: Protocol) -> int:
    """websockets' payload limit for a frame that starts a message (17: message and fragment sizes;
    earlier: max_size). No limit set: none here either."""
    sizes = [getattr(ws, name, None) for name in ("max_message_size", "max_fragment_size", "max_size")]
    given = [size for size in sizes if isinstance(size, int)]
    return min(given) if given else 2**63


def in_message(ws: Protocol) -> bool:
    """websockets is inside a fragmented message (a FIN data frame now would be a protocol error)."""
    return getattr(ws, "current_size", getattr(ws, "cur_size", None)) is not None


def head(text: bool, length: int, mask_bit: int) -> bytes:
    """A FIN TEXT/BINARY frame's header (the mask key, when there is one, follows it)."""
    first = 0x81 if text else 0x82
    if length < 126:
        return _B2(first, mask_bit | length)
    if length < 65536:
        return _B2H(first, mask_bit | 126, length)
    return _B2Q(first, mask_bit | 127, length)


class MaskPool:
    """Masking keys cut from one `os.urandom` block: one syscall per 1,024 frames, not one each.
    Still unpredictable to a script on the client side, which is what RFC 6455 §10.3 asks."""

    __slots__ = ("block", "offset", "size")

    def __init__(self, size: int = 4096) -> None:
        self.size, self.block, self.offset = size, b"", size

    def take(self) -> bytes:
        if self.offset >= self.size:
            self.block, self.offset = os.urandom(self.size), 0
        offset = self.offset
        self.offset = offset + 4
        return self.block[offset : offset + 4]


MASKS: Final = MaskPool()


def masked(text: bool, data: bytes) -> tuple[bytes, bytes]:
    """A client's FIN TEXT/BINARY frame: (header with its masking key, masked payload)."""
    mask = MASKS.take()
    return head(text, len(data), 0x80) + mask, apply_mask(data, mask)
