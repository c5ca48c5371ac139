"""The pure session core, playbook style: frames and `now` in, actions out; no sockets, no clock."""

from __future__ import annotations

import base64
import dataclasses
import json
import random
from typing import Any

from proxy.core import events
from proxy.core.actions import Observation, ToClient, ToUpstream
from proxy.core.orchestration_events import OrchestrationOptions
from proxy.core.retry import ResponseRetrier, RetryPolicy
from proxy.core.rules import build_chain
from proxy.core.session import CoreOptions, SessionCore
from proxy.ops.observe import _kind

AUDIO = base64.b64encode(bytes(960)).decode()


def core(observe_only: bool = False, **options: Any) -> SessionCore:
    retrier = ResponseRetrier(RetryPolicy(), random.Random(1))
    chain = build_chain(observe_only=observe_only)
    return SessionCore(chain, retrier=retrier, options=CoreOptions(**options))


def observations(actions: list[Any] | None, kind: str) -> list[dict[str, Any]]:
    return [dataclasses.asdict(a) for a in actions or [] if isinstance(a, Observation) and _kind(a) == kind]


def test_audio_frames_take_the_fast_path_without_parsing(monkeypatch: Any) -> None:
    session = core()

    def no_parsing(frame: Any) -> None:
        raise AssertionError("audio frames must not be parsed")

    monkeypatch.setattr("proxy.core.classify.parse_object", no_parsing)
    append = json.dumps({"type": "input_audio_buffer.append", "audio": AUDIO})
    delta = json.dumps(
        {"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": AUDIO}
    )
    assert session.from_client(append, 0.0) is None
    assert session.from_upstream(delta, 0.0) is None
    assert session.traffic.frames[("client_to_upstream", "input_audio_buffer.append")] == 1
    assert session.traffic.frames[("upstream_to_client", "response.output_audio.delta")] == 1
    assert session.state.assistant_audio_produced  # tracked from the unparsed frame


def test_event_with_type_not_leading_is_still_classified() -> None:
    session = core()
    frame = json.dumps({"session": {"type": "realtime", "temperature": 1}, "type": "session.update"})
    actions = session.from_client(frame, 0.0)
    sent = [a for a in actions or [] if isinstance(a, ToUpstream)]
    assert json.loads(sent[0].frame)["session"] == {"type": "realtime"}


def test_malformed_and_binary_frames_are_forwarded_untouched() -> None:
    session = core()
    assert session.from_client('{"type": "session.update", broken', 0.0) is None
    assert session.from_client("[1, 2, 3]", 0.0) is None
    assert session.from_client(b"\x00\x01", 0.0) is None
    assert session.traffic.frames[("client_to_upstream", "invalid")] == 1
    assert session.traffic.frames[("client_to_upstream", "binary")] == 1


def test_rewrite_forwards_the_repaired_event_and_reports_it() -> None:
    session = core()
    actions = session.from_client(
        json.dumps(
            {
                "type": "session.update",
                "event_id": "e1",
                "session": {"type": "realtime", "modalities": ["text"]},
            }
        ),
        0.0,
    )
    [sent] = [a for a in actions or [] if isinstance(a, ToUpstream)]
    assert json.loads(sent.frame) == {
        "type": "session.update",
        "event_id": "e1",
        "session": {"type": "realtime", "output_modalities": ["text"]},
    }
    [rewrite] = observations(actions, "rewrite")
    assert rewrite["rule"] == "modalities_to_output_modalities" and rewrite["client_event_id"] == "e1"


def test_refusal_answers_the_client_and_sends_nothing_upstream() -> None:
    session = core()
    actions = session.from_client(
        json.dumps(
            {
                "type": "response.create",
                "event_id": "c1",
                "response": {"tool_choice": {"type": "function", "name": "nope"}},
            }
        ),
        0.0,
    )
    assert not [a for a in actions or [] if isinstance(a, ToUpstream)]
    [answer] = [a for a in actions or [] if isinstance(a, ToClient)]
    error = json.loads(answer.frame)
    assert error["type"] == "error" and error["error"]["event_id"] == "c1"
    assert error["error"]["code"] == "invalid_tool_choice"


