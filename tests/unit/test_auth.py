"""auth.Admission: passthrough keeps everything; inject accepts a Bearer token or the browser key
subprotocol (checked by SHA-256 digest), strips client credentials and the key subprotocol, adds the
real key (env or file, Authorization or api-key); refusals are 401/403 with stable codes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.streams import StreamReader

from realtime_proxy.edge.auth import (
    KEY_SUBPROTOCOL,
    Admission,
    AdmissionRefused,
    load_upstream_key,
    presented_token,
    token_digest,
)
from realtime_proxy.settings import AuthSettings

TOKEN = "tok-123"
DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()


def inject(**extra: object) -> Admission:
    return Admission(AuthSettings(mode="inject", token_sha256=(DIGEST,), **extra), upstream_key="sk-real")  # type: ignore[arg-type]


def test_passthrough_is_identity() -> None:
    headers = Headers([("Authorization", "Bearer sk-client"), ("X-A", "1")])
    offered = ["realtime", KEY_SUBPROTOCOL + "sk-client"]
    assert Admission(AuthSettings()).admit(headers, offered) == (headers, offered)


def test_inject_bearer() -> None:
    headers, offered = inject().admit(
        Headers([("authorization", f"bearer {TOKEN}"), ("api-key", "x"), ("X-A", "1")]), ["realtime"]
    )
    assert headers.get_all("Authorization") == ["Bearer sk-real"]
    assert "api-key" not in headers and headers["X-A"] == "1"
    assert offered == ["realtime"]


def test_inject_subprotocol_stripped() -> None:
    headers, offered = inject(upstream_key_header="api-key").admit(
        Headers(), ["realtime", KEY_SUBPROTOCOL + TOKEN]
    )
    assert offered == ["realtime"]
    assert headers["api-key"] == "sk-real" and "Authorization" not in headers


@pytest.mark.parametrize(
    ("headers", "offered"),
    [
        ([], []),
        ([("Authorization", "Bearer nope")], []),
        ([("Authorization", f"Token {TOKEN}")], []),
        ([("api-key", TOKEN)], []),
        ([], [KEY_SUBPROTOCOL + "nope"]),
        ([("Authorization", "Bearer nope")], [KEY_SUBPROTOCOL + TOKEN]),  # the header wins
    ],
)
def test_inject_refusals(headers: list[tuple[str, str]], offered: list[str]) -> None:
    with pytest.raises(AdmissionRefused) as info:
        inject().admit(Headers(headers), offered)
    assert (info.value.status, info.value.code, info.value.result) == (
        401,
        "invalid_api_key",
        "rejected_auth",
    )
    assert TOKEN not in info.value.message


def test_origin_allow_list() -> None:
    admission = Admission(AuthSettings(allowed_origins=("https://app.example/",)))
    admission.admit(Headers([("Origin", "https://app.example")]), [])
    admission.admit(Headers(), [])
    with pytest.raises(AdmissionRefused) as info:
        admission.admit(Headers([("Origin", "https://evil.example")]), [])
    assert info.value.status == 403 and info.value.code == "origin_not_allowed"


def test_presented_token() -> None:
    assert presented_token(Headers([("Authorization", "BEARER  t ")]), []) == "t"
    assert presented_token(Headers(), ["realtime", KEY_SUBPROTOCOL + "t2"]) == "t2"
    assert presented_token(Headers(), ["realtime"]) is None
    assert token_digest(TOKEN) == DIGEST


def test_upstream_key_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", " sk-env \n")
    assert load_upstream_key(AuthSettings(mode="inject", upstream_key_env="MY_KEY")) == "sk-env"
    key_file = tmp_path / "key"
    key_file.write_text("sk-file\n")
    settings = AuthSettings(mode="inject", upstream_key_env="MY_KEY", upstream_key_file=str(key_file))
    assert load_upstream_key(settings) == "sk-file"  # the file wins
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(ValueError, match=r"\$MY_KEY"):
        load_upstream_key(AuthSettings(mode="inject", upstream_key_env="MY_KEY"))
    with pytest.raises(ValueError, match="token_sha256"):
        Admission(AuthSettings(mode="inject"), upstream_key="k")


# -- hostile handshakes (issue 15, defects 6 and 7) --------------------------------------------------

REFUSED_HEADER = (400, "invalid_header", "rejected_header")


def _parsed(headers: list[tuple[str, str]]) -> Headers:
    """The headers as websockets' own parser hands them to the listener, raw bytes and all (up to
    websockets 16 non-ASCII bytes arrive as surrogates, from 17 as ISO-8859-1 characters)."""
    lines = [b"GET /v1/realtime HTTP/1.1", b"Host: x"]
    lines += [f"{k}: {v}".encode("utf-8", "surrogateescape") for k, v in headers]
    reader = StreamReader()
    reader.feed_data(b"\r\n".join([*lines, b"", b""]))
    parser = Request.parse(reader.read_line)
    try:
        next(parser)
    except StopIteration as done:
        request: Request = done.value
        return request.headers
    raise AssertionError("the request head did not parse")


def _refusal(
    admission: Admission, headers: list[tuple[str, str]], offered: list[str], path: str
) -> tuple[int, str, str]:
    with pytest.raises(AdmissionRefused) as info:
        admission.admit(_parsed(headers), offered, path)
    assert "SECRET" not in info.value.message  # names the header, never its value
    return info.value.status, info.value.code, info.value.result


@pytest.mark.parametrize("name", ["Authorization", "api-key", "Proxy-Authorization", "Origin"])
@pytest.mark.parametrize("mode", ["passthrough", "inject"])
def test_a_credential_header_given_twice_is_a_400(name: str, mode: str) -> None:
    admission = inject() if mode == "inject" else Admission(AuthSettings())
    headers = [(name, f"Bearer {TOKEN}"), (name.lower(), "Bearer SECRET-2")]
    assert _refusal(admission, headers, [], "/v1/realtime") == REFUSED_HEADER


@pytest.mark.parametrize(
    ("headers", "offered"),
    [
        ([("api-key", "sk-SECRET\udce9")], []),  # websockets hands non-ASCII bytes over as surrogates
        ([("Authorization", "Bearer sk-SECRET\udcff")], []),
        ([("Cookie", "s=SECRET\udce9")], []),
        ([], ["realtime", KEY_SUBPROTOCOL + "sk-SECRET;x"]),
        ([], ["realtime", "two words"]),
    ],
)
@pytest.mark.parametrize("mode", ["passthrough", "inject"])
def test_malformed_headers_are_a_400_before_anything_else(
    headers: list[tuple[str, str]], offered: list[str], mode: str
) -> None:
    admission = inject() if mode == "inject" else Admission(AuthSettings())
    assert _refusal(admission, headers, offered, "/v1/realtime") == REFUSED_HEADER


def test_well_formed_repeats_and_subprotocols_pass() -> None:
    headers = Headers([("X-Trace", "a"), ("X-Trace", "b"), ("Cookie", "a=1"), ("Authorization", "Bearer k")])
    offered = ["realtime", KEY_SUBPROTOCOL + "sk-proj-AZaz09_-.", "openai-beta.realtime-v1"]
    assert Admission(AuthSettings()).admit(headers, offered, "/v1/files") == (headers, offered)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/files",
        "/v1/models?model=gpt-realtime",
        "/v1/organization/admin_api_keys",
        "/v1/realtime/../files",
        "/v1/realtime/",
        "/v1/%72ealtime",
        "/V1/REALTIME",
    ],
)
def test_inject_refuses_every_path_off_the_list_before_checking_the_token(path: str) -> None:
    assert _refusal(inject(), [("Authorization", f"Bearer {TOKEN}")], [], path) == (
        403,
        "path_not_allowed",
        "rejected_path",
    )


@pytest.mark.parametrize(
    "path", ["/v1/realtime?model=gpt-realtime", "/v1/realtime?call_id=rtc_1", "/openai/v1/realtime?model=d"]
)
def test_inject_admits_the_realtime_routes(path: str) -> None:
    headers, _ = inject().admit(Headers([("Authorization", f"Bearer {TOKEN}")]), [], path)
    assert headers["Authorization"] == "Bearer sk-real"


@pytest.mark.parametrize(
    "path", ["/v1/live/sessions", "/v1/live/sessions/ls_1/attach", "/v1/live/sessions/ls_1/fork"]
)
def test_inject_admits_the_live_socket_and_its_sideband_and_fork_sockets(path: str) -> None:
    headers, _ = inject().admit(Headers([("Authorization", f"Bearer {TOKEN}")]), [], path)
    assert headers["Authorization"] == "Bearer sk-real"


@pytest.mark.parametrize("path", ["/v1/live/sessions/ls_1/other", "/v1/files/f_1/attach", "/v1/live/x/fork"])
def test_inject_refuses_other_paths_that_look_like_live_sub_sockets(path: str) -> None:
    assert _refusal(inject(), [("Authorization", f"Bearer {TOKEN}")], [], path)[0] == 403
    # ...and a Live sub-socket only where its session's path is allowed.
    only_realtime = inject(inject_paths=("/v1/realtime",))
    assert (
        _refusal(only_realtime, [("Authorization", f"Bearer {TOKEN}")], [], "/v1/live/sessions/l/attach")[0]
        == 403
    )


def test_inject_paths_are_configurable() -> None:
    admission = inject(inject_paths=("/custom/realtime",))
    admission.admit(Headers([("Authorization", f"Bearer {TOKEN}")]), [], "/custom/realtime?x=1")
    assert _refusal(admission, [("Authorization", f"Bearer {TOKEN}")], [], "/v1/realtime")[0] == 403


def test_inject_refusal_bodies_never_carry_the_key() -> None:
    admission = Admission(
        AuthSettings(mode="inject", token_sha256=(DIGEST,)), upstream_key="sk-proj-REALKEY0123456789wxyz"
    )
    body = (
        b'{"error":{"message":"Incorrect API key provided: sk-pro**********************wxyz. '
        b'Key sk-proj-REALKEY0123456789wxyz; masked ****************wxyz","code":"invalid_api_key"}}'
    )
    scrubbed = admission.refusal_body(body)
    assert b"REALKEY" not in scrubbed and b"wxyz" not in scrubbed
    assert scrubbed.count(b"[REDACTED]") == 3
    assert b'"code":"invalid_api_key"' in scrubbed
    assert admission.refusal_body(b"rate limited, retry later") == b"rate limited, retry later"


def test_passthrough_relays_refusal_bodies_unchanged() -> None:
    body = b'{"error":{"message":"Incorrect API key provided: sk-cli**********abcd."}}'
    assert Admission(AuthSettings()).refusal_body(body) == body
