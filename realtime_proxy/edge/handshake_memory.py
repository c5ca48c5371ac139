"""Drop the parsed handshake a websockets sans-I/O protocol keeps for the whole session.

`ServerProtocol.parse` / `ClientProtocol.parse` parse the request / response, then delegate to the
frame parser with `yield from super().parse()`: the generator's frame keeps the parsed `Request` /
`Response` (headers included) alive as a local until the connection ends, ~2.5 KiB per leg
(python -m bench.idle_breakdown). Restarting the frame parser by itself frees them."""

from __future__ import annotations

from websockets.protocol import Protocol

from realtime_proxy.edge.frames import in_message


def parser_idle(ws: Protocol) -> bool:
    """websockets' frame parser holds nothing: it waits in `at_eof` for a frame's first byte, with
    an empty buffer, no failure, and no fragmented message begun. Only then may bytes bypass it."""
    if ws.parser_exc is not None or ws.reader.buffer:
        return False
    if in_message(ws):
        return False
    outer, inner = None, ws.parser
    while (deeper := getattr(inner, "gi_yieldfrom", None)) is not None:  # the subclass's, then ours
        outer, inner = inner, deeper
    return (
        getattr(inner, "__name__", "") == "at_eof"
        and getattr(outer, "gi_code", None) is Protocol.parse.__code__
    )


def drop_handshake(ws: Protocol) -> None:
    """Call once the handshake event has been taken from `events_received()`. Only done while the
    frame parser holds no state: it waits in `at_eof` for a frame's first byte (not mid-frame, which
    an empty buffer does not prove: a frame's header may have been read already), no failure, and
    the handshake's generator is still the parser (a refusal replaces it with `discard`)."""
    parser = ws.parser
    if ws.parser_exc is not None or getattr(parser, "__name__", "") != "parse":
        return
    inner = getattr(parser, "gi_yieldfrom", None)  # Protocol.parse, delegated to by the subclass
    if getattr(inner, "gi_code", None) is not Protocol.parse.__code__:
        return
    waiting = getattr(inner, "gi_yieldfrom", None)
    if getattr(waiting, "__name__", "") != "at_eof" or ws.reader.buffer:
        return
    ws.parser = Protocol.parse(ws)
    next(ws.parser)  # start it: it waits for the first frame's bytes, like the one it replaces
    parser.close()