def test_observe_mode_forwards_originals() -> None:
    session = core(observe_only=True)
    frame = json.dumps({"type": "session.update", "session": {"type": "realtime", "temperature": 1}})
    actions = session.from_client(frame, 0.0)
    [sent] = [a for a in actions or [] if isinstance(a, ToUpstream)]
    assert sent.frame == frame
    assert observations(actions, "rewrite")[0]["applied"] is False


def test_upstream_error_attribution_and_added_id_removed() -> None:
    session = core()
    actions = session.from_client(
        json.dumps({"type": "session.update", "session": {"modalities": ["text"]}}), 0.0
    )
    [sent] = [a for a in actions or [] if isinstance(a, ToUpstream)]
    added_id = json.loads(sent.frame)["event_id"]
    error = {
        "type": "error",
        "event_id": "s1",
        "error": {
            "type": "invalid_request_error",
            "code": "x",
            "message": "m",
            "param": None,
            "event_id": added_id,
        },
    }
    actions = session.from_upstream(json.dumps(error), 1.0)
    [noted] = observations(actions, "upstream_error")
    assert noted["rules"] == ["modalities_to_output_modalities", "session_type_missing"]
    [forwarded] = [a for a in actions or [] if isinstance(a, ToClient)]
    assert json.loads(forwarded.frame)["error"]["event_id"] is None


def test_time_to_first_delta_and_response_done_use_the_given_clock() -> None:
    session = core()
    session.from_client(json.dumps({"type": "response.create"}), 10.0)
    session.from_upstream(
        json.dumps({"type": "response.created", "response": {"id": "r1", "conversation_id": "c"}}), 10.1
    )
    actions = session.from_upstream(
        json.dumps({"type": "response.output_text.delta", "response_id": "r1", "delta": "hi"}), 10.25
    )
    [first] = observations(actions, "first_delta")
    assert first["modality"] == "text" and abs(first["seconds"] - 0.25) < 1e-9
    usage = {
        "input_token_details": {
            "text_tokens": 10,
            "audio_tokens": 5,
            "cached_tokens_details": {"text_tokens": 4},
        },
        "output_token_details": {"text_tokens": 7, "audio_tokens": 0},
    }
    actions = session.from_upstream(
        json.dumps(
            {
                "type": "response.done",
                "response": {"id": "r1", "status": "completed", "conversation_id": "c", "usage": usage},
            }
        ),
        11.0,
    )
    [done] = observations(actions, "response_done")
    assert done["seconds"] == 1.0 and done["status"] == "completed"
    assert sorted(done["tokens"]) == [
        ("input", "audio", False, 5),
        ("input", "text", False, 6),
        ("input", "text", True, 4),
        ("output", "text", False, 7),
    ]


def test_beta_client_renames_audio_deltas_without_parsing(monkeypatch: Any) -> None:
    session = core(beta_client=True)
    delta = json.dumps({"type": "response.output_audio.delta", "response_id": "r", "delta": AUDIO})
    monkeypatch.setattr(events, "parse_object", lambda frame: (_ for _ in ()).throw(AssertionError))
    [forwarded] = session.from_upstream(delta, 0.0) or []
    assert isinstance(forwarded, ToClient)
    assert forwarded.frame == delta.replace("response.output_audio.delta", "response.audio.delta", 1)


def test_queued_in_band_response_is_released_by_response_done() -> None:
    session = core(orchestration=OrchestrationOptions())
    first = session.from_client(json.dumps({"type": "response.create"}), 0.0)
    second = session.from_client(json.dumps({"type": "response.create", "event_id": "b"}), 0.0)
    assert [a for a in first or [] if isinstance(a, ToUpstream)]
    assert not [a for a in second or [] if isinstance(a, ToUpstream)]
    assert observations(second, "response_held")
    done = session.from_upstream(
        json.dumps(
            {
                "type": "response.done",
                "response": {"id": "r1", "status": "completed", "conversation_id": "conv"},
            }
        ),
        1.0,
    )
    [released] = [a for a in done or [] if isinstance(a, ToUpstream)]
    assert json.loads(released.frame)["event_id"] == "b"
