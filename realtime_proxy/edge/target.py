"""The request target as the upstream will receive it, computed once.

The route classifier, the inject allow-lists (`auth.inject_paths`, `http.inject_routes`) and both
forwarders (HTTP and WebSocket) use the string `normalise_target` returns, so what is checked is
what is sent: the upstream client would otherwise drop a fragment (`/v1/files/f#/realtime/calls/x`
was classified as a call action and sent as `/v1/files/f` with the injected key) or resolve dot
segments the classifier had not.

Always: an origin-form target of visible ASCII without backslashes; the fragment dropped; the
percent-encoded unreserved characters (RFC 3986 §2.3) decoded. Then, `strict` (inject mode): any
fragment, `;` parameter, dot segment (also encoded), empty segment, encoded `/` `\\` `%`, or
malformed `%` escape in the path is refused; otherwise dot segments are removed (§5.2.4), as the
HTTP client would have done.
"""

from __future__ import annotations

import re
import string

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_AMBIGUOUS_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%2[Ff5]|%5[Cc]")
# What a refusal says, whatever the reason: fixed text, never the target itself.
REFUSAL = "The request target is not a plain absolute path."


class BadRequestTarget(ValueError):
    """The client's request target is not a plain absolute path (or is ambiguous, in strict mode)."""

    def __init__(self, message: str = REFUSAL) -> None:
        super().__init__(message)


def visible_ascii(target: str) -> bool:
    """Every character of the target is visible ASCII (RFC 9112 §3.2: no controls, spaces or raw
    bytes above 0x7e)."""
    # isascii: below 0x80; isprintable (for ASCII): 0x20-0x7e; then the space. C string scans,
    # not a Python loop per character (tests/unit/test_target_ascii.py checks every code point below 0x3000).
    return target.isascii() and target.isprintable() and " " not in target


def normalise_target(target: str, *, strict: bool) -> str:
    """The path and query to send upstream, or BadRequestTarget."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or not visible_ascii(target):
        raise BadRequestTarget
    target, fragment, _ = target.partition("#")
    path, question, query = target.partition("?")
    if strict and (fragment or ";" in path or _AMBIGUOUS_ESCAPE.search(path)):
        raise BadRequestTarget
    path = _ESCAPE.sub(_unreserved, path)
    segments = path.split("/")[1:]
    if strict:
        if any(s in (".", "..") for s in segments) or "" in segments[:-1]:
            raise BadRequestTarget
    elif any(s in (".", "..") for s in segments):
        path = _remove_dot_segments(segments)
    return path + question + query


def path_of(target: str) -> str:
    return target.partition("?")[0]


def _unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _remove_dot_segments(segments: list[str]) -> str:
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments and segments[-1] in (".", ".."):
        kept.append("")  # `/a/b/..` is the directory `/a/`
    return "/" + "/".join(kept)
