"""The retrier's edges that mutation testing found unguarded: retrying with max_attempts = 2, a
cancelled-then-failed response, forgetting every finished request, odd upstream shapes, and
re-send templates nobody else can change. Pure: the playbook drives the retrier as the core does."""

from __future__ import annotations

import random
from typing import Any

from realtime_proxy.core.actions import RetryOutcome, RuleError, StartTimer, ToClient, ToUpstream
from realtime_proxy.core.events import dump
from realtime_proxy.core.retry import METADATA_KEY, ResponseRetrier, RetryPolicy
from tests.unit.test_retry import (
    CLIENT_METADATA,
    Playbook,
    create,
    created,
    delta,
    done,
    fail_attempt,
    tagged,
)


class CeilingRng(random.Random):
    """Full jitter that always draws its ceiling, so a delay is known exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


def forgotten(retrier: ResponseRetrier) -> bool:
    """Nothing kept about finished requests: a long session must not grow with every response."""
    return not (retrier._by_token or retrier._by_event_id or retrier._held)


def test_max_attempts_two_retries_once() -> None:
    pb = Playbook(RetryPolicy(max_attempts=2))
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    assert list(pb.timers) == [token]
    pb.fire(token)
    assert [e["event_id"] for e in pb.upstream] == ["evt_client_1", f"{token}_a2"]
    fail_attempt(pb, token, "resp_2")
    assert [(o["outcome"], o["reason"], o["attempts"]) for o in pb.outcomes()] == [
        ("exhausted", "max_attempts", 2)
    ]
    assert pb.client_types() == ["response.created", "response.done"]
    assert forgotten(pb.retrier)


def test_max_attempts_one_does_not_track() -> None:
    retrier = ResponseRetrier(RetryPolicy(max_attempts=1), random.Random(1))
    event = create()
    assert not retrier.wants(event)
    assert retrier.track(event, 0.0) == []
    assert event == create()


def test_a_cancel_that_races_a_retryable_failure_releases_that_failure_once() -> None:
    """Cancelled while running, then failed transiently: not retried, the client gets the failed
    `response.done` itself (not `null`), and the time the retries added is counted."""
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    pb.now = 1.0
    fail_attempt(pb, token, "resp_1")
    pb.fire(token)  # attempt 2, at the backoff's end
    assert pb.server(created("resp_2", tagged(token))) == []
    assert pb.cancel("resp_2") is None  # forwarded: it runs upstream
    pb.now += 0.5
    actions = pb.server(done("resp_2", tagged(token)))
    assert actions is not None
    assert [type(a) for a in actions] == [ToClient, RetryOutcome, ToClient]  # the done goes on last
    assert pb.client_types() == ["response.created", "response.done"]
    final = pb.client_saw[1]["response"]
    assert (final["id"], final["status"], final["metadata"]) == ("resp_2", "failed", CLIENT_METADATA)
    (outcome,) = pb.outcomes()
    assert (outcome["outcome"], outcome["reason"], outcome["attempts"]) == (
        "cancelled",
        "client_cancelled",
        2,
    )
    assert abs(outcome["added_seconds"] - (pb.now - 1.0)) < 1e-9
    assert pb.timers == {} and forgotten(pb.retrier)


def test_a_cancel_that_races_a_permanent_failure_names_the_cancel() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    assert pb.server(created("resp_1", tagged(token))) == []
    assert pb.cancel("resp_1") is None
    pb.server(done("resp_1", tagged(token), error={"type": "invalid_request_error", "code": "x"}))
    assert [(o["outcome"], o["reason"]) for o in pb.outcomes()] == [("not_retryable", "client_cancelled")]


def test_a_cancel_without_a_response_id_is_not_mine() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    assert pb.retrier.on_client_cancel({"type": "response.cancel"}, 0.0) is None
    fail_attempt(pb, token, "resp_1")  # still retried: the cancel named no response of ours
    assert list(pb.timers) == [token]


def test_cancel_in_backoff_reports_the_clients_cancel() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    pb.cancel("resp_1")
    assert [(o["outcome"], o["reason"]) for o in pb.outcomes()] == [("cancelled", "client_cancelled")]
    assert forgotten(pb.retrier)


def test_every_ending_forgets_the_request() -> None:
    # Recovered after a re-send: the first attempt's response id must not stay held.
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    pb.fire(token)
    assert pb.server(created("resp_2", tagged(token))) == []
    pb.server(delta("resp_2"))
    pb.server(done("resp_2", tagged(token), status="completed"))
    assert [o["outcome"] for o in pb.outcomes()] == ["recovered"]
    assert forgotten(pb.retrier)
    # Closed while held: a late delta for that response is an ordinary frame, not a held one.
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    assert pb.server(created("resp_9", tagged(token))) == []
    pb.retrier.close(pb.now)
    assert forgotten(pb.retrier)
    assert pb.retrier.on_server_frame("response.output_text.delta", None, delta("resp_9"), pb.now) is None


def test_an_error_for_a_finished_request_is_not_attributed_twice() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA, event_id=None))
    assert token is not None
    error = dump(
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "event_id": f"{token}_a1", "param": None},
        }
    )
    assert pb.server(error) is not None
    assert [(o["outcome"], o["reason"]) for o in pb.outcomes()] == [
        ("not_retryable", "invalid_request_error")
    ]
    assert forgotten(pb.retrier)
    assert pb.server(error) is None  # forwarded as is: nobody tracks that id any more


def test_the_outcome_reason_of_an_error_is_its_code_else_its_type() -> None:
    def reason(error: dict[str, Any]) -> Any:
        pb = Playbook()
        assert pb.send(create(event_id="evt_x")) is not None
        pb.server(dump({"type": "error", "error": {"event_id": "evt_x", **error}}))
        return [o["reason"] for o in pb.outcomes()]

    assert reason({"type": "invalid_request_error", "code": "bad_value"}) == ["bad_value"]
    assert reason({"type": "invalid_request_error", "code": None}) == ["invalid_request_error"]
    assert reason({"type": 5, "code": 6}) == [None]


def test_odd_upstream_shapes_are_not_mine() -> None:
    retrier = ResponseRetrier(RetryPolicy(), random.Random(1))
    event = create(CLIENT_METADATA)
    retrier.track(event, 0.0)
    odd = [
        ("error", {"type": "error", "error": "boom"}),
        ("error", {"type": "error", "error": {"event_id": ["not", "hashable"]}}),
        ("response.done", {"type": "response.done", "response": "x"}),
        ("response.done", {"type": "response.done", "response": {"metadata": {METADATA_KEY: 5}}}),
    ]
    for event_type, shape in odd:
        assert retrier.on_server_frame(event_type, shape, dump(shape), 1.0) is None, shape
    assert retrier.active


def test_a_non_string_event_id_is_replaced_by_ours() -> None:
    pb = Playbook()
    event = create(CLIENT_METADATA)
    event["event_id"] = 5
    token = pb.send(event)
    assert token is not None
    assert pb.upstream[0]["event_id"] == f"{token}_a1"
    pb._note(pb.retrier.close(pb.now))
    assert [o["client_event_id"] for o in pb.outcomes()] == [None]


def test_a_create_whose_response_is_not_an_object_is_left_to_the_api() -> None:
    retrier = ResponseRetrier(RetryPolicy(), random.Random(1))
    event = {"type": "response.create", "response": "x"}
    assert not retrier.wants(event)
    assert retrier.track(event, 0.0) == []
    assert event == {"type": "response.create", "response": "x"}


def test_the_deadline_admits_a_resend_that_lands_exactly_on_it() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=1.0, deadline=3.0)
    pb = Playbook(policy)
    pb.retrier = ResponseRetrier(policy, CeilingRng())
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    pb.now = 2.0
    fail_attempt(pb, token, "resp_1")  # 2.0 s in + a 1.0 s delay = the 3.0 s deadline
    assert pb.timers == {token: 3.0}
    assert [a["delay"] for a in pb.attempts()] == [1.0]


def test_resends_come_from_the_template_as_first_sent() -> None:
    """Escalation edits its copy; a caller editing the sent event afterwards changes nothing."""

    def escalate(request: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        request["response"]["instructions"] += "!"
        return request, []

    pb = Playbook(RetryPolicy(max_attempts=3), escalate=escalate)
    event = create(CLIENT_METADATA)
    token = pb.send(event)
    assert token is not None
    event["response"]["instructions"] = "changed by the caller"
    for attempt, resp_id in ((2, "resp_1"), (3, "resp_2")):
        fail_attempt(pb, token, resp_id)
        pb.fire(token)
        assert pb.upstream[-1]["event_id"] == f"{token}_a{attempt}"
    assert [e["response"]["instructions"] for e in pb.upstream] == [
        "Summarize the conversation so far",
        "Summarize the conversation so far!",
        "Summarize the conversation so far!",
    ]


def test_a_failing_escalation_is_reported_after_the_resend_it_did_not_stop() -> None:
    def escalate(request: dict[str, Any]) -> Any:
        return ["not", "a", "request"], []

    pb = Playbook(escalate=escalate)
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    actions = pb.fire(token)
    assert isinstance(actions[0], ToUpstream)
    assert actions[1:] == [
        RuleError("evt_client_1", "response.create", "retry_escalate", "TypeError('escalate returned list')")
    ]


def test_an_escalation_that_drops_the_response_object_still_correlates() -> None:
    pb = Playbook(escalate=lambda request: ({"type": "response.create"}, []))
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    pb.fire(token)
    assert pb.upstream[1] == {
        "type": "response.create",
        "response": {"metadata": tagged(token)},
        "event_id": f"{token}_a2",
    }


def test_a_retry_timer_is_one_later_per_failed_attempt() -> None:
    pb = Playbook(RetryPolicy(backoff_base=0.25, backoff_cap=0.25))
    pb.retrier = ResponseRetrier(pb.retrier._policy, CeilingRng())
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    assert pb.server(created("resp_1", tagged(token))) == []
    actions = pb.server(done("resp_1", tagged(token)))
    assert actions is not None and actions[0] == StartTimer(0.25, token)


def test_an_escalation_set_later_is_the_one_used() -> None:
    pb = Playbook()
    pb.retrier.escalate_with(lambda request: ({**request, "response": {"tool_choice": "required"}}, []))
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    pb.fire(token)
    assert pb.upstream[1]["response"] == {"tool_choice": "required", "metadata": tagged(token)}
