"""The whole pure core, playbook style: frames and `now` in, the complete action list out.

Each stage has its own playbooks under `tests/unit/stages/`; these check that `SessionCore` composes
them in the documented order: routing, the untouched fast path, `Forward`, timers and close."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from realtime_proxy.core.actions import (
    BetaTranslated,
    FirstDelta,
    FrameSeen,
    ResponseDone,
    RetryAttempt,
    RetryOutcome,
    Rewrite,
    StartTimer,
    ToClient,
    ToUpstream,
    UpstreamError,
)
from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.orchestration_observations import (
    OrchestrationOptions,
    ResponseHeld,
    ResponseReleased,
)
from realtime_proxy.core.retry import METADATA_KEY, ResponseRetrier, RetryPolicy
from realtime_proxy.core.rules import build_chain
from realtime_proxy.core.session import CoreOptions, SessionCore
from tests.playbook import Playbook, Untouched, frame_of

AUDIO = base64.b64encode(bytes(960)).decode()
APPEND = frame_of({"type": "input_audio_buffer.append", "audio": AUDIO})
DELTA = frame_of({"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": AUDIO})


def core(observe_only: bool = False, *, retries: bool = True, **options: Any) -> SessionCore:
    retrier = ResponseRetrier(RetryPolicy(), random.Random(1)) if retries else None
    chain = build_chain(observe_only=observe_only)
    return SessionCore(chain, retrier=retrier, escalation=build_chain(), options=CoreOptions(**options))


def test_audio_takes_the_fast_path_without_parsing(monkeypatch: Any) -> None:
    session = core()

    def no_parsing(frame: Any, limit: int = 0) -> None:
        raise AssertionError("audio frames must not be parsed")

    monkeypatch.setattr("realtime_proxy.core.classify.parse_guarded", no_parsing)
    with Playbook(session) as play:
        play.client(APPEND).expect(Untouched())
        play.server(DELTA).expect(Untouched())
        play.client(b"\x00\x01").expect(Untouched())
    assert session.traffic.frames[("client_to_upstream", "input_audio_buffer.append")] == 1
    assert session.traffic.frames[("upstream_to_client", "response.output_audio.delta")] == 1
    assert session.traffic.frames[("client_to_upstream", "binary")] == 1
    assert session.state.assistant_audio_produced  # the state stage saw the unparsed frame


def test_malformed_and_unknown_frames_are_forwarded_untouched() -> None:
    session = core()
    with Playbook(session) as play:
        play.client('{"type": "session.update", broken').expect(Untouched())
        play.client("[1, 2, 3]").expect(Untouched())
        play.client('{"type":"x.unknown"}').expect(Untouched())
    assert session.traffic.frames[("client_to_upstream", "invalid")] == 1
    assert session.traffic.frames[("client_to_upstream", "other")] == 1


def test_rewrite_then_upstream() -> None:
    event = {"session": {"type": "realtime", "temperature": 1}, "type": "session.update", "event_id": "e1"}
    with Playbook(core()) as play:
        play.client(event).expect(
            Rewrite("e1", "session.update", "drop_temperature", "session.temperature", 1, None, False, True),
            ToUpstream(
                frame_of({"session": {"type": "realtime"}, "type": "session.update", "event_id": "e1"})
            ),
        )


@pytest.mark.parametrize("depth", [65, 260, 600])
def test_deeply_nested_event_goes_on_untouched_and_its_error_comes_back(depth: int) -> None:
    frame = '{"type":"session.update","session":' + '{"a":' * depth + "1" + "}" * depth + "}"
    error = frame_of(
        {"type": "error", "error": {"type": "invalid_request_error", "code": "x", "event_id": None}}
    )
    with Playbook(core()) as play:
        play.client(frame).expect(Untouched())
        play.server(error).expect(
            UpstreamError("invalid_request_error", "x", None, None, None, None), ToClient(error)
        )


def test_observe_mode_reports_and_forwards_the_original() -> None:
    frame = '{"type":"session.update","session":{"type":"realtime","temperature":1}}'
    with Playbook(core(observe_only=True)) as play:
        play.client(frame).expect(
            Rewrite(None, "session.update", "drop_temperature", "session.temperature", 1, None, False, False),
            ToUpstream(frame),
        )


def test_error_about_a_repaired_event_is_attributed_and_the_added_id_removed() -> None:
    with Playbook(core()) as play:
        play.client({"type": "session.update", "session": {"modalities": ["text"]}}).expect(
            Rewrite(
                "proxy_evt_1",
                "session.update",
                "modalities_to_output_modalities",
                "session.modalities",
                ["text"],
                {"session.output_modalities": ["text"]},
                True,
                True,
            ),
            Rewrite(
                "proxy_evt_1",
                "session.update",
                "session_type_missing",
                "session.type",
                None,
                "realtime",
                True,
                True,
            ),
            ToUpstream(
                frame_of(
                    {
                        "type": "session.update",
                        "session": {"output_modalities": ["text"], "type": "realtime"},
                        "event_id": "proxy_evt_1",
                    }
                )
            ),
        )
        error = {
            "type": "error",
            "error": {"type": "invalid_request_error", "code": "x", "message": "m", "param": None},
        }
        play.server({**error, "error": {**error["error"], "event_id": "proxy_evt_1"}}).expect(
            UpstreamError(
                "invalid_request_error",
                "x",
                "m",
                None,
                "proxy_evt_1",
                ["modalities_to_output_modalities", "session_type_missing"],
            ),
            ToClient(frame_of({**error, "error": {**error["error"], "event_id": None}})),
        )


def test_response_timing_uses_the_given_clock() -> None:
    usage = {"input_token_details": {"text_tokens": 10}, "output_token_details": {"text_tokens": 7}}
    created = frame_of({"type": "response.created", "response": {"id": "r1", "conversation_id": "c"}})
    delta = frame_of({"type": "response.output_text.delta", "response_id": "r1", "delta": "hi"})
    done = frame_of(
        {
            "type": "response.done",
            "response": {"id": "r1", "status": "completed", "conversation_id": "c", "usage": usage},
        }
    )
    with Playbook(core()) as play:
        play.client('{"type":"response.create"}', now=10.0).expect(Untouched())
        play.server(created, now=10.1).expect(Untouched())
        play.server(delta, now=10.25).expect(FirstDelta("r1", "text", 0.25), ToClient(delta))
        play.server(done, now=11.0).expect(
            ResponseDone(
                "r1",
                "completed",
                None,
                None,
                1.0,
                False,
                [("input", "text", False, 10), ("output", "text", False, 7)],
            ),
            ToClient(done),
        )


def test_beta_client_translation_runs_first_up_and_last_down() -> None:
    update = {"type": "transcription_session.update", "session": {"input_audio_format": "pcm16"}}
    with Playbook(core(beta_client=True)) as play:
        step = play.client(update)
        translated = [a for a in step.actions if isinstance(a, BetaTranslated)]
        sent = json.loads(step.actions[-1].frame)
        step.expect(*translated, ToUpstream(step.actions[-1].frame))
        assert translated and sent["type"] == "session.update" and sent["session"]["type"] == "transcription"
        play.server(DELTA).expect(
            ToClient(DELTA.replace("response.output_audio.delta", "response.audio.delta"))
        )


def test_held_in_band_create_is_released_by_response_done_through_the_later_stages() -> None:
    done = frame_of(
        {"type": "response.done", "response": {"id": "r1", "status": "completed", "conversation_id": "c"}}
    )
    with Playbook(core(orchestration=OrchestrationOptions())) as play:
        play.client({"type": "response.create"}).expect(
            ToUpstream(frame_of({"type": "response.create", "event_id": "proxy_evt_1"}))
        )
        play.client({"type": "response.create", "event_id": "b"}).expect(
            ResponseHeld("b", "active_response", 1)
        )
        play.server(done, now=2.0).expect(
            ResponseDone("r1", "completed", None, None, None, False, []),  # no response.created: untimed
            ResponseReleased("b", "response_done", 2.0),
            ToUpstream(frame_of({"type": "response.create", "event_id": "b"})),
            ToClient(done),
        )


def test_out_of_band_retry_timer_and_close_are_routed_to_the_retry_stage() -> None:
    create = {"type": "response.create", "event_id": "c1", "response": {"conversation": "none"}}
    tagged = {
        "type": "response.create",
        "event_id": "c1",
        "response": {"conversation": "none", "metadata": {METADATA_KEY: "rp1"}},
    }
    failed = {
        "type": "response.done",
        "response": {
            "id": "r1",
            "status": "failed",
            "conversation_id": None,
            "metadata": {METADATA_KEY: "rp1"},
            "status_details": {"type": "failed", "error": {"type": "server_error", "code": None}},
            "output": [],
        },
    }
    session = core()
    with Playbook(session) as play:
        play.client(create, now=0.0).expect(ToUpstream(frame_of(tagged)))
        step = play.server(failed, now=1.0)
        delay = step.actions[1].delay
        step.expect(
            ResponseDone("r1", "failed", "server_error", None, None, True, []),
            StartTimer(delay, "rp1"),
            RetryAttempt(2, delay, "r1", "server_error", None, "c1"),
        )
        resent = {**tagged, "event_id": "rp1_a2"}
        play.timer("rp1", now=1.0 + delay).expect(ToUpstream(frame_of(resent)))
        play.close(now=5.0).expect(RetryOutcome("cancelled", 2, 5.0 - 1.0, None, "c1", "client_closed"))
        play.timer("rp1").expect()  # fired after close: nothing


def test_log_event_types_adds_one_frame_observation_and_keeps_the_frame() -> None:
    with Playbook(core(log_event_types=True)) as play:
        play.client(APPEND).expect(
            FrameSeen("client_to_upstream", "input_audio_buffer.append", len(APPEND)), ToUpstream(APPEND)
        )


def test_an_error_about_a_repaired_seed_request_ends_its_retry_as_not_retryable() -> None:
    """Issue 20: the seed create (no `event_id`) is named `proxy_evt_1` by repair and tracked by the
    retrier under that id; the error naming it must reach the retrier before the id is mapped back,
    so the request ends `not_retryable / invalid_value`, not `cancelled / client_closed` at close."""
    seed = (Path(__file__).parents[1] / "data" / "seed_response_create.json").read_text()
    request = json.loads(seed)
    request["response"]["tool_choice"] = "required"
    request["response"]["metadata"][METADATA_KEY] = "rp1"
    request["event_id"] = "proxy_evt_1"
    error = {
        "type": "error",
        "event_id": "event_9",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "m",
            "param": None,
            "event_id": "proxy_evt_1",
        },
    }
    retrier = ResponseRetrier(RetryPolicy(), random.Random(1))
    # A gpt-realtime session: tool_choice_object's evidence covers that model family.
    session = SessionCore(build_chain(), retrier=retrier, context=SessionContext(model="gpt-realtime"))
    with Playbook(session) as play:
        play.client(seed).expect(
            Rewrite(
                "proxy_evt_1",
                "response.create",
                "tool_choice_object",
                "response.tool_choice",
                {"type": "function", "name": "return_response"},
                "required",
                True,
                True,
            ),
            ToUpstream(frame_of(request)),
        )
        play.server(error, now=1.0).expect(
            UpstreamError(
                "invalid_request_error", "invalid_value", "m", None, "proxy_evt_1", ["tool_choice_object"]
            ),
            RetryOutcome("not_retryable", 1, 0.0, None, "proxy_evt_1", "invalid_value"),
            ToClient(frame_of({**error, "error": {**error["error"], "event_id": None}})),
        )
        play.close(now=2.0).expect()
