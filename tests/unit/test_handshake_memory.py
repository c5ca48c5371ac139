"""drop_handshake: the session stops holding the parsed handshake, and frames parse as before."""

from __future__ import annotations

import gc
import weakref

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from realtime_proxy.edge.handshake_memory import drop_handshake

MASKED = Frame(Opcode.TEXT, b'{"type":"x"}').serialize(mask=True, extensions=[])
UNMASKED = Frame(Opcode.TEXT, b'{"type":"y"}').serialize(mask=False, extensions=[])


def handshake() -> tuple[ClientProtocol, ServerProtocol]:
    client, server = ClientProtocol(parse_uri("ws://upstream/v1/realtime")), ServerProtocol()
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    return client, server


def test_the_parsed_request_is_freed_and_frames_still_parse() -> None:
    client, server = handshake()
    (request,) = server.events_received()
    assert isinstance(request, Request)
    held = weakref.ref(request)
    drop_handshake(server)
    server.send_response(server.accept(request))
    del request
    gc.collect()
    assert held() is None
    client.receive_data(b"".join(server.data_to_send()))
    (response,) = client.events_received()
    assert isinstance(response, Response)
    held_response = weakref.ref(response)
    drop_handshake(client)
    del response
    gc.collect()
    assert held_response() is None
    server.receive_data(MASKED[:3])  # a frame in two pieces, then a whole one
    server.receive_data(MASKED[3:] + MASKED)
    client.receive_data(UNMASKED)
    assert [(f.opcode, f.data) for f in server.events_received()] == [(Opcode.TEXT, b'{"type":"x"}')] * 2
    assert [(f.opcode, f.data) for f in client.events_received()] == [(Opcode.TEXT, b'{"type":"y"}')]


def test_nothing_is_done_while_the_parser_holds_bytes_or_has_failed() -> None:
    client, server = handshake()
    (request,) = server.events_received()
    server.send_response(server.accept(request))
    client.receive_data(b"".join(server.data_to_send()) + UNMASKED[:2])  # a frame's first bytes
    client.events_received()
    parser = client.parser
    drop_handshake(client)
    assert client.parser is parser  # mid-frame: the parser keeps its state
    client.receive_data(UNMASKED[2:])
    assert [f.data for f in client.events_received()] == [b'{"type":"y"}']
    refused = ServerProtocol()
    refused.receive_data(b"GET / HTTP/1.1\r\n\r\n")  # no upgrade headers
    (bad,) = refused.events_received()
    refused.send_response(refused.accept(bad))  # a refusal: the parser becomes `discard`
    discard = refused.parser
    drop_handshake(refused)
    assert refused.parser is discard
