"""Cheap classification of raw frames, and the only JSON (de)serialisation the proxy does.

Audio frames (`input_audio_buffer.append`, `response.output_audio.delta`) are the bulk of the
traffic: they are classified by a regex on the first bytes and never parsed.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

import orjson

from realtime_proxy.core.actions import Frame

# `{"type":"x"` or `{"event_id":"e","type":"x"` with any JSON whitespace: what every SDK sends.
_LEADING_TYPE = re.compile(r'\s*\{\s*(?:"event_id"\s*:\s*"[^"\\]*"\s*,\s*)?"type"\s*:\s*"([^"\\]{1,128})"')
_LEADING_TYPE_B = re.compile(_LEADING_TYPE.pattern.encode())


_COMPACT_PREFIX = '{"type":"'
# Past this many characters a search for `"type"` costs more than hopping quote to quote (memchr).
_WALK_FROM = 8192


class _Last:
    """The last text frame whose leading type was asked for, and that type. The core and the
    wrappers around it (re-drive, continuity) each ask about the same frame object in turn: the
    second ask is an identity check. Text frames are immutable, and holding the frame keeps its
    identity from being reused."""

    __slots__ = ("frame", "type")

    def __init__(self) -> None:
        self.frame: str | None = None
        self.type: str | None = None


LAST = _Last()


def leading_type(frame: Frame) -> str | None:
    """The type when it leads the frame (`{"type":"x"` or `{"event_id":"e","type":"x"`), else None.

    Trust it alone only for frames the API wrote; a client's frame may repeat `type` (see sniff_type)."""
    if not isinstance(frame, str):  # bytes, or a bytearray/memoryview from the transport
        match_b = _LEADING_TYPE_B.match(frame)
        return match_b.group(1).decode() if match_b else None
    last = LAST
    if frame is last.frame:
        return last.type
    found = _leading(frame)
    last.frame, last.type = frame, found[0] if found else None
    return last.type


def _leading(text: str) -> tuple[str, int] | None:
    """The leading type and the index just past its closing quote."""
    if text.startswith(_COMPACT_PREFIX):  # the API's own compact form: skip the regex
        end = text.find('"', 9, 140)
        kind = text[9:end]
        if end > 9 and "\\" not in kind:
            return kind, end + 1
    match = _LEADING_TYPE.match(text)
    return (match.group(1), match.end()) if match else None


def sniff_type(frame: Frame) -> str | None:
    """The leading type when nothing after it could be another `type` key, else None ("parse to know").

    Parsers keep the last of duplicate keys (orjson does; so does the API), so a client could put
    `"type"` twice and have the rules see one event and the API another. A second `"type"` string
    anywhere, or any backslash-u escape (the parser reads `"\\u0074ype"` as `type`), leaves the frame
    to the full parse. Base64 has neither quotes nor backslashes: audio frames stay unparsed.
    Whenever this returns a type, `parse_object(frame)` has that type or is None (not JSON)."""
    text = frame if isinstance(frame, str) else bytes(frame).decode(errors="replace")
    found = _leading(text)
    if found is None:
        return None
    event_type, end = found
    if "\\" in text and text.find("\\u", end) != -1:
        return None
    return None if _has_type_string(text, end) else event_type


def _has_type_string(text: str, start: int) -> bool:
    if len(text) - start <= _WALK_FROM:
        return text.find('"type"', start) != -1
    find, at = text.find, text.startswith
    quote = find('"', start)
    while quote != -1:
        if at('type"', quote + 1):
            return True
        quote = find('"', quote + 1)
    return False


# Deeper events are forwarded as they are (the API answers them): the rules recurse, and orjson
# refuses to serialise past 254 levels, so a repaired copy of such an event could not be sent.
MAX_REPAIR_DEPTH = 64
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"[]{}')


def nesting_depth(frame: Frame) -> int:
    """How deep the frame's arrays and objects nest (brackets inside strings do not count).

    Made of C-speed bytes operations plus one pass over the brackets; malformed JSON gets a best effort."""
    data = frame.encode() if isinstance(frame, str) else bytes(frame)
    # Escapes first, left to right as a parser pairs them: `\\\\` then `\\"`, so quotes left delimit strings.
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    # Dropping adjacent quotes keeps every bracket's inside/outside-a-string status (parity is kept);
    # what is left splits into few pieces, since strings rarely hold brackets.
    brackets = b"".join(data.replace(b'""', b"").split(b'"')[::2])
    return max(0, max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0))


def too_deep(frame: Frame, limit: int = MAX_REPAIR_DEPTH) -> bool:
    """Whether the frame nests deeper than `limit`; free for frames with fewer brackets than that."""
    data = frame.encode() if isinstance(frame, str) else bytes(frame)
    return data.count(b"[") + data.count(b"{") > limit and nesting_depth(data) > limit


_FIELD_CACHE: dict[str, re.Pattern[str]] = {}
_HEAD = 320


def sniff_string_field(frame: str, name: str) -> str | None:
    """First `"name":"value"` string pair anywhere in a text frame, without parsing it.

    Base64 never contains a quote, so audio payloads cannot produce false matches.
    Use only for fields that occur once per event (e.g. `item_id`, `response_id`).
    The API puts ids before the payload, so the head is searched first, then the rest."""
    pattern = _FIELD_CACHE.get(name)
    if pattern is None:
        pattern = _FIELD_CACHE[name] = re.compile(r'"' + re.escape(name) + r'"\s*:\s*"([^"\\]*)"')
    match = pattern.search(frame, 0, _HEAD) or (pattern.search(frame) if len(frame) > _HEAD else None)
    return match.group(1) if match else None


def parse_object(frame: Frame) -> dict[str, Any] | None:
    """The frame as a JSON object, or None when it is not one (malformed JSON, arrays, ...)."""
    try:
        value = orjson.loads(frame)
    except (orjson.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_guarded(frame: Frame, limit: int = MAX_REPAIR_DEPTH) -> dict[str, Any] | None:
    """The one guard for every JSON the proxy parses (WebSocket events, HTTP session configs):
    None when it nests deeper than `limit` (never parsed: it goes on untouched and the API answers
    it), is malformed, or is not an object. Size is bounded by the caller (`max_parse_bytes`,
    `http.max_repair_body_bytes`)."""
    return None if too_deep(frame, limit) else parse_object(frame)


def dump(event: dict[str, Any]) -> str:
    """Serialise an event the proxy changed or made (compact, UTF-8 text frame)."""
    return orjson.dumps(event).decode()


def label_for(event_type: str | None, known: frozenset[str]) -> str:
    if event_type is None:
        return "invalid"
    return event_type if event_type in known else "other"
