"""Server-Sent Event bodies of the fake's streaming routes (Responses and Chat Completions)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from .ids import new_id

WORDS = ("Hello", " from", " the", " fake", " upstream", ".")


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _response(model: str, status: str, text: str | None) -> dict[str, Any]:
    output = []
    if text is not None:
        output = [
            {
                "type": "message",
                "id": "msg_fake",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def response_events(model: str) -> list[bytes]:
    events = [sse({"type": "response.created", "sequence_number": 0,
                   "response": _response(model, "in_progress", None)}, "response.created")]  # fmt: skip
    for i, word in enumerate(WORDS, start=1):
        delta = {"type": "response.output_text.delta", "sequence_number": i, "item_id": "msg_fake",
                 "output_index": 0, "content_index": 0, "delta": word, "logprobs": []}  # fmt: skip
        events.append(sse(delta, "response.output_text.delta"))
    done = {"type": "response.completed", "sequence_number": len(WORDS) + 1,
            "response": _response(model, "completed", "".join(WORDS))}  # fmt: skip
    events.append(sse(done, "response.completed"))
    return events


def response_object(model: str) -> dict[str, Any]:
    return _response(model, "completed", "".join(WORDS))


def chat_events(model: str) -> list[bytes]:
    chat_id, created = new_id("chatcmpl"), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return sse({"id": chat_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [choice]})  # fmt: skip

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events.extend(chunk({"content": word}, None) for word in WORDS)
    events.append(chunk({}, "stop"))
    events.append(sse("[DONE]"))
    return events


def chat_object(model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": "".join(WORDS), "refusal": None}
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
    }
