"""Playbook tests for the retry state machine: scripted frames in, expected actions out."""

from __future__ import annotations

import copy
import dataclasses
import random
from typing import Any

import hypothesis
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime_proxy.core.actions import (
    CancelTimer,
    Observation,
    RetryAttempt,
    RetryOutcome,
    Rewrite,
    RuleError,
    StartTimer,
    ToClient,
    ToUpstream,
)
from realtime_proxy.core.events import dump
from realtime_proxy.core.responses import SERVER_TYPES as LEDGER_SERVER_TYPES
from realtime_proxy.core.retry import METADATA_KEY, ResponseRetrier, RetryPolicy
from realtime_proxy.core.rules.model import RuleRewrite
from realtime_proxy.core.stage import Forward
from tests.playbook import applied, message

CLIENT_METADATA = {"response_type": "out-of-band"}


# --- scripted events ---------------------------------------------------------------------------


def create(
    metadata: dict[str, str] | None = None, event_id: str | None = "evt_client_1", conversation: Any = "none"
) -> dict[str, Any]:
    response: dict[str, Any] = {"instructions": "Summarize the conversation so far"}
    if conversation is not None:
        response["conversation"] = conversation
    if metadata is not None:
        response["metadata"] = dict(metadata)
    event: dict[str, Any] = {"type": "response.create", "response": response}
    if event_id is not None:
        event["event_id"] = event_id
    return event


def created(resp_id: str, metadata: dict[str, str] | None) -> str:
    response = {"id": resp_id, "object": "realtime.response", "status": "in_progress", "output": []}
    response |= {"conversation_id": None, "metadata": metadata}
    return dump({"type": "response.created", "event_id": f"event_c_{resp_id}", "response": response})


def done(
    resp_id: str,
    metadata: dict[str, str] | None,
    status: str = "failed",
    error: dict[str, str] | None = None,
    output: list[Any] | None = None,
    output_tokens: int = 0,
) -> str:
    """The seed report's failed response.done, or a variant of it."""
    details: dict[str, Any] = {"type": status}
    if status == "failed":
        details["error"] = error or {"type": "server_error"}
    elif status == "cancelled":
        details["reason"] = "turn_detected"
    usage = {"total_tokens": output_tokens, "input_tokens": 0, "output_tokens": output_tokens}
    response = {"id": resp_id, "object": "realtime.response", "status": status, "status_details": details}
    response |= {"output": output or [], "usage": usage, "max_output_tokens": "inf", "metadata": metadata}
    return dump({"type": "response.done", "event_id": f"event_d_{resp_id}", "response": response})


def delta(resp_id: str, text: str = "hi") -> str:
    return dump(
        {"type": "response.output_text.delta", "event_id": "e", "response_id": resp_id, "delta": text}
    )


def item_added(resp_id: str) -> str:
    item = {"id": "item_1", "type": "function_call", "name": "return_response"}
    return dump({"type": "response.output_item.added", "response_id": resp_id, "item": item})


def _sent(actions: list[Any]) -> list[Any]:
    """Forwarded messages as what finally goes out (they pass no further stage here)."""
    return [
        (ToUpstream if a.message.direction == "client" else ToClient)(a.message.out())
        if isinstance(a, Forward)
        else a
        for a in actions
    ]


