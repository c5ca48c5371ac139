"""core/stage.py: the message the pipeline carries, and how decisions change it."""

from __future__ import annotations

from realtime_proxy.core.stage import Lane, Message

FRAME = '{"type":"response.create"}'


def test_a_new_message_is_unchanged_and_not_done() -> None:
    message = Message(Lane.CLIENT, FRAME, "response.create")
    assert (message.changed, message.done, message.event) == (False, False, None)
    assert message.changed is False and message.done is False  # flags, not merely falsy
    assert message.out() is FRAME


def test_replace_reads_the_new_type_and_keeps_the_old_one_when_there_is_none() -> None:
    message = Message(Lane.CLIENT, FRAME, "response.create")
    message.replace({"type": "conversation.item.create"})
    assert (message.type, message.changed, message.out()) == (
        "conversation.item.create",
        True,
        '{"type":"conversation.item.create"}',
    )
    message.replace({"type": 7, "x": 1})  # no string type: the message keeps the one it had
    assert message.type == "conversation.item.create"
    assert message.out() == '{"type":7,"x":1}'


def test_replace_frame_drops_the_parse() -> None:
    message = Message(Lane.SERVER, FRAME, "response.create", {"type": "response.create"})
    message.replace({"type": "response.cancel"})
    message.replace_frame('{"type":"session.update"}')
    assert message.changed is False and message.event is None
    assert message.out() == '{"type":"session.update"}'
