"""Pure parts of the HTTP side: route classes, the multipart splice, session-config repairs."""

from __future__ import annotations

import orjson
import pytest

from realtime_proxy.core.rules import build_chain
from realtime_proxy.edge.http.multipart import boundary_of, named_part, part_spans
from realtime_proxy.edge.http.repair import repair_body
from realtime_proxy.edge.http.routes import BodyKind, classify

CHAIN = build_chain()
SDP = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n--not-a-boundary\r\na=x\r\n"


def multipart(session: bytes, boundary: str = "b0und") -> tuple[str, bytes]:
    def part(name: str, content_type: str) -> bytes:
        disposition = f'Content-Disposition: form-data; name="{name}"'
        return f"--{boundary}\r\n{disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()

    body = part("sdp", "application/sdp") + SDP + b"\r\n" + part("session", "application/json") + session
    return f"multipart/form-data; boundary={boundary}", body + f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    ("method", "path", "route", "kind"),
    [
        ("POST", "/v1/realtime/client_secrets", "realtime_client_secrets", BodyKind.SECRET_REQUEST),
        ("POST", "/openai/v1/realtime/client_secrets", "realtime_client_secrets", BodyKind.SECRET_REQUEST),
        (
            "POST",
            "/v1/realtime/translations/client_secrets",
            "translations_client_secrets",
            BodyKind.SECRET_REQUEST,
        ),
        ("POST", "/v1/realtime/calls", "realtime_calls", BodyKind.OFFER),
        ("POST", "/v1/realtime/calls/rtc_1/accept", "realtime_call_action", BodyKind.SESSION),
        ("POST", "/v1/realtime/calls/rtc_1/hangup", "realtime_call_action", BodyKind.NONE),
        ("POST", "/v1/realtime/calls/rtc_1/refer", "realtime_call_action", BodyKind.NONE),
        ("GET", "/v1/realtime/client_secrets", "realtime_client_secrets", BodyKind.NONE),
        ("GET", "/v1/models", "other", BodyKind.NONE),
        ("POST", "/v1/responses", "other", BodyKind.NONE),
        ("GET", "/v1/realtime", "other", BodyKind.NONE),
    ],
)
def test_route_classes(method: str, path: str, route: str, kind: BodyKind) -> None:
    got = classify(method, path)
    assert (got.name, got.body) == (route, kind)


def test_boundary_and_parts() -> None:
    content_type, body = multipart(b"{}")
    assert boundary_of(content_type) == b"b0und"
    assert boundary_of('multipart/form-data; boundary="q b"') == b"q b"
    assert boundary_of("application/json") is None
    spans = part_spans(body, b"b0und")
    assert spans is not None and [(name, body[s:e]) for name, s, e in spans] == [
        (b"sdp", SDP),
        (b"session", b"{}"),
    ]


def test_malformed_or_ambiguous_multipart_is_left_alone() -> None:
    _, body = multipart(b"{}")
    assert named_part(body[:-12], b"b0und", "session") is None  # no closing delimiter... and truncated
    doubled = (
        body.replace(b"--b0und--\r\n", b"")
        + b'--b0und\r\nContent-Disposition: form-data; name="session"\r\n\r\n{}\r\n--b0und--\r\n'
    )
    assert named_part(doubled, b"b0und", "session") is None
    assert named_part(b"no delimiters at all", b"b0und", "session") is None


def test_offer_session_repaired_and_sdp_untouched() -> None:
    content_type, body = multipart(b'{"type": "realtime", "modalities": ["text"]}')
    repaired = repair_body(BodyKind.OFFER, content_type, body, CHAIN)
    assert repaired.result is not None and [r.rule for r in repaired.result.rewrites] == [
        "modalities_to_output_modalities"
    ]
    spans = part_spans(repaired.body, b"b0und")
    assert spans is not None
    parts = {name: repaired.body[s:e] for name, s, e in spans}
    assert parts[b"sdp"] == SDP
    assert orjson.loads(parts[b"session"]) == {"type": "realtime", "output_modalities": ["text"]}
    head, tail = body.split(b'{"type"', 1)[0], body.rsplit(b"}", 1)[1]
    assert repaired.body.startswith(head) and repaired.body.endswith(tail)  # every other byte kept


@pytest.mark.parametrize(
    ("kind", "content_type", "body"),
    [
        (
            BodyKind.SECRET_REQUEST,
            "application/json",
            b'{ "session" : {"type": "realtime", "instructions": "hi"} }',
        ),
        (BodyKind.SESSION, "application/json", b'{"type":"realtime",  "output_modalities":["text"]}'),
        (BodyKind.OFFER, "application/sdp", SDP),
        (BodyKind.OFFER, *multipart(b'{"type":  "realtime"}')),
        (BodyKind.SECRET_REQUEST, "application/json", b"not json"),
        (BodyKind.SECRET_REQUEST, "application/json", b'{"expires_after": {"seconds": 60}}'),
        (BodyKind.SESSION, "application/json", b"[1, 2]"),
    ],
)
def test_nothing_to_repair_is_forwarded_byte_for_byte(kind: BodyKind, content_type: str, body: bytes) -> None:
    assert repair_body(kind, content_type, body, CHAIN).body == body


def test_secret_request_keeps_its_other_fields() -> None:
    body = orjson.dumps(
        {"expires_after": {"anchor": "created_at", "seconds": 60}, "session": {"voice": "alloy"}}
    )
    repaired = repair_body(BodyKind.SECRET_REQUEST, "application/json", body, CHAIN)
    assert orjson.loads(repaired.body) == {
        "expires_after": {"anchor": "created_at", "seconds": 60},
        "session": {"type": "realtime", "audio": {"output": {"voice": "alloy"}}},
    }


def test_translation_sessions_are_out_of_every_ga_rule_scope() -> None:
    session = {
        "model": "gpt-realtime-translate",
        "modalities": ["text"],
        "audio": {"output": {"language": "de"}},
    }
    body = orjson.dumps({"session": session})
    repaired = repair_body(BodyKind.SECRET_REQUEST, "application/json", body, CHAIN, route="translation")
    assert repaired.body == body  # not even the beta name: the API answers for translation sessions
    as_realtime = repair_body(BodyKind.SECRET_REQUEST, "application/json", body, CHAIN)
    assert as_realtime.body != body


def test_offers_and_accepts_configure_realtime_sessions() -> None:
    # No realtime-only field to tell the type: only the route's knowledge adds it.
    plain = b'{"audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}}'
    accepted = repair_body(BodyKind.SESSION, "application/json", plain, CHAIN)
    assert orjson.loads(accepted.body)["type"] == "realtime"
    secret = repair_body(BodyKind.SECRET_REQUEST, "application/json", b'{"session": ' + plain + b"}", CHAIN)
    assert secret.body == b'{"session": ' + plain + b"}"  # could be a transcription session: unchanged


def test_observe_only_chain_reports_but_forwards_unchanged() -> None:
    body = b'{"session": {"type": "realtime", "modalities": ["text"]}}'
    repaired = repair_body(BodyKind.SECRET_REQUEST, "application/json", body, build_chain(observe_only=True))
    assert repaired.body == body
    assert repaired.result is not None and [r.rule for r in repaired.result.rewrites] == [
        "modalities_to_output_modalities"
    ]