class Playbook:
    """Drives a retrier the way the core does, keeping the client's view of the stream."""

    def __init__(self, policy: RetryPolicy | None = None, seed: int = 1, escalate: Any = None) -> None:
        self.retrier = ResponseRetrier(policy or RetryPolicy(), random.Random(seed), escalate)
        self.now = 0.0
        self.client_saw: list[dict[str, Any]] = []
        self.upstream: list[dict[str, Any]] = []
        self.observations: list[Observation] = []
        self.timers: dict[str, float] = {}

    def send(self, event: dict[str, Any]) -> str | None:
        """Client sends a response.create; returns the token the retrier added."""
        actions = self.retrier.track(event, self.now) if self.retrier.wants(event) else None
        self.upstream.append(copy.deepcopy(event))
        if actions is None:
            return None
        self._note(actions)
        return None if actions else event["response"]["metadata"][METADATA_KEY]

    def server(self, frame: str) -> list[Any] | None:
        """A server frame through the retrier as the pipeline runs it: its decisions about the
        frame applied (what went on reaches the client last); the other actions returned."""
        msg = message("server", frame)
        if msg.type in LEDGER_SERVER_TYPES:
            self.retrier.ledger.on_server(msg.type, msg.event, self.now)
        decided = self.retrier.on_server_frame(msg.type, msg.event, frame, self.now)
        if decided is None:
            self.client_saw.append(orjson.loads(frame))
            return None
        actions = applied(decided, msg)
        self._note(actions)
        if not msg.done:
            self.client_saw.append(orjson.loads(msg.out()))
        return _sent(actions) + ([] if msg.done else [ToClient(msg.out())])

    def cancel(self, response_id: str) -> list[Any] | None:
        event = {"type": "response.cancel", "event_id": "evt_cancel", "response_id": response_id}
        decided = self.retrier.on_client_cancel(event, self.now)
        if decided is None:
            self.upstream.append(event)
            return None
        msg = message("client", event)
        actions = applied(decided, msg)
        assert msg.done  # answered here: the cancel never goes upstream
        self._note(actions)
        return _sent(actions)

    def fire(self, token: str) -> list[Any]:
        self.now = self.timers.pop(token)
        actions = applied(self.retrier.on_timer(token, self.now), None)
        self._note(actions)
        return _sent(actions)

    def _note(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Forward):  # built from its dict: its parse is the event
                event = action.message.event
                assert event is not None and orjson.loads(action.message.out()) == event
                side = self.upstream if action.message.direction == "client" else self.client_saw
                side.append(copy.deepcopy(event))
            elif isinstance(action, StartTimer):
                self.timers[action.token] = self.now + action.delay
            elif isinstance(action, CancelTimer):
                self.timers.pop(action.token)
            else:
                self.observations.append(action)

    def outcomes(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(o) for o in self.observations if isinstance(o, RetryOutcome)]

    def attempts(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(o) for o in self.observations if isinstance(o, RetryAttempt)]

    def client_types(self) -> list[str]:
        return [e["type"] for e in self.client_saw]


def tagged(token: str, metadata: dict[str, str] | None = CLIENT_METADATA) -> dict[str, str]:
    return {**(metadata or {}), METADATA_KEY: token}


def fail_attempt(pb: Playbook, token: str, resp_id: str, **kw: Any) -> None:
    assert pb.server(created(resp_id, tagged(token))) == []
    pb.server(done(resp_id, tagged(token), **kw))


# --- first-try success ---------------------------------------------------------------------------


def test_first_try_success_holds_created_until_first_output_then_strips_key() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token == "rp1"
    assert pb.upstream[0]["response"]["metadata"] == tagged("rp1")
    assert pb.upstream[0]["event_id"] == "evt_client_1"
    assert pb.retrier.active

    assert pb.server(created("resp_A", tagged(token))) == []
    assert pb.client_saw == []
    actions = pb.server(item_added("resp_A"))
    assert actions is not None and len(actions) == 2
    assert actions[1] == ToClient(item_added("resp_A"))  # the output frame itself is untouched
    assert pb.server(delta("resp_A")) is None
    pb.server(
        done("resp_A", tagged(token), status="completed", output=[{"type": "message"}], output_tokens=5)
    )

    assert pb.client_types() == [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
        "response.done",
    ]
    assert pb.client_saw[0]["response"]["metadata"] == CLIENT_METADATA
    assert pb.client_saw[-1]["response"]["metadata"] == CLIENT_METADATA
    assert pb.outcomes() == [
        {
            "outcome": "ok",
            "attempts": 1,
            "added_seconds": 0.0,
            "response_id": "resp_A",
            "client_event_id": "evt_client_1",
            "reason": None,
        }
    ]
    assert not pb.retrier.active


