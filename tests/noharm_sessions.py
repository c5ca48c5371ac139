"""Hand-written multi-step sessions with known ground truth (audio lengths, formats, what was spoken) for
the stateful guards and the model scope: what the API does with the last event is known, so the
proxy's answer can be judged. Shared by the regression tests and scripts/differential.py."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.noharm import TOOL, Session, Verdict, judge

PCMU = {"type": "audio/pcmu"}
LOOKUP_B = {"type": "function", "name": "other", "description": "Other", "parameters": {"type": "object"}}


def b64(n_bytes: int) -> str:
    return base64.b64encode(bytes(n_bytes)).decode()


def audio_deltas(session: Session, response_id: str, item_id: str, n_bytes: int, chunk: int = 4800) -> None:
    sent = 0
    while sent < n_bytes:
        size = min(chunk, n_bytes - sent)
        session.server(
            {
                "type": "response.output_audio.delta",
                "event_id": "e",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": b64(size),
            }
        )
        sent += size


def response_created(session: Session, rid: str, fmt: dict[str, Any] | None) -> None:
    audio = {"output": {"format": fmt, "voice": "marin"}} if fmt is not None else None
    response = {
        "id": rid,
        "object": "realtime.response",
        "status": "in_progress",
        "conversation_id": "conv_1",
    }
    if audio is not None:
        response["audio"] = audio
    session.server({"type": "response.created", "event_id": "e", "response": response})


def item_done(session: Session, rid: str, item_id: str) -> None:
    item = {"id": item_id, "type": "message", "role": "assistant", "status": "completed", "content": []}
    session.server({"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": item})


def truncate(item_id: str, end_ms: int) -> dict[str, Any]:
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": end_ms,
    }


@dataclass(frozen=True)
class Scenario:
    name: str
    cause: str  # which of the four causes (or "guard" for a sound refusal kept)
    run: Callable[[], Verdict]
    expected: str  # the outcome the API's behaviour makes right


def _tool_choice_on(model: str) -> Callable[[], Verdict]:
    def run() -> Verdict:
        session = Session("realtime", model)
        create = {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "tools": [TOOL, LOOKUP_B],
                "tool_choice": {"type": "function", "name": "lookup"},
            },
        }
        return judge(session, create)

    return run


def _sideband_truncate() -> Verdict:
    # The assistant spoke 2 s to the WebRTC peer; the proxy saw none of that audio.
    session = Session("sideband", None)
    response_created(session, "resp_1", None)
    item_done(session, "resp_1", "item_1")
    session.server({"type": "response.done", "response": {"id": "resp_1", "status": "completed"}})
    return judge(session, truncate("item_1", 1500))


def _g711_response_in_pcm_session(echoed: bool) -> Callable[[], Verdict]:
    def run() -> Verdict:
        # A 3,000 ms u-law answer (8 bytes/ms) in a 24 kHz PCM session; the user heard 2,000 ms.
        session = Session("realtime", "gpt-realtime")
        create = {"type": "response.create", "response": {"audio": {"output": {"format": PCMU}}}}
        session.client(create_frame(create))
        response_created(session, "resp_1", PCMU if echoed else None)
        audio_deltas(session, "resp_1", "item_1", 3000 * 8, chunk=1600)
        return judge(session, truncate("item_1", 2000))

    return run


def create_frame(event: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(event).decode()


def _two_audio_items() -> Verdict:
    # gpt-realtime-2: a preamble item (500 ms) then the answer (1,500 ms), one response, PCM 24 kHz.
    session = Session("realtime", "gpt-realtime-2")
    response_created(session, "resp_1", {"type": "audio/pcm", "rate": 24000})
    audio_deltas(session, "resp_1", "item_a", 500 * 48)
    item_done(session, "resp_1", "item_a")
    audio_deltas(session, "resp_1", "item_b", 1500 * 48)
    return judge(session, truncate("item_b", 1300))


def _format_change_unconfirmed() -> Verdict:
    # 300 ms of u-law appended right after a session.update to u-law the server has not confirmed yet.
    session = Session("realtime", "gpt-realtime")
    update = {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": PCMU}}}}
    session.client(create_frame(update))
    session.client(create_frame({"type": "input_audio_buffer.append", "audio": b64(300 * 8)}))
    return judge(session, {"type": "input_audio_buffer.commit"})


def _unreadable_append() -> Verdict:
    # An append over the parse limit whose JSON does not start with `type`: 12 s of PCM.
    session = Session("realtime", "gpt-realtime")
    limit = session.core.options.max_parse_bytes
    audio = b64(limit)  # base64 of `limit` bytes: longer than the limit
    session.client('{"audio":"' + audio + '","type":"input_audio_buffer.append"}')
    return judge(session, {"type": "input_audio_buffer.commit"})


def _vad_commit_then_more_audio() -> Verdict:
    # 500 ms appended; the server's VAD committed the first 400 ms (its commit point came before the
    # last 100 ms arrived), so 100 ms remain when the client commits.
    session = Session("realtime", "gpt-realtime")
    for _ in range(5):
        session.client(create_frame({"type": "input_audio_buffer.append", "audio": b64(100 * 48)}))
    session.server({"type": "input_audio_buffer.committed", "event_id": "e", "item_id": "item_u"})
    return judge(session, {"type": "input_audio_buffer.commit"})


def _empty_commit_still_answered() -> Verdict:
    session = Session("realtime", "gpt-realtime")
    session.client(create_frame({"type": "input_audio_buffer.append", "audio": b64(40 * 48)}))
    return judge(session, {"type": "input_audio_buffer.commit"})  # 40 ms: the API refuses it too


def _create_with_full_metadata() -> Verdict:
    session = Session("realtime", "gpt-realtime-2")
    metadata = {f"k{i}": "v" for i in range(16)}
    return judge(
        session, {"type": "response.create", "response": {"conversation": "none", "metadata": metadata}}
    )


def _audio_pcm_without_rate() -> Verdict:
    session = Session("realtime", "gpt-realtime")
    fmt = {"type": "audio/pcm"}
    update = {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"format": fmt}}}}
    return judge(session, update)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "tool_choice_object on gpt-realtime-2", "1 model scope", _tool_choice_on("gpt-realtime-2"), "tagged"
    ),
    Scenario(
        "tool_choice_object on gpt-realtime-mini",
        "1 model scope",
        _tool_choice_on("gpt-realtime-mini"),
        "tagged",
    ),
    Scenario(
        "tool_choice_object on a gpt-realtime snapshot",
        "1 model scope",
        _tool_choice_on("gpt-realtime-2025-08-28"),
        "changed",
    ),
    Scenario("truncate on a sideband socket", "2 sideband", _sideband_truncate, "unchanged"),
    Scenario(
        "G.711 response in a PCM session (echoed)",
        "3 response format",
        _g711_response_in_pcm_session(True),
        "unchanged",
    ),
    Scenario(
        "G.711 response in a PCM session (not echoed)",
        "3 response format",
        _g711_response_in_pcm_session(False),
        "unchanged",
    ),
    Scenario("two audio items in one response", "3 per item", _two_audio_items, "unchanged"),
    Scenario(
        "commit after an unconfirmed format change", "4 commit bound", _format_change_unconfirmed, "unchanged"
    ),
    Scenario("commit after an unreadable append", "4 commit bound", _unreadable_append, "unchanged"),
    Scenario("commit after a server-VAD commit", "4 commit bound", _vad_commit_then_more_audio, "unchanged"),
    Scenario("commit of 40 ms (the API refuses it too)", "guard", _empty_commit_still_answered, "refused"),
    Scenario("out-of-band create with 16 metadata keys", "bytes", _create_with_full_metadata, "unchanged"),
    Scenario("audio/pcm without rate", "default", _audio_pcm_without_rate, "unchanged"),
)
