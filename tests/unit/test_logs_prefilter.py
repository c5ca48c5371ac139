"""redact_text's shortcut (a text no secret pattern can match is returned as is) changes nothing:
on texts that do and do not hold secrets, it returns what the seven substitutions alone return.
And redact_value's scalar shortcut keeps what the full path keeps."""

from __future__ import annotations

import random
import string

import pytest

from realtime_proxy.observe import logs
from realtime_proxy.observe.logs import REDACTED, redact_text, redact_value


def substitutions_only(text: str) -> str:
    """redact_text without the shortcut: every pattern, in order."""
    for pattern in logs._SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: "".join(m.groups()) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return logs._BASE64_RUN.sub(lambda m: f"<{len(m.group(0))} chars of base64>", text)


SECRETS = [
    "openai-insecure-api-key.sk-abcdef123456",
    "OPENAI-INSECURE-API-KEY.x",
    "sk-abcdef123456",
    "ek_1234567890abcdef",
    "sk-proj-*****abcd",
    "Bearer abc.def",
    "bearer\tabc",
    "/v1/realtime?model=x&api-key=s3cret&x=1",
    "?token=abc",
    "&Authorization=abc",
    "Authorization: Token x",
    "proxy-authorization=abc",
    "('api-key', 'x')",
    "x-api_key: 1",
    "ApiKey=1",
    "invalid cookie header: a=b",
    "Set-Cookie: a=b",
    "invalid HTTP header value: Token x",
    "invalid Sec-WebSocket-Protocol header: openai-insecure-api-key.sk-1",
    "QUJD" * 70,
    "a" * 255 + "/",
    "\u0130nvalid cookie header: a=b",  # re's case-blind matches are wider than lower()
    "\u0131nvalid Cook\u0131e header: a=b",
    "Author\u0131zation: Token x",
    "openai-in\u017fecure-api-\u212aey.x",
    "api-\u212aey=1",
]
PLAIN = [
    "",
    "GET",
    "http_request",
    "2026-12-05T18:00:00.000000Z",
    "127.0.0.1:54321",
    "0123456789abcdef",
    "realtime_client_secrets",
    "complete",
    "a" * 255,
]
NEAR_MISSES = [  # not secrets, though some of them pass the shortcut
    "task-skewed",  # "sk" not at a word start, no separator
    "risk_level",
    "desk-top",  # "sk-" inside a word: \b does not hold
    "the invalid_request_error type",
    "\u212aEY: 1",
    "é" * 300,
]


@pytest.mark.parametrize("text", SECRETS + PLAIN + NEAR_MISSES)
def test_the_shortcut_returns_what_the_substitutions_return(text: str) -> None:
    assert redact_text(text) == substitutions_only(text)


@pytest.mark.parametrize("text", SECRETS)
def test_every_secret_shape_is_still_changed(text: str) -> None:
    assert redact_text(text) != text


@pytest.mark.parametrize("text", PLAIN[1:])
def test_plain_values_are_not_searched_further(text: str) -> None:
    assert not logs._maybe_secret(text)


def test_random_texts_built_from_the_patterns_parts_agree() -> None:
    parts = [
        "sk-", "ek_", "SK_", "bearer ", "Bearer\n", "?key=", "&token=", "api-key", "API_KEY", "apikey",
        "cookie", "authorization", "invalid ", " header: ", "openai-insecure-api-key.", ":", "=", "'",
        " ", "abc", "123456", "x" * 40, "/+", "é", "\u0130", "\u0131", "\u017f", "\u212a",
    ]  # fmt: skip
    rng = random.Random(26)
    for _ in range(3000):
        text = "".join(rng.choice(parts + list(string.ascii_letters)) for _ in range(rng.randint(1, 12)))
        assert redact_text(text) == substitutions_only(text), text


def test_scalars_keep_their_value_unless_their_key_names_a_secret() -> None:
    fields = {"status": 200, "ok": True, "duration_s": 0.5, "upstream_request_id": None, "Token": 5}
    assert redact_value(fields) == {**fields, "Token": REDACTED}
    assert redact_value(7, depth=21) == "<nested>"