def test_client_without_metadata_sees_null_metadata_and_no_event_id_leaks() -> None:
    pb = Playbook()
    event = create(metadata=None, event_id=None)
    token = pb.send(event)
    assert event["response"]["metadata"] == {METADATA_KEY: token}
    pb.server(created("resp_A", {METADATA_KEY: token}))
    pb.server(done("resp_A", {METADATA_KEY: token}, status="completed"))
    assert pb.client_types() == ["response.created", "response.done"]
    assert all(e["response"]["metadata"] is None for e in pb.client_saw)
    assert pb.outcomes()[0]["client_event_id"] is None


def test_client_with_empty_metadata_gets_empty_metadata_back() -> None:
    pb = Playbook()
    token = pb.send(create(metadata={}))
    pb.server(created("resp_A", {METADATA_KEY: token}))
    pb.server(done("resp_A", {METADATA_KEY: token}, status="completed"))
    assert [e["response"]["metadata"] for e in pb.client_saw] == [{}, {}]


def test_done_without_output_releases_held_created_first() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    pb.server(created("resp_A", tagged(token)))
    actions = pb.server(done("resp_A", tagged(token), status="completed"))
    assert actions is not None
    assert [type(a) for a in actions] == [ToClient, RetryOutcome, ToClient]  # the done goes on last
    assert pb.client_types() == ["response.created", "response.done"]


# --- retries -------------------------------------------------------------------------------------


def test_fail_twice_then_succeed_client_sees_one_consistent_response() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    pb.now = 1.0
    fail_attempt(pb, token, "resp_1")
    assert pb.client_saw == []
    assert list(pb.timers) == [token]
    resend = pb.fire(token)
    assert len(resend) == 1 and isinstance(resend[0], ToUpstream)
    second_send = pb.now
    fail_attempt(pb, token, "resp_2")
    pb.fire(token)
    pb.server(created("resp_3", tagged(token)))
    pb.server(delta("resp_3"))
    pb.now += 0.5
    pb.server(done("resp_3", tagged(token), status="completed", output_tokens=2))

    assert pb.client_types() == ["response.created", "response.output_text.delta", "response.done"]
    assert {e.get("response", {}).get("id") or e.get("response_id") for e in pb.client_saw} == {"resp_3"}
    # Re-sends are the same request with fresh, client-invisible event ids.
    assert [e["event_id"] for e in pb.upstream] == ["evt_client_1", "rp1_a2", "rp1_a3"]
    assert all(e["response"] == pb.upstream[0]["response"] for e in pb.upstream)
    assert [a["attempt"] for a in pb.attempts()] == [2, 3]
    assert pb.attempts()[0] | {"delay": 0} == {
        "attempt": 2,
        "delay": 0,
        "response_id": "resp_1",
        "error_type": "server_error",
        "error_code": None,
        "client_event_id": "evt_client_1",  # the same id as the request's other log lines
    }
    (outcome,) = pb.outcomes()
    assert outcome["outcome"] == "recovered" and outcome["attempts"] == 3
    assert outcome["response_id"] == "resp_3"
    assert outcome["added_seconds"] == pb.now - 1.0
    assert second_send > 1.0


def test_rate_limit_code_is_retried() -> None:
    pb = Playbook()
    token = pb.send(create())
    assert token is not None
    error = {"type": "invalid_request_error", "code": "inference_rate_limit_exceeded"}
    fail_attempt(pb, token, "resp_1", error=error)
    assert pb.attempts()[0]["error_code"] == "inference_rate_limit_exceeded"
    assert pb.client_saw == []


def test_every_attempt_fails_client_sees_one_failed_done_with_its_metadata() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    for n in (1, 2):
        fail_attempt(pb, token, f"resp_{n}")
        pb.fire(token)
    fail_attempt(pb, token, "resp_3")

    assert pb.client_types() == ["response.created", "response.done"]
    assert [e["response"]["id"] for e in pb.client_saw] == ["resp_3", "resp_3"]
    final = pb.client_saw[1]["response"]
    assert final["status"] == "failed" and final["metadata"] == CLIENT_METADATA
    assert final["status_details"]["error"] == {"type": "server_error"}
    assert len(pb.upstream) == 3 and not pb.timers
    (outcome,) = pb.outcomes()
    assert (outcome["outcome"], outcome["attempts"], outcome["reason"]) == ("exhausted", 3, "max_attempts")
    assert not pb.retrier.active


