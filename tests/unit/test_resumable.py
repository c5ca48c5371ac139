"""core.resumable and core.idmap: what the core remembers for a resumption, as whole action
sequences (playbook) around the real SessionCore (issue 25)."""

from __future__ import annotations

from typing import Any

from realtime_proxy.core.actions import ResponseDone, ToClient, ToUpstream, UpstreamError
from realtime_proxy.core.conversation import ConversationMirror
from realtime_proxy.core.idmap import IdMap
from realtime_proxy.core.resumable import ResumableCore
from realtime_proxy.core.rules import build_chain
from realtime_proxy.core.session import SessionCore
from tests.playbook import Playbook, Untouched, frame_of

EXPIRED = {
    "type": "error",
    "event_id": "e1",
    "error": {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": "Your session hit the maximum duration of 60 minutes.",
        "param": None,
        "event_id": None,
    },
}


def core() -> ResumableCore:
    return ResumableCore(SessionCore(build_chain()), ConversationMirror(max_bytes=10_000))


def response(kind: str, response_id: str, **fields: Any) -> dict[str, Any]:
    body = {"id": response_id, "conversation_id": "conv_1", "output": [], **fields}
    return {"type": kind, "event_id": f"ev_{kind}", "response": body}


def test_session_expired_is_hidden_only_while_a_resumption_may_follow() -> None:
    resumable = core()
    with Playbook(resumable) as play:
        play.server(EXPIRED).expect()
        assert resumable.expired
        resumable.hide_expiry = False
        message = "Your session hit the maximum duration of 60 minutes."
        play.server(EXPIRED).expect(
            UpstreamError("invalid_request_error", "session_expired", message, None, None, None),
            ToClient(frame_of(EXPIRED)),
        )


def test_in_flight_tracking_and_the_turn_boundary() -> None:
    resumable = core()
    boundaries: list[int] = []
    resumable.on_turn_boundary = lambda: boundaries.append(1)
    create = {"type": "response.create", "event_id": "c1"}
    with Playbook(resumable) as play:
        play.client(create).expect(Untouched())
        assert resumable.pending_create == (frame_of(create), "c1")
        play.server(response("response.created", "r1")).expect(Untouched())
        assert (resumable.pending_create, resumable.active, boundaries) == (None, "r1", [])
        done = response("response.done", "r1", status="completed")
        play.server(done).expect(
            ResponseDone("r1", "completed", None, None, 0.0, False, [], "c1"), ToClient(frame_of(done))
        )
        assert resumable.active is None and boundaries == [1]
        # An out-of-band response writes nothing into the conversation: not tracked.
        oob = {"type": "response.create", "event_id": "c2", "response": {"conversation": "none"}}
        play.client(oob).expect(Untouched())
        assert resumable.pending_create is None


def test_a_refused_create_is_not_in_flight() -> None:
    resumable = core()
    refusal = {
        "type": "error",
        "event_id": "e9",
        "error": {
            "type": "invalid_request_error",
            "code": "x",
            "message": "m",
            "param": None,
            "event_id": "c1",
        },
    }
    with Playbook(resumable) as play:
        play.client({"type": "response.create", "event_id": "c1"}).expect(Untouched())
        play.server(refusal).expect(
            UpstreamError("invalid_request_error", "x", "m", None, "c1", None), ToClient(frame_of(refusal))
        )
    assert resumable.pending_create is None


def test_ids_are_translated_both_ways_only_where_the_server_changed_them() -> None:
    resumable = core()
    resumable.ids.reset({"item_old": "item_new", "same": "same"})
    with Playbook(resumable) as play:
        play.client({"type": "conversation.item.truncate", "event_id": "c1", "item_id": "item_old"}).expect(
            ToUpstream(
                frame_of({"type": "conversation.item.truncate", "event_id": "c1", "item_id": "item_new"})
            )
        )
        play.client({"type": "conversation.item.delete", "item_id": "same"}).expect(Untouched())
        reference = {
            "type": "response.create",
            "response": {"input": [{"type": "item_reference", "id": "item_old"}]},
        }
        play.client(reference).expect(
            ToUpstream(
                frame_of(
                    {
                        "type": "response.create",
                        "response": {"input": [{"type": "item_reference", "id": "item_new"}]},
                    }
                )
            )
        )
        added = {
            "type": "conversation.item.added",
            "previous_item_id": "item_new",
            "item": {"id": "x", "type": "function_call"},
        }
        play.server(added).expect(ToClient(frame_of({**added, "previous_item_id": "item_old"})))
        play.server({"type": "conversation.item.deleted", "item_id": "other"}).expect(Untouched())
    # The mirror keeps the ids the client knows.
    assert list(resumable.mirror.items) == ["x"]
    # A create lost with the upstream is re-sent with ids mapped again.
    assert resumable.pending_create is not None
    assert "item_new" in resumable.resend(resumable.pending_create[0])


def test_an_empty_map_is_false_and_reset_keeps_only_changed_ids() -> None:
    ids = IdMap()
    assert not ids
    ids.reset({"a": "a", "b": "c"})
    assert ids and ids.to_upstream == {"b": "c"} and ids.to_client == {"c": "b"}
