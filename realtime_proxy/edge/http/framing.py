"""Request-head checks h11 does not make, run on the raw bytes before h11 parses them.

RFC 9112 §6: a request whose body length can be read two ways is how requests are smuggled past
a proxy, so it is refused (400, connection closed) instead of being repaired: Content-Length with
Transfer-Encoding (h11 quietly picks chunked and keeps the Content-Length header, which the proxy then
forwarded), Content-Length given twice or as a list (h11 merges equal values), a folded header
line (obs-fold, §5.2; h11 unfolds it), a bare LF or other control character in the head (h11
accepts both). Bad chunk sizes h11 refuses itself. Each refusal reason is a fixed code: nothing
the client sent is ever quoted back or logged.
"""

from __future__ import annotations

import re

_HEAD_END = re.compile(rb"\n\r?\n")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB (RFC 9110 §5.5)

# reason -> what the client is told
MESSAGES = {
    "ambiguous_length": "The request gives its body length more than one way.",
    "obsolete_line_folding": "The request has a folded header line.",
    "invalid_header_characters": "The request head has control characters or bare line feeds.",
    "invalid_http_request": "The HTTP request is malformed.",
    "request_header_fields_too_large": "The request head is too large.",
    "request_timeout": "The request head did not arrive in time.",
    "unsupported_transfer_coding": "The request's transfer coding is not supported.",
}


def head_end(buffer: bytes) -> int:
    """Where the head (request line and fields) ends in `buffer`, or -1 while it is incomplete."""
    match = _HEAD_END.search(buffer)
    return -1 if match is None else match.start()


def framing_problem(head: bytes) -> str | None:
    """The reason (a key of MESSAGES) to refuse a request head, or None. `head` runs up to, not
    including, the LF that starts its blank line."""
    if not head.endswith(b"\r"):
        return "invalid_header_characters"  # the head ends with a bare LF
    lines = head[:-1].split(b"\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # empty lines before the request line may be ignored (RFC 9112 §2.2)
    lengths = encodings = 0
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            return "obsolete_line_folding"
        if _CONTROL.search(line):
            return "invalid_header_characters"
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            lengths += 1
            if b"," in value:
                return "ambiguous_length"
        elif name == b"transfer-encoding":
            encodings += 1
    if lines and _CONTROL.search(lines[0]):
        return "invalid_header_characters"
    if lengths > 1 or (lengths and encodings):
        return "ambiguous_length"
    return None


def h11_reason(status_hint: int) -> str:
    """A fixed reason for an error h11 raised (its message quotes the offending bytes)."""
    if status_hint == 431:
        return "request_header_fields_too_large"
    if status_hint == 501:
        return "unsupported_transfer_coding"
    return "invalid_http_request"