def test_deadline_exhaustion_releases_failure_instead_of_waiting() -> None:
    pb = Playbook(RetryPolicy(max_attempts=5, deadline=1.0))
    token = pb.send(create())
    assert token is not None
    pb.now = 1.0  # any positive delay would cross the deadline
    fail_attempt(pb, token, "resp_1")
    (outcome,) = pb.outcomes()
    assert (outcome["outcome"], outcome["reason"], outcome["attempts"]) == ("exhausted", "deadline", 1)
    assert pb.client_types() == ["response.created", "response.done"]
    assert not pb.timers and len(pb.upstream) == 1


def test_deadline_counts_from_first_send_across_attempts() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=1.0, backoff_cap=1.0, deadline=3.0)
    pb = Playbook(policy)
    pb.now = 5.0
    token = pb.send(create())
    assert token is not None
    resend_times: list[float] = []
    while not pb.outcomes():
        pb.now += 0.2  # upstream latency of each attempt
        fail_attempt(pb, token, f"resp_{len(pb.upstream)}")
        if pb.timers:
            pb.fire(token)
            resend_times.append(pb.now)
    assert pb.outcomes()[0]["reason"] == "deadline"
    assert resend_times and all(t - 5.0 <= 3.0 for t in resend_times)
    assert len(pb.upstream) < policy.max_attempts


# --- not retried ---------------------------------------------------------------------------------


def _single(pb: Playbook, done_frame: str, token: str) -> dict[str, Any]:
    pb.server(created("resp_A", tagged(token)))
    pb.server(done_frame)
    assert pb.client_types() == ["response.created", "response.done"]
    assert pb.client_saw[1]["response"]["metadata"] == CLIENT_METADATA
    assert not pb.timers and len(pb.upstream) == 1
    (outcome,) = pb.outcomes()
    return outcome


def test_invalid_request_error_is_not_retried() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    error = {"type": "invalid_request_error", "code": "invalid_value"}
    outcome = _single(pb, done("resp_A", tagged(token), error=error), token)
    assert (outcome["outcome"], outcome["reason"]) == ("not_retryable", "invalid_value")


def test_cancelled_and_incomplete_are_not_retried() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    outcome = _single(pb, done("resp_A", tagged(token), status="cancelled"), token)
    assert (outcome["outcome"], outcome["reason"]) == ("cancelled", "turn_detected")

    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    outcome = _single(pb, done("resp_A", tagged(token), status="incomplete"), token)
    assert outcome["outcome"] == "ok"


def test_server_error_after_output_began_is_not_retried() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    pb.server(created("resp_A", tagged(token)))
    pb.server(delta("resp_A"))
    pb.server(done("resp_A", tagged(token)))  # failed, server_error, empty output, 0 tokens
    assert pb.client_types() == ["response.created", "response.output_text.delta", "response.done"]
    assert not pb.timers
    assert pb.outcomes()[0]["reason"] == "output_began"


def test_server_error_with_output_tokens_is_not_retried() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    outcome = _single(pb, done("resp_A", tagged(token), output_tokens=4), token)
    assert (outcome["outcome"], outcome["reason"]) == ("not_retryable", "produced_output")


# --- what is not tracked -------------------------------------------------------------------------


def test_metadata_with_16_keys_is_untracked_and_unchanged() -> None:
    pb = Playbook()
    metadata = {f"k{i}": "v" for i in range(16)}
    event = create(metadata)
    before = copy.deepcopy(event)
    assert pb.send(event) is None
    assert event == before
    assert pb.outcomes() == [
        {
            "outcome": "untracked",
            "attempts": 0,
            "added_seconds": 0.0,
            "response_id": None,
            "client_event_id": "evt_client_1",
            "reason": "metadata_full",
        }
    ]
    assert not pb.retrier.active


