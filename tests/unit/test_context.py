"""The session context the edge derives from a handshake, and the upstream target it opens."""

from __future__ import annotations

import pytest

from realtime_proxy.core.context import SessionContext, session_context, upstream_target


@pytest.mark.parametrize(
    ("target", "route", "model"),
    [
        ("/v1/realtime?model=gpt-realtime", "realtime", "gpt-realtime"),
        ("/v1/realtime?intent=transcription", "transcription", None),
        ("/v1/realtime/translations?model=gpt-realtime-translate", "translation", "gpt-realtime-translate"),
        ("/v1/realtime/translations/?model=m&call_id=x", "translation", "m"),
        ("/v1/realtime?call_id=rtc_1", "sideband", None),
        ("/openai/realtime?api-version=2025-04-01-preview&deployment=dep", "azure_preview", "dep"),
        ("/openai/v1/realtime?model=dep", "azure", "dep"),
        ("/v1/realtime", "realtime", None),
    ],
)
def test_route_and_model(target: str, route: str, model: str | None) -> None:
    context = session_context(target)
    assert (context.route, context.model) == (route, model)
    assert upstream_target(target, context, {}) is target


def test_implied_session_type() -> None:
    assert SessionContext(route="translation").implied_session_type == "translation"
    assert SessionContext(route="transcription").implied_session_type == "transcription"
    for route in ("realtime", "sideband", "azure", "azure_preview"):  # an ephemeral key may make it either
        assert SessionContext(route=route).implied_session_type is None  # type: ignore[arg-type]


def test_alias_rewrites_the_model_query_only() -> None:
    aliases = {"gpt-4o-realtime-preview": "gpt-realtime"}
    target = "/v1/realtime?model=gpt-4o-realtime-preview&x=1"
    context = session_context(target, aliases=aliases)
    assert (context.model, context.requested_model) == ("gpt-realtime", "gpt-4o-realtime-preview")
    assert upstream_target(target, context, aliases) == "/v1/realtime?model=gpt-realtime&x=1"
    azure = "/openai/realtime?deployment=gpt-4o-realtime-preview"
    assert session_context(azure, aliases=aliases).model == "gpt-4o-realtime-preview"
    assert upstream_target(azure, session_context(azure, aliases=aliases), aliases) is azure


def test_transcription_model_moves_out_of_the_query() -> None:
    target = "/v1/realtime?intent=transcription&model=gpt-4o-transcribe"
    assert session_context(target).transcription_model is None  # only when the rule is on
    context = session_context(target, move_transcription_model=True)
    assert context.transcription_model == "gpt-4o-transcribe"
    assert upstream_target(target, context, {}) == "/v1/realtime?intent=transcription"
    plain = "/v1/realtime?model=gpt-realtime"
    assert session_context(plain, move_transcription_model=True).transcription_model is None


def test_the_chain_moves_the_transcription_model_only_when_its_rule_runs() -> None:
    from realtime_proxy.core.rules import build_chain

    target = "/v1/realtime?intent=transcription&model=whisper-1"
    assert build_chain().session_context(target, {}).transcription_model == "whisper-1"
    assert build_chain(observe_only=True).session_context(target, {}).transcription_model is None
    assert (
        build_chain({"transcription_handshake_model": False}).session_context(target, {}).transcription_model
        is None
    )
    per_model = build_chain(per_model={"whisper-1": {"transcription_handshake_model": False}})
    assert per_model.session_context(target, {}).transcription_model is None
