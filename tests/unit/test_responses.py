"""The ledger (realtime_proxy.core.responses): the one record of requests and responses, the only
issuer of proxy ids, and the map from those ids back to the client's."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.responses import Ledger, Request, Response


def create(event_id: str | None = None, conversation: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.create"}
    if event_id is not None:
        event["event_id"] = event_id
    if conversation is not None:
        event["response"] = {"conversation": conversation}
    return event


def created(response_id: str, conversation_id: str | None = "conv") -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": response_id, "conversation_id": conversation_id}}


def done(response_id: str, **response: Any) -> dict[str, Any]:
    return {"type": "response.done", "response": {"id": response_id, **response}}


def error(event_id: Any) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "event_id": event_id}}


def test_ids_are_issued_in_order_and_map_back_to_the_clients() -> None:
    ledger = Ledger()
    event: dict[str, Any] = {"type": "session.update"}
    assert ledger.name(event) == "proxy_evt_1" and event["event_id"] == "proxy_evt_1"
    assert ledger.name({"event_id": "mine"}) == "mine"  # the client's own id is kept, not issued
    assert ledger.new_event_id() == "proxy_evt_2"  # a server event the proxy writes: not mapped
    assert ledger.issue("c1", "rp1_a2") == "rp1_a2"
    assert [ledger.is_own(i) for i in ("proxy_evt_1", "proxy_evt_2", "rp1_a2", "mine", 7)] == [
        True,
        False,
        True,
        False,
        False,
    ]
    assert [ledger.client_id_for(i) for i in ("proxy_evt_1", "rp1_a2", "mine", None)] == [
        None,
        "c1",
        "mine",
        None,
    ]


def test_a_client_id_that_looks_like_the_proxys_is_the_clients() -> None:
    assert Ledger().client_id_for("proxy_evt_1") == "proxy_evt_1"


def test_id_and_rule_memories_are_bounded_to_the_most_recent() -> None:
    ledger = Ledger()
    for n in range(300):
        ledger.issue(f"c{n}")
        ledger.remember_rules(f"e{n}", ["r"])
    assert not ledger.is_own("proxy_evt_44") and ledger.client_id_for("proxy_evt_45") == "c44"
    assert (
        ledger.rules_for("e43") is None and ledger.rules_for("e44") == ["r"] and ledger.rules_for(7) is None
    )


def test_creates_bind_to_their_response_created_in_order_by_kind() -> None:
    ledger = Ledger()
    ledger.sent(create("a"), 1.0)
    ledger.sent(create("oob", conversation="none"), 2.0)
    ledger.sent(create("b"), 3.0)
    ledger.on_server("response.created", created("r_oob", None), 4.0)
    oob = Response("r_oob", False, Request("oob", False, 2.0), 4.0)
    assert ledger.about == oob and ledger.active_in_band is None
    ledger.on_server("response.created", created("r_a"), 5.0)
    first = Response("r_a", True, Request("a", True, 1.0), 5.0)
    assert ledger.about == first and ledger.active_in_band == first and first.started_at == 1.0
    assert ledger.by_response_id("r_a") == first and ledger.by_response_id(None) is None
    ledger.on_server("response.done", done("r_a", status="failed"), 6.0)  # no conversation_id: created told
    assert ledger.about == Response("r_a", True, Request("a", True, 1.0), 5.0, done=True)
    assert ledger.active_in_band is None and ledger.by_response_id("r_a") is None
    ledger.on_server("response.created", created("r_b"), 7.0)
    assert ledger.about is not None and ledger.about.request == Request("b", True, 3.0)


def test_an_error_naming_a_create_unbinds_it_and_a_server_started_response_has_no_request() -> None:
    ledger = Ledger()
    ledger.sent(create("a"), 1.0)
    ledger.on_server("error", error(["a"]), 1.5)  # not a string: names nothing
    ledger.on_server("error", error("other"), 1.5)
    ledger.on_server("error", error("a"), 2.0)
    assert ledger.about is None
    ledger.on_server("response.created", created("r_vad"), 3.0)
    assert ledger.about == Response("r_vad", True, None, 3.0) and ledger.about.started_at == 3.0


def test_a_done_never_created_is_as_it_says_and_malformed_frames_are_about_nothing() -> None:
    ledger = Ledger()
    ledger.on_server("response.done", done("r9", conversation_id=None), 5.0)
    assert ledger.about == Response("r9", False, None, None, done=True)
    assert ledger.about.started_at is None
    for event in (None, {"type": "response.done", "response": 5}, done(7), {"type": "error", "error": "x"}):
        ledger.on_server("response.done", event, 6.0)
        assert ledger.about is None
    ledger.on_server("response.created", created("r1"), 7.0)
    ledger.on_server("response.done", done("r0"), 8.0)  # another response's done: r1 stays active
    assert ledger.active_in_band is not None and ledger.active_in_band.response_id == "r1"


def test_pending_creates_and_open_responses_are_bounded() -> None:
    ledger = Ledger()
    for n in range(100):
        ledger.sent(create(f"e{n}"), float(n))
    ledger.on_server("response.created", created("r"), 100.0)
    assert ledger.about is not None and ledger.about.request == Request("e36", True, 36.0)
    for n in range(100):
        ledger.on_server("response.created", created(f"x{n}", None), 200.0)
    assert ledger.by_response_id("x35") is None and ledger.by_response_id("x36") is not None


def test_a_created_response_without_conversation_id_is_in_band() -> None:
    """Only `conversation_id: null` marks out-of-band; a response that names none is in-band."""
    ledger = Ledger()
    ledger.sent(create("c1"), 1.0)
    ledger.on_server("response.created", {"type": "response.created", "response": {"id": "r1"}}, 2.0)
    assert ledger.about == Response("r1", True, Request("c1", True, 1.0), 2.0)
    assert ledger.active_in_band == ledger.about


def test_a_create_whose_event_id_is_not_a_string_is_recorded_without_one() -> None:
    ledger = Ledger()
    ledger.sent({"type": "response.create", "event_id": 5}, 1.0)
    ledger.on_server("response.created", created("r1"), 2.0)
    assert ledger.about == Response("r1", True, Request(None, True, 1.0), 2.0)


def test_lookups_by_a_response_id_that_is_not_a_string_find_nothing() -> None:
    ledger = Ledger()
    ledger.on_server("response.created", created("r1"), 1.0)
    assert ledger.by_response_id("r1") == Response("r1", True, None, 1.0)
    assert ledger.by_response_id(["r1"]) is None  # unhashable: never looked up
    assert ledger.by_response_id(None) is None


def test_a_fresh_ledger_is_about_nothing_and_has_no_active_response() -> None:
    ledger = Ledger()
    assert ledger.about is None and ledger.active_in_band is None
    ledger.on_server("response.done", done("r9"), 1.0)  # a done out of the blue: untimed, not active
    assert ledger.about == Response("r9", True, None, None, done=True) and ledger.active_in_band is None