def test_metadata_with_15_keys_is_tracked() -> None:
    pb = Playbook()
    event = create({f"k{i}": "v" for i in range(15)})
    assert pb.send(event) == "rp1"
    assert len(event["response"]["metadata"]) == 16


def test_in_band_is_not_tracked_by_default_but_is_when_enabled() -> None:
    default = ResponseRetrier(RetryPolicy(), random.Random(0))
    enabled = ResponseRetrier(RetryPolicy(retry_in_band=True), random.Random(0))
    bare = {"type": "response.create"}
    for event in (create(conversation=None), create(conversation="auto"), bare):
        assert not default.wants(event)
        assert enabled.wants(event)
    assert enabled.wants(create())
    assert not default.wants({"type": "response.cancel"})
    assert not ResponseRetrier(RetryPolicy(max_attempts=1), random.Random(0)).wants(create())


def test_in_band_retry_when_enabled_uses_the_same_logic() -> None:
    pb = Playbook(RetryPolicy(retry_in_band=True))
    event: dict[str, Any] = {"type": "response.create"}
    token = pb.send(event)
    assert token == "rp1"
    assert event == {
        "type": "response.create",
        "event_id": "rp1_a1",
        "response": {"metadata": {METADATA_KEY: "rp1"}},
    }
    fail_attempt(pb, token, "resp_1")
    pb.fire(token)
    pb.server(created("resp_2", {METADATA_KEY: token}))
    pb.server(done("resp_2", {METADATA_KEY: token}, status="completed"))
    assert pb.outcomes()[0]["outcome"] == "recovered"
    assert [e["response"]["metadata"] for e in pb.client_saw] == [None, None]


def test_unrelated_frames_are_not_mine() -> None:
    pb = Playbook()
    token = pb.send(create())
    assert token is not None
    pb.server(created("resp_A", tagged(token)))  # something held: sniffing is on
    other = [
        created("resp_X", {"a": "b"}),
        created("resp_Y", None),
        delta("resp_X"),
        done("resp_X", None, status="completed"),
        dump({"type": "error", "error": {"type": "invalid_request_error", "event_id": "evt_other"}}),
        dump({"type": "rate_limits.updated", "rate_limits": []}),
        dump({"type": "conversation.item.added", "item": {"id": "i"}}),
    ]
    for frame in other:
        assert pb.server(frame) is None, frame
    retrier = pb.retrier
    assert (
        retrier.on_server_frame("response.output_audio.delta", None, b'{"response_id":"resp_A"}', 0) is None
    )
    assert retrier.on_server_frame(None, None, "garbage", 0) is None
    assert retrier.on_server_frame("response.done", None, "{not json", 0) is None
    assert retrier.on_client_cancel({"type": "response.cancel"}, 0) is None
    assert retrier.on_client_cancel({"type": "response.cancel", "response_id": "resp_X"}, 0) is None
    assert retrier.on_timer("rp99", 0) == []


def test_unknown_token_is_still_stripped() -> None:
    pb = Playbook()
    pb.send(create())
    actions = pb.server(created("resp_Z", {METADATA_KEY: "rp42"}))
    assert actions == [ToClient(created("resp_Z", None))]
    actions = pb.server(done("resp_Z", {METADATA_KEY: "rp42", "a": "b"}, status="completed"))
    assert actions == [ToClient(done("resp_Z", {"a": "b"}, status="completed"))]


# --- parallel and escalation ---------------------------------------------------------------------


