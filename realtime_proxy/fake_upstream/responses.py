"""One simulated response: streams its events with `delta_interval` pauses so tests can interleave."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from websockets.exceptions import ConnectionClosed

from .ids import new_id
from .usage import failed_response, rate_limits, usage

if TYPE_CHECKING:
    from .session import FakeSession

REPLY_TEXT = "Hello! This is a simulated reply from the fake Realtime upstream."
AUDIO_CHUNKS = 5
CHUNK_MS = 20
# 24 kHz mono PCM16 = 48 bytes per millisecond.
SILENCE_CHUNK = base64.b64encode(bytes(48 * CHUNK_MS)).decode()
# G.711 (audio/pcmu, audio/pcma): 8 kHz, one byte a sample. A response speaks in ITS format (its own
# `audio.output.format` when the create set one), not necessarily the session's.
G711_CHUNK = base64.b64encode(bytes(8 * CHUNK_MS)).decode()
SAMPLE_VALUES: dict[str, Any] = {"integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}


class _Cancelled(Exception):
    pass


@dataclass
class ResponsePlan:
    response_id: str
    in_band: bool
    modalities: list[str]
    max_output_tokens: int | str
    metadata: dict[str, str] | None
    audio_output: dict[str, Any]
    calls: list[dict[str, Any]] = field(default_factory=list)  # functions to call, in parallel
    failure: tuple[str, str | None] | None = None  # (error type, code) for a failed response
    input_items: int = 0


def sample_arguments(schema: object) -> str:
    """Arguments JSON built from a function's parameters schema, e.g. {"response":"summary"}."""
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    args: dict[str, Any] = {}
    for name, spec in props.items() if isinstance(props, dict) else ():
        spec = spec if isinstance(spec, dict) else {}
        if spec.get("enum"):
            args[name] = spec["enum"][0]
            continue
        args[name] = SAMPLE_VALUES.get(str(spec.get("type")), "summary")
    return orjson.dumps(args).decode()


