"""core.redrive: failed in-band responses hidden and created again, as whole action sequences
(playbook) around a core that forwards everything untouched."""

from __future__ import annotations

import random
from typing import Any

from realtime_proxy.core.actions import Action, CancelTimer, Frame, StartTimer, ToClient, ToUpstream
from realtime_proxy.core.redrive import TIMER, RedriveCore, RedrivePolicy, ResponseRedriven
from tests.playbook import Playbook, Untouched, frame_of

SERVER_ERROR = {
    "type": "server_error",
    "message": "The server had an error... We recommend you retry your request.",
}


class Forwarding:
    def from_client(self, frame: Frame, now: float) -> list[Action] | None:
        return None

    def from_upstream(self, frame: Frame, now: float) -> list[Action] | None:
        return None

    def on_timer(self, token: str, now: float) -> list[Action]:
        return []

    def close(self, now: float) -> list[Action]:
        return []


def redrive(max_attempts: int = 3) -> tuple[RedriveCore, list[float]]:
    rng = random.Random(1)
    core = RedriveCore(Forwarding(), RedrivePolicy(max_attempts, 0.25, 2.0), rng)
    expected = random.Random(1)
    return core, [expected.uniform(0, 0.25), expected.uniform(0, 0.5)]


def created(rid: str) -> dict[str, Any]:
    return {
        "type": "response.created",
        "event_id": f"e_{rid}",
        "response": {"id": rid, "conversation_id": "conv"},
    }


def done(rid: str, status: str = "completed", **extra: Any) -> dict[str, Any]:
    body = {"id": rid, "conversation_id": "conv", "status": status, "output": [], "usage": None, **extra}
    return {"type": "response.done", "event_id": f"d_{rid}", "response": body}


def failed(rid: str) -> dict[str, Any]:
    return done(rid, "failed", status_details={"type": "failed", "error": SERVER_ERROR})


def delta(rid: str) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "event_id": "x",
        "response_id": rid,
        "item_id": "i",
        "delta": "Hi",
    }


def test_a_client_turn_failed_before_output_is_created_again_and_the_client_sees_one_response() -> None:
    core, (delay, _) = redrive()
    create = {"type": "response.create", "event_id": "c1"}
    with Playbook(core) as play:
        play.client(create).expect(Untouched())
        play.server(created("r1")).expect()  # held
        play.server(failed("r1")).expect(
            StartTimer(delay, TIMER),
            ResponseRedriven("redriven", 2, "r1", "server_error", None, delay, False),
        )
        play.timer(TIMER).expect(ToUpstream(frame_of(create)))
        play.server(created("r2")).expect()
        play.server(delta("r2")).expect(
            ToClient(frame_of(created("r2"))),
            ResponseRedriven("recovered", 2, "r2", None, None, None, False),
            ToClient(frame_of(delta("r2"))),
        )
        play.server(done("r2")).expect(Untouched())


def test_a_vad_turn_gets_a_plain_create_and_exhaustion_shows_the_last_failure() -> None:
    core, (first, second) = redrive(max_attempts=3)
    plain = {"type": "response.create", "event_id": "proxy_redrive_2"}
    with Playbook(core) as play:
        play.server(created("r1")).expect()
        play.server(failed("r1")).expect(
            StartTimer(first, TIMER), ResponseRedriven("redriven", 2, "r1", "server_error", None, first, True)
        )
        play.timer(TIMER).expect(ToUpstream(frame_of(plain)))
        play.server(created("r2")).expect()
        play.server(failed("r2")).expect(
            StartTimer(second, TIMER),
            ResponseRedriven("redriven", 3, "r2", "server_error", None, second, True),
        )
        play.timer(TIMER).expect(ToUpstream(frame_of({**plain, "event_id": "proxy_redrive_3"})))
        play.server(created("r3")).expect()
        play.server(failed("r3")).expect(
            ToClient(frame_of(created("r3"))),
            ResponseRedriven("exhausted", 3, "r3", None, None, None, True),
            ToClient(frame_of(failed("r3"))),
        )


def test_a_new_turn_during_the_backoff_supersedes_the_redrive() -> None:
    core, (delay, _) = redrive()
    with Playbook(core) as play:
        play.server(created("r1")).expect()
        play.server(failed("r1")).expect(
            StartTimer(delay, TIMER), ResponseRedriven("redriven", 2, "r1", "server_error", None, delay, True)
        )
        create = {"type": "response.create", "event_id": "c9"}
        play.client(create).expect(
            ToUpstream(frame_of(create)),
            CancelTimer(TIMER),
            ResponseRedriven("superseded", 1, None, None, None, None, True),
        )
        play.timer(TIMER).expect()  # a timer that fired anyway does nothing


def test_failures_that_are_not_retry_worthy_or_out_of_band_pass_at_once() -> None:
    core, _ = redrive()
    refused = done(
        "r1", "failed", status_details={"type": "failed", "error": {"type": "invalid_request_error"}}
    )
    oob = {"type": "response.created", "response": {"id": "o1", "conversation_id": None}}
    with Playbook(core) as play:
        play.server(created("r1")).expect()
        play.server(refused).expect(ToClient(frame_of(created("r1"))), ToClient(frame_of(refused)))
        play.server(oob).expect(Untouched())
        play.client({"type": "response.create", "response": {"conversation": "none"}}).expect(Untouched())