def test_two_parallel_requests_interleaved() -> None:
    pb = Playbook()
    t1 = pb.send(create({"job": "one"}, event_id="evt_1"))
    t2 = pb.send(create({"job": "two"}, event_id="evt_2"))
    assert (t1, t2) == ("rp1", "rp2")
    pb.server(created("resp_1a", {"job": "one", METADATA_KEY: t1}))
    pb.server(created("resp_2a", {"job": "two", METADATA_KEY: t2}))
    pb.server(delta("resp_2a", "two"))
    pb.server(done("resp_1a", {"job": "one", METADATA_KEY: t1}))  # fails: retry 1
    pb.server(delta("resp_2a", "more"))
    pb.fire(t1)
    pb.server(created("resp_1b", {"job": "one", METADATA_KEY: t1}))
    pb.server(done("resp_2a", {"job": "two", METADATA_KEY: t2}, status="completed"))
    pb.server(delta("resp_1b", "one"))
    pb.server(done("resp_1b", {"job": "one", METADATA_KEY: t1}, status="completed"))

    seen = [(e["type"], e.get("response_id") or e["response"]["id"]) for e in pb.client_saw]
    assert seen == [
        ("response.created", "resp_2a"),
        ("response.output_text.delta", "resp_2a"),
        ("response.output_text.delta", "resp_2a"),
        ("response.done", "resp_2a"),
        ("response.created", "resp_1b"),
        ("response.output_text.delta", "resp_1b"),
        ("response.done", "resp_1b"),
    ]
    assert [(o["client_event_id"], o["outcome"]) for o in pb.outcomes()] == [
        ("evt_2", "ok"),
        ("evt_1", "recovered"),
    ]
    assert pb.upstream[-1]["response"]["metadata"] == {"job": "one", METADATA_KEY: t1}


def test_escalate_is_applied_only_to_resends() -> None:
    calls: list[dict[str, Any]] = []

    def escalate(request: dict[str, Any]) -> tuple[dict[str, Any], list[RuleRewrite]]:
        calls.append(copy.deepcopy(request))
        before = request["response"].get("tool_choice")
        request["response"]["tool_choice"] = "required"
        return request, [RuleRewrite("tool_choice_object", "response.tool_choice", before, "required", True)]

    pb = Playbook(escalate=escalate)
    token = pb.send(create())
    assert token is not None
    assert calls == [] and "tool_choice" not in pb.upstream[0]["response"]
    for n in (1, 2):
        fail_attempt(pb, token, f"resp_{n}")
        pb.fire(token)
    assert len(calls) == 2
    assert all("tool_choice" not in c["response"] for c in calls)  # always from the original request
    assert [e["response"].get("tool_choice") for e in pb.upstream] == [None, "required", "required"]
    assert [e["event_id"] for e in pb.upstream] == ["evt_client_1", "rp1_a2", "rp1_a3"]
    # Each re-send's repair is reported like any rewrite, marked as the escalation's.
    escalated = Rewrite(
        client_event_id="evt_client_1",
        event_type="response.create",
        rule="tool_choice_object",
        path="response.tool_choice",
        before=None,
        after="required",
        lossless=True,
        applied=True,
        via="retry_escalation",
    )
    assert [o for o in pb.observations if isinstance(o, Rewrite)] == [escalated, escalated]
    # Each re-send's repair is reported like any rewrite, marked as the escalation's.
    escalated = Rewrite(
        client_event_id="evt_client_1",
        event_type="response.create",
        rule="tool_choice_object",
        path="response.tool_choice",
        before=None,
        after="required",
        lossless=True,
        applied=True,
        via="retry_escalation",
    )
    assert [o for o in pb.observations if isinstance(o, Rewrite)] == [escalated, escalated]


def test_escalate_cannot_drop_the_correlation_key() -> None:
    def escalate(request: dict[str, Any]) -> tuple[dict[str, Any], list[RuleRewrite]]:
        return {"type": "response.create", "response": {"conversation": "none", "metadata": None}}, []

    pb = Playbook(escalate=escalate)
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    pb.fire(token)
    assert pb.upstream[1]["response"]["metadata"] == tagged(token)
    assert pb.upstream[1]["event_id"] == "rp1_a2"


