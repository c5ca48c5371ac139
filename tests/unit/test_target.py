"""normalise_target: the one normalisation of a request target (edge/target.py)."""

from __future__ import annotations

import pytest

from realtime_proxy.edge.target import BadRequestTarget, normalise_target


@pytest.mark.parametrize(
    "raw, lenient",
    [
        ("/v1/realtime?model=gpt-realtime", "/v1/realtime?model=gpt-realtime"),
        ("/v1/realtime?model=a#frag", "/v1/realtime?model=a"),
        ("/v1/files/f#/realtime/calls/x/hangup", "/v1/files/f"),
        ("/v1/a/./b/../c", "/v1/a/c"),
        ("/v1/a/%2E%2e/c", "/v1/c"),
        ("/v1/a/..", "/v1/"),
        ("/../../v1/models", "/v1/models"),
        ("/v1/re%61ltime", "/v1/realtime"),
        ("/v1/a%2fb?q=%2f", "/v1/a%2Fb?q=%2f"),  # an encoded slash stays encoded (the query untouched)
        ("/v1/a;b", "/v1/a;b"),
        ("/v1/a?x=../y", "/v1/a?x=../y"),  # dot segments are a path thing
    ],
)
def test_lenient_mode_resolves_once(raw: str, lenient: str) -> None:
    assert normalise_target(raw, strict=False) == lenient


@pytest.mark.parametrize(
    "raw",
    ["/v1/realtime#x", "/v1/a/../b", "/v1/a/%2e%2E/b", "/v1/./a", "/v1/a;b", "/v1/a%2Fb", "/v1/a%5cb",
     "/v1/a%25b", "/v1/a%zzb", "/v1//a", "/v1/a%"],
)  # fmt: skip
def test_strict_mode_refuses_every_ambiguity(raw: str) -> None:
    with pytest.raises(BadRequestTarget):
        normalise_target(raw, strict=True)


@pytest.mark.parametrize("raw", ["v1/a", "//evil.example/v1", "/v1\\a", "/v1/\x7f", "/v1/é", "/v1/a b", ""])
@pytest.mark.parametrize("strict", [True, False])
def test_every_mode_refuses_what_is_no_absolute_path(raw: str, strict: bool) -> None:
    with pytest.raises(BadRequestTarget, match=r"^The request target is not a plain absolute path\.$"):
        normalise_target(raw, strict=strict)


def test_strict_mode_keeps_plain_realtime_targets_verbatim() -> None:
    for raw in ("/v1/realtime?model=gpt-realtime", "/v1/realtime/calls/rtc_1/accept", "/openai/v1/realtime/"):
        assert normalise_target(raw, strict=True) == raw
