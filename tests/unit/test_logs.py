"""The redaction processor: secrets and audio never survive, whatever shape they arrive in."""

from __future__ import annotations

import io
import json

from realtime_proxy.observe.logs import REDACTED, configure_logging, get_logger, redact_value, safe_headers


def test_secret_keys_and_patterns_are_redacted() -> None:
    event = {
        "headers": {"Authorization": "Bearer sk-abc123456789", "api-key": "azurekey", "User-Agent": "ua"},
        "subprotocols": ["realtime", "openai-insecure-api-key.sk-abcdef123456"],
        "url": "/openai/v1/realtime?model=x&api-key=azure-secret&foo=1",
        "text": "token ek_1234567890abcdef in a sentence",
    }
    out = redact_value(event)
    assert out["headers"]["Authorization"] == REDACTED and out["headers"]["api-key"] == REDACTED
    assert out["headers"]["User-Agent"] == "ua"
    assert out["subprotocols"] == ["realtime", REDACTED]
    assert "azure-secret" not in out["url"] and "foo=1" in out["url"]
    assert "ek_1234567890abcdef" not in out["text"]


def test_audio_fields_become_their_length() -> None:
    out = redact_value({"type": "input_audio_buffer.append", "audio": "QUJD" * 100, "delta": "x" * 10})
    assert out == {"type": "input_audio_buffer.append", "audio": "<400 chars>", "delta": "<10 chars>"}


def test_stdlib_logs_go_through_the_same_chain() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", level="info", stream=stream)
    import logging

    logging.getLogger("websockets.client").warning("connect with Bearer sk-livekey1234567")
    get_logger().info("hello", authorization="Bearer sk-livekey1234567")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert "sk-livekey1234567" not in stream.getvalue()
    assert lines[1]["authorization"] == REDACTED


# -- redaction of free text and failed handshakes (issue 15, defect 8) -------------------------------


def test_credential_headers_written_in_free_text_lose_their_values() -> None:
    cases = {
        "Authorization: Token tok-SECRET99": "Authorization: [REDACTED]",
        "('api-key', 'azure\x01SECRET')": "('api-key', '[REDACTED]')",
        "Cookie: session=SECRET; theme=dark": "Cookie: [REDACTED]",
        "invalid api-key header: SECRET": "invalid api-key header: [REDACTED]",
        "proxy-authorization=Basic SECRET&x=1": "proxy-authorization=[REDACTED]&x=1",
        "Incorrect API key provided: sk-pro*******SECRET.": "Incorrect API key provided: [REDACTED].",
        "the api-key was rotated": "the api-key was rotated",
        "invalid HTTP header value: Token SECRET": "invalid HTTP header value: [REDACTED]",
        "invalid HTTP header line: X-Token: SECRET": "invalid HTTP header line: [REDACTED]",
        "invalid Origin header: x;SECRET": "invalid Origin header: [REDACTED]",
    }
    assert {text: redact_value(text) for text in cases} == cases


def test_audio_pasted_into_free_text_becomes_its_length() -> None:
    tool = {"name": "lookup", "description": "sample: " + "UklGRg+/" * 40 + "== end"}
    assert redact_value(tool) == {"name": "lookup", "description": "sample: <322 chars of base64> end"}


def test_safe_headers_keep_only_harmless_values() -> None:
    items = [
        ("Host", "h"),
        ("Cookie", "c"),
        ("X-Custom", "x"),
        ("api-key", "k"),
        ("Sec-WebSocket-Version", "13"),
    ]
    assert safe_headers(items) == {
        "Host": "h",
        "Cookie": REDACTED,
        "X-Custom": REDACTED,
        "api-key": REDACTED,
        "Sec-WebSocket-Version": "13",
    }


def test_websockets_handshake_tracebacks_keep_the_exception_class_only() -> None:
    import logging

    stream = io.StringIO()
    configure_logging(log_format="json", level="info", stream=stream)
    try:
        raise ValueError("invalid subprotocol: openai-insecure-api-key.SECRET\x01;x")
    except ValueError:
        logging.getLogger("websockets.server").error("opening handshake failed", exc_info=True)
        logging.getLogger("proxy.other").error("kept", exc_info=True)
    websockets_line, other_line = (json.loads(line) for line in stream.getvalue().splitlines())
    assert websockets_line["exception"].endswith("ValueError: [REDACTED]")
    assert "SECRET" not in websockets_line["exception"]
    assert other_line["exception"].endswith("ValueError: invalid subprotocol: [REDACTED];x")


def test_every_value_is_capped_with_its_length_noted() -> None:
    from realtime_proxy.observe.logs import MAX_ITEMS, redact_value

    secret = "sk-proj-" + "A1-" * 40
    text = "x " * 510 + secret + " tail" * 1000  # the key straddles the 1 KiB cut
    capped = redact_value(text)
    assert capped.endswith(f"...<{len(text)} chars>") and len(capped) < 1100
    assert "A1-A1" not in capped  # redacted before the cut, not half-shown
    listed = redact_value(list(range(1000)))
    assert listed[:MAX_ITEMS] == list(range(MAX_ITEMS)) and listed[-1] == "<1000 items>"
    keyed = redact_value({f"k{i}": i for i in range(100)})
    assert len(keyed) == MAX_ITEMS + 1 and keyed["..."] == "<100 keys>"
    traceback = "Traceback\n" + "  frame\n" * 20000 + "ValueError: the end"
    assert redact_value(traceback, "exception").endswith("ValueError: the end")