def test_failing_escalate_still_resends_the_original() -> None:
    def escalate(request: dict[str, Any]) -> tuple[dict[str, Any], list[RuleRewrite]]:
        raise KeyError("boom")

    pb = Playbook(escalate=escalate)
    token = pb.send(create())
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    pb.fire(token)
    assert pb.upstream[1]["response"] == pb.upstream[0]["response"]
    assert [type(o) for o in pb.observations] == [RetryAttempt, RuleError]


# --- cancel, close, errors -----------------------------------------------------------------------


def test_cancel_while_held_is_forwarded_and_cancelled_done_released() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    pb.server(created("resp_A", tagged(token)))
    assert pb.cancel("resp_A") is None  # forwarded upstream unchanged
    assert pb.upstream[-1]["type"] == "response.cancel"
    pb.server(done("resp_A", tagged(token), status="cancelled"))
    assert pb.client_types() == ["response.created", "response.done"]
    assert pb.client_saw[1]["response"]["metadata"] == CLIENT_METADATA
    assert pb.outcomes()[0]["outcome"] == "cancelled"


def test_cancel_while_held_stops_retrying_a_racing_failure() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    pb.server(created("resp_A", tagged(token)))
    pb.cancel("resp_A")
    pb.server(done("resp_A", tagged(token)))  # failed server_error: would otherwise be retried
    assert not pb.timers
    assert (pb.outcomes()[0]["outcome"], pb.outcomes()[0]["reason"]) == ("cancelled", "client_cancelled")


