"""Just enough multipart/form-data to find one part's bytes, so it can be replaced while every
other byte (the SDP offer above all) is forwarded exactly as the client sent it."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r';\s*boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_NAME = re.compile(rb'(?:^|;)\s*name="?([^";]*)"?', re.IGNORECASE)


def boundary_of(content_type: str) -> bytes | None:
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).encode("latin-1")


def _part_name(headers: bytes) -> bytes | None:
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-disposition":
            match = _NAME.search(value.split(b";", 1)[1] if b";" in value else b"")
            return match.group(1) if match else None
    return None


def part_spans(body: bytes, boundary: bytes) -> list[tuple[bytes | None, int, int]] | None:
    """(name, start, end) of each part's content; None when the body is not well-formed."""
    delimiter = b"--" + boundary
    pos = body.find(delimiter)
    if pos < 0 or (pos > 0 and body[pos - 2 : pos] != b"\r\n"):
        return None
    spans: list[tuple[bytes | None, int, int]] = []
    while True:
        after = pos + len(delimiter)
        if body[after : after + 2] == b"--":
            return spans
        line_end = body.find(b"\r\n", after)
        head_end = body.find(b"\r\n\r\n", line_end) if line_end >= 0 else -1
        if head_end < 0:
            return None
        start = head_end + 4
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            return None
        spans.append((_part_name(body[line_end + 2 : head_end]), start, end))
        pos = end + 2


def named_part(body: bytes, boundary: bytes, name: str) -> tuple[int, int] | None:
    """The span of the one part called `name`; None when absent, repeated or the body is malformed."""
    spans = part_spans(body, boundary) or []
    found = [(start, end) for part, start, end in spans if part == name.encode()]
    return found[0] if len(found) == 1 else None
