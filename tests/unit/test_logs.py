"""The redaction processor: secrets and audio never survive, whatever shape they arrive in."""

from __future__ import annotations

import io
import json

from proxy.ops.logs import REDACTED, configure_logging, get_logger, redact_value


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