def test_cancel_during_backoff_synthesizes_the_cancellation() -> None:
    pb = Playbook()
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    pb.now = 2.0
    fail_attempt(pb, token, "resp_1")
    pb.now = 2.1
    actions = pb.cancel("resp_1")
    assert actions is not None and actions[0] == CancelTimer(token)
    assert len(pb.upstream) == 1  # nothing forwarded: nothing runs upstream
    assert pb.client_types() == ["response.created", "response.done"]
    final = pb.client_saw[1]["response"]
    assert final["id"] == "resp_1" and final["status"] == "cancelled"
    assert final["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert final["metadata"] == CLIENT_METADATA
    (outcome,) = pb.outcomes()
    assert outcome["outcome"] == "cancelled" and abs(outcome["added_seconds"] - 0.1) < 1e-9
    assert pb.retrier.on_timer(token, 5.0) == []
    assert not pb.retrier.active


def test_close_cancels_pending_timers_and_reports_every_tracked_request() -> None:
    pb = Playbook()
    t1 = pb.send(create(event_id="evt_1"))
    t2 = pb.send(create(event_id="evt_2"))
    assert t1 is not None and t2 is not None
    fail_attempt(pb, t1, "resp_1")
    actions = pb.retrier.close(pb.now)
    assert actions[0] == CancelTimer(t1)
    outcomes = [dataclasses.asdict(a) for a in actions if isinstance(a, RetryOutcome)]
    assert [(o["client_event_id"], o["outcome"], o["reason"]) for o in outcomes] == [
        ("evt_1", "cancelled", "client_closed"),
        ("evt_2", "cancelled", "client_closed"),
    ]
    assert not pb.retrier.active
    assert pb.retrier.close(pb.now) == []


def _error(event_id: str | None) -> str:
    error = {"type": "invalid_request_error", "code": "invalid_value", "message": "x", "event_id": event_id}
    return dump({"type": "error", "event_id": "event_srv", "error": error})


def test_error_for_a_resend_is_attributed_to_the_clients_event() -> None:
    pb = Playbook()
    token = pb.send(create())
    assert token is not None
    fail_attempt(pb, token, "resp_1")
    pb.fire(token)
    actions = pb.server(_error("rp1_a2"))
    assert actions is not None and actions[-1] == ToClient(_error("rp1_a2"))
    # The retrier passes the error on as the API wrote it; the pipeline's exit maps the id back.
    assert pb.client_saw == [orjson.loads(_error("rp1_a2"))]
    assert pb.retrier.ledger.client_id_for("rp1_a2") == "evt_client_1"
    (outcome,) = pb.outcomes()
    assert (outcome["outcome"], outcome["reason"], outcome["attempts"]) == (
        "not_retryable",
        "invalid_value",
        2,
    )
    assert not pb.retrier.active


def test_error_for_a_first_attempt_without_client_event_id_is_rewritten_to_null() -> None:
    pb = Playbook()
    token = pb.send(create(event_id=None))
    assert token is not None and pb.upstream[0]["event_id"] == "rp1_a1"
    pb.server(_error("rp1_a1"))
    assert pb.client_saw[0]["error"]["event_id"] == "rp1_a1"  # mapped back at the lane's exit
    assert pb.retrier.ledger.is_own("rp1_a1") and pb.retrier.ledger.client_id_for("rp1_a1") is None
    assert pb.outcomes()[0]["outcome"] == "not_retryable"


def test_error_for_the_clients_own_first_event_is_forwarded_verbatim() -> None:
    pb = Playbook()
    pb.send(create())
    actions = pb.server(_error("evt_client_1"))
    assert actions is not None and actions[-1] == ToClient(_error("evt_client_1"))
    assert not pb.retrier.active


def test_audio_frames_are_released_verbatim() -> None:
    pb = Playbook()
    token = pb.send(create())
    assert token is not None
    pb.server(created("resp_A", tagged(token)))
    audio = '{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_A","delta":"AAAA"}'
    actions = pb.server(audio)
    assert actions is not None and actions[1] == ToClient(audio)


def test_invalid_or_conflicting_metadata_is_left_alone() -> None:
    for metadata, reason in (("oops", "metadata_invalid"), ({METADATA_KEY: "x"}, "metadata_key_in_use")):
        pb = Playbook()
        event = create()
        event["response"]["metadata"] = metadata
        before = copy.deepcopy(event)
        assert pb.send(event) is None
        assert event == before
        assert pb.outcomes()[0]["reason"] == reason


@given(
    script=st.lists(
        st.sampled_from(["fail", "rate_limited", "ok", "bad_request", "stream_fail"]), max_size=5
    ),
    seed=st.integers(0, 1000),
    cancel_at=st.one_of(st.none(), st.integers(0, 4)),
)
@settings(max_examples=200, deadline=None)
def test_client_always_sees_exactly_one_response(script: list[str], seed: int, cancel_at: int | None) -> None:
    """Whatever each attempt does, the client sees one created and one done, for the same id,
    with its own metadata, and the request ends in exactly one outcome."""
    pb = Playbook(seed=seed)
    token = pb.send(create(CLIENT_METADATA))
    assert token is not None
    for n, step in enumerate([*script, "ok"]):
        resp_id = f"resp_{n}"
        pb.server(created(resp_id, tagged(token)))
        if step == "stream_fail":
            pb.server(delta(resp_id))
        if step == "ok":
            pb.server(done(resp_id, tagged(token), status="completed"))
        elif step == "bad_request":
            pb.server(done(resp_id, tagged(token), error={"type": "invalid_request_error"}))
        elif step == "rate_limited":
            pb.server(
                done(resp_id, tagged(token), error={"type": "x", "code": "inference_rate_limit_exceeded"})
            )
        else:
            pb.server(done(resp_id, tagged(token)))
        if not pb.timers:
            break
        if cancel_at == n:  # the client gives up while the proxy waits to re-send
            assert pb.cancel(resp_id) is not None
            break
        pb.fire(token)
    envelopes = [e for e in pb.client_saw if e["type"] in ("response.created", "response.done")]
    assert [e["type"] for e in envelopes] == ["response.created", "response.done"]
    assert len({e["response"]["id"] for e in envelopes}) == 1
    assert all(e["response"]["metadata"] == CLIENT_METADATA for e in envelopes)
    assert len(pb.outcomes()) == 1 and not pb.retrier.active and not pb.timers
    assert len(pb.upstream) <= 3
    hypothesis.event(pb.outcomes()[0]["outcome"])
    if pb.outcomes()[0]["outcome"] == "cancelled":
        assert envelopes[1]["response"]["status_details"]["reason"] == "client_cancelled"
