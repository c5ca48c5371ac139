"""auth.Admission: passthrough keeps everything; inject accepts a Bearer token or the browser key
subprotocol (checked by SHA-256 digest), strips client credentials and the key subprotocol, adds the
real key (env or file, Authorization or api-key); refusals are 401/403 with stable codes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from websockets.datastructures import Headers

from proxy.edge.auth import (
    KEY_SUBPROTOCOL,
    Admission,
    AdmissionRefused,
    load_upstream_key,
    presented_token,
    token_digest,
)
from proxy.ops.settings import AuthSettings

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