@dataclass
class ResponseRun:
    session: FakeSession
    plan: ResponsePlan
    cancel_requested: bool = False
    started: bool = False  # response.created is out: from then on the response can be cancelled
    task: asyncio.Task[None] | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    text_tokens: int = 0
    audio_ms: int = 0
    _truncated: bool = False

    @property
    def id(self) -> str:
        return self.plan.response_id

    async def run(self) -> None:
        s = self.session
        try:
            if s.controls.response_delay > 0:
                await asyncio.sleep(s.controls.response_delay)
            self.started = True  # cancellable from the moment response.created goes out
            await s.emit("response.created", response=self._body("in_progress"))
            if self.plan.failure is not None:
                await asyncio.sleep(s.controls.delta_interval)
                await self._finish(self._failed_body())
                return
            status, details = "completed", None
            try:
                if self.plan.calls:
                    for tool in self.plan.calls:
                        await self._function_call(tool)
                else:
                    await self._message()
                if self._truncated:
                    status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
            except _Cancelled:
                for item in self.output:
                    item["status"] = "incomplete"
                status, details = "cancelled", {"type": "cancelled", "reason": "client_cancelled"}
            body = self._body(status)
            body["status_details"] = details
            body["usage"] = self._usage()
            await self._finish(body)
        except ConnectionClosed:
            pass  # the client went away mid-response; nothing left to tell it
        finally:
            s.response_finished(self)

    async def _finish(self, body: dict[str, Any]) -> None:
        # Inactive before response.done goes out: a client may create the next response at once.
        self.session.response_finished(self)
        await self.session.emit("response.done", response=body)
        await self.session.emit("rate_limits.updated", rate_limits=rate_limits(body["usage"]["total_tokens"]))

    # --- event helpers -------------------------------------------------------------------------

    async def _step(self) -> None:
        await asyncio.sleep(self.session.controls.delta_interval)
        if self.cancel_requested:
            raise _Cancelled

    def _ids(self, item: dict[str, Any], index: int) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": item["id"], "output_index": index}

    def _body(self, status: str) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": status,
            "status_details": None,
            "output": self.output,
            "conversation_id": self.session.conversation_id if self.plan.in_band else None,
            "output_modalities": self.plan.modalities,
            "max_output_tokens": self.plan.max_output_tokens,
            "audio": {"output": self.plan.audio_output},
            "usage": None,
            "metadata": self.plan.metadata,
        }

    def _usage(self) -> dict[str, Any]:
        s = self.session
        items = len(s.items) if self.plan.in_band or not self.plan.input_items else self.plan.input_items
        input_text = 120 + 12 * items
        input_audio = s.input_audio_ms // 100
        cached = min(s.last_input_tokens, input_text + input_audio) // 64 * 64
        cached_text = min(cached, input_text)
        if self.plan.in_band:
            s.last_input_tokens = input_text + input_audio
        return usage(
            input_text=input_text,
            input_audio=input_audio,
            cached_text=cached_text,
            cached_audio=cached - cached_text,
            output_text=self.text_tokens,
            output_audio=self.audio_ms // 50,
        )

    def _failed_body(self) -> dict[str, Any]:
        error_type, code = self.plan.failure or ("server_error", None)
        return failed_response(
            self.id,
            error_type=error_type,
            code=code,
            max_output_tokens=self.plan.max_output_tokens,
            metadata=self.plan.metadata,
        )

    async def _add_item(self, item: dict[str, Any]) -> int:
        index = len(self.output)
        self.output.append(item)
        await self._step()
        await self.session.emit(
            "response.output_item.added", response_id=self.id, output_index=index, item=item
        )
        if self.plan.in_band:
            previous = self.session.add_item(item)
            await self.session.emit("conversation.item.added", previous_item_id=previous, item=item)
        return index

    async def _done_item(self, item: dict[str, Any], index: int) -> None:
        item["status"] = "completed"
        await self._step()
        await self.session.emit(
            "response.output_item.done", response_id=self.id, output_index=index, item=item
        )
        if self.plan.in_band:
            await self.session.emit("conversation.item.done", previous_item_id=None, item=item)

    def _chunk(self) -> str:
        fmt = self.plan.audio_output.get("format")
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        return G711_CHUNK if kind in ("audio/pcmu", "audio/pcma") else SILENCE_CHUNK

    # --- output kinds --------------------------------------------------------------------------

    def _words(self) -> list[str]:
        words = REPLY_TEXT.split(" ")
        limit = self.plan.max_output_tokens
        if isinstance(limit, int) and limit < len(words):
            self._truncated = True
            words = words[:limit]
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    async def _function_call(self, tool: dict[str, Any]) -> None:
        call_id = new_id("call")
        item: dict[str, Any] = {
            "id": new_id("item"),
            "type": "function_call",
            "object": "realtime.item",
            "status": "in_progress",
            "name": tool.get("name", ""),
            "call_id": call_id,
            "arguments": "",
        }
        index = await self._add_item(item)
        args = sample_arguments(tool.get("parameters"))
        for start in range(0, len(args), 8):
            await self._step()
            item["arguments"] += args[start : start + 8]
            await self.session.emit(
                "response.function_call_arguments.delta",
                **self._ids(item, index),
                call_id=call_id,
                delta=args[start : start + 8],
            )
        self.text_tokens += max(1, len(args) // 4)
        await self._step()
        await self.session.emit(
            "response.function_call_arguments.done",
            **self._ids(item, index),
            call_id=call_id,
            name=item["name"],
            arguments=args,
        )
        await self._done_item(item, index)

    async def _message(self) -> None:
        audio = self.plan.modalities == ["audio"]
        item: dict[str, Any] = {
            "id": new_id("item"),
            "type": "message",
            "object": "realtime.item",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        index = await self._add_item(item)
        ids = {**self._ids(item, index), "content_index": 0}
        part_kind, field_name = ("audio", "transcript") if audio else ("text", "text")
        await self._step()
        await self.session.emit(
            "response.content_part.added", **ids, part={"type": part_kind, field_name: ""}
        )
        content: dict[str, Any] = {"type": f"output_{part_kind}", field_name: ""}
        item["content"].append(content)
        words = self._words()
        delta_type = "response.output_audio_transcript.delta" if audio else "response.output_text.delta"
        chunks = AUDIO_CHUNKS if audio else 0
        for i in range(max(len(words), chunks)):
            if i < chunks:
                await self._step()
                self.audio_ms += CHUNK_MS
                self.session.audio_delivered(item["id"], self.audio_ms, in_band=self.plan.in_band)
                await self.session.emit("response.output_audio.delta", **ids, delta=self._chunk())
            if i < len(words):
                await self._step()
                content[field_name] += words[i]
                self.text_tokens += 1
                await self.session.emit(delta_type, **ids, delta=words[i])
        await self._step()
        if audio:
            await self.session.emit("response.output_audio.done", **ids)
            await self.session.emit(
                "response.output_audio_transcript.done", **ids, transcript=content["transcript"]
            )
        else:
            await self.session.emit("response.output_text.done", **ids, text=content["text"])
        await self.session.emit(
            "response.content_part.done", **ids, part={"type": part_kind, field_name: content[field_name]}
        )
        await self._done_item(item, index)
