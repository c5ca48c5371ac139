"""Cost as work grows, in-process on the core as deployed (default settings, every stage on):

- memory of one session after 1, 10 and 60 simulated minutes of a voice conversation (audio both
  ways every 20 ms, a server-VAD turn every 6 s, a tool call every 5th turn; `now` is simulated, so
  60 minutes take seconds), by tracemalloc, with the largest owners;
- CPU per frame with 1, 10 and 100 tools declared by `session.update`.

    python -m bench.growth [--minutes 1,10,60] [--tools 1,10,100] [--quick]

No sockets: the transport's share is in `python -m bench` (idle, voice)."""

from __future__ import annotations

import argparse
import base64
import gc
import random
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import orjson

from realtime_proxy.core.actions import StartTimer
from realtime_proxy.core.context import SessionContext
from realtime_proxy.core.session import SessionCore
from realtime_proxy.edge.session_builder import PendingSession, SessionBuilder
from realtime_proxy.observe.metrics import Metrics
from realtime_proxy.settings import load_settings

AUDIO = base64.b64encode(random.Random(0).randbytes(960)).decode()  # 20 ms of 24 kHz PCM16
FRAME_S = 0.02
TURN_S = 6.0  # 3 s of user speech, then the answer's audio
TOOL_EVERY = 5


def build_core() -> SessionCore:
    settings = load_settings(None, environ={}, flags={})
    builder = SessionBuilder(settings, Metrics(), random.Random(0))
    context = SessionContext(route="realtime", model="gpt-realtime", requested_model="gpt-realtime")
    pending = PendingSession(False, "bench", 0.0, "127.0.0.1:1", "gpt-realtime", "/v1/realtime", context)
    return builder.build_core(pending)


def tools(n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": f"tool_{i}",
            "description": "Looks something up.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        }
        for i in range(n)
    ]


def session_update(n_tools: int) -> str:
    session = {
        "type": "realtime",
        "instructions": "Be brief.",
        "tools": tools(n_tools),
        "tool_choice": "auto",
    }
    return orjson.dumps({"type": "session.update", "session": session}).decode()


def _e(**fields: Any) -> str:
    return orjson.dumps(fields).decode()


def turn(t: int) -> Iterator[tuple[str, str]]:
    """One conversational turn as (side, frame): 'c' from the client, 'u' from the upstream."""
    item, resp = f"item_u{t}", f"resp_{t}"
    append = _e(type="input_audio_buffer.append", audio=AUDIO)
    yield (
        "u",
        _e(
            type="input_audio_buffer.speech_started",
            event_id=f"ev_s{t}",
            audio_start_ms=t * 6000,
            item_id=item,
        ),
    )
    for _ in range(int(3 / FRAME_S)):
        yield "c", append
    yield (
        "u",
        _e(
            type="input_audio_buffer.speech_stopped",
            event_id=f"ev_p{t}",
            audio_end_ms=t * 6000 + 3000,
            item_id=item,
        ),
    )
    yield (
        "u",
        _e(type="input_audio_buffer.committed", event_id=f"ev_c{t}", previous_item_id=None, item_id=item),
    )
    user = {
        "id": item,
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio"}],
    }
    yield "u", _e(type="conversation.item.created", event_id=f"ev_i{t}", previous_item_id=None, item=user)
    response = {"id": resp, "object": "realtime.response", "status": "in_progress", "output": []}
    yield "u", _e(type="response.created", event_id=f"ev_r{t}", response=response)
    out = f"item_a{t}"
    call = t % TOOL_EVERY == TOOL_EVERY - 1
    kind = {"id": out, "type": "function_call", "call_id": f"call_{t}", "name": "tool_0", "arguments": ""}
    message = {"id": out, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    added = kind if call else message
    yield (
        "u",
        _e(
            type="response.output_item.added",
            event_id=f"ev_a{t}",
            response_id=resp,
            output_index=0,
            item=added,
        ),
    )
    if call:
        args = '{"q":"weather"}'
        yield "u", _e(type="response.function_call_arguments.done", event_id=f"ev_f{t}", response_id=resp,
                      item_id=out, output_index=0, call_id=f"call_{t}", name="tool_0",
                      arguments=args)  # fmt: skip
    else:
        for _ in range(int(3 / FRAME_S)):
            yield "u", _e(type="response.output_audio.delta", event_id=f"ev_d{t}", response_id=resp,
                          item_id=out, output_index=0, content_index=0, delta=AUDIO)  # fmt: skip
        yield "u", _e(type="response.output_audio.done", event_id=f"ev_o{t}", response_id=resp, item_id=out,
                      output_index=0, content_index=0)  # fmt: skip
    done_item = {**added, "status": "completed"}
    yield (
        "u",
        _e(
            type="response.output_item.done",
            event_id=f"ev_x{t}",
            response_id=resp,
            output_index=0,
            item=done_item,
        ),
    )
    usage = {"total_tokens": 300, "input_tokens": 200, "output_tokens": 100}
    done = {
        "id": resp,
        "object": "realtime.response",
        "status": "completed",
        "output": [done_item],
        "usage": usage,
    }
    yield "u", _e(type="response.done", event_id=f"ev_z{t}", response=done)
    if call:
        output = {"type": "function_call_output", "call_id": f"call_{t}", "output": '{"temp": 21}'}
        yield "c", _e(type="conversation.item.create", item=output)
        yield "c", _e(type="response.create")


class Driver:
    """Feeds a core its conversation, firing the timers it asks for as simulated time passes."""

    def __init__(self, core: SessionCore) -> None:
        self.core, self.now, self.frames = core, 0.0, 0
        self.timers: dict[str, float] = {}

    def feed(self, side: str, frame: str) -> None:
        actions = (self.core.from_client if side == "c" else self.core.from_upstream)(frame, self.now)
        self.frames += 1
        for action in actions or ():
            if isinstance(action, StartTimer):
                self.timers[action.token] = self.now + action.delay
        if side == "c" and frame.startswith('{"type":"input_audio_buffer.append"'):
            self.now += FRAME_S
        for token, due in list(self.timers.items()):
            if due <= self.now:
                del self.timers[token]
                self.core.on_timer(token, self.now)

    def run_until(self, seconds: float, first_turn: int) -> int:
        t = first_turn
        while self.now < seconds:
            for side, frame in turn(t):
                self.feed(side, frame)
            t += 1
        return t


def memory(minutes: list[int]) -> list[str]:
    rows = [
        "| conversation | frames | turns | session memory (tracemalloc) | largest owners |",
        "|---|---|---|---|---|",
    ]
    warm = Driver(build_core())  # imports, caches and interned strings first: they are not per session
    warm.feed("c", session_update(10))
    warm.run_until(60.0, 0)
    del warm
    gc.collect()
    tracemalloc.start(1)
    ignore = [tracemalloc.Filter(False, __file__), tracemalloc.Filter(False, tracemalloc.__file__)]
    base = tracemalloc.take_snapshot().filter_traces(ignore)
    core = build_core()
    driver = Driver(core)
    driver.feed("c", session_update(10))
    t = 0
    for m in minutes:
        t = driver.run_until(m * 60.0, t)
        gc.collect()
        stats = tracemalloc.take_snapshot().filter_traces(ignore).compare_to(base, "filename")
        total = sum(s.size_diff for s in stats)
        top = ", ".join(
            f"{s.traceback[0].filename.rsplit('/', 2)[-1]} {s.size_diff / 1024:.1f}"
            for s in sorted(stats, key=lambda s: -s.size_diff)[:3]
        )
        rows.append(f"| {m} min | {driver.frames:,} | {t} | {total / 1024:.1f} KiB | {top} (KiB) |")
    tracemalloc.stop()
    return rows


def cpu(tool_counts: list[int], frames: int) -> list[str]:
    rows = ["| tools | append µs | audio delta µs | response.create µs | item.create (tool output) µs |",
            "|---|---|---|---|---|"]  # fmt: skip
    for n in tool_counts:
        core = build_core()
        driver = Driver(core)
        driver.feed("c", session_update(n))
        driver.run_until(60.0, 0)
        sample = dict.fromkeys(("append", "delta", "create", "item"), "")
        for _side, frame in turn(1000 + TOOL_EVERY - 1):  # a turn with a tool call, for its client events
            kind = orjson.loads(frame)["type"]
            key = {"input_audio_buffer.append": "append", "response.create": "create",
                   "conversation.item.create": "item"}.get(kind)  # fmt: skip
            if key:
                sample[key] = frame
        sample["delta"] = next(f for s, f in turn(1000) if '"response.output_audio.delta"' in f)
        cells = []
        for key in ("append", "delta", "create", "item"):
            fn = core.from_upstream if key == "delta" else core.from_client
            frame, now = sample[key], driver.now
            best = float("inf")
            for _ in range(5):
                started = time.process_time()
                for _ in range(frames):
                    fn(frame, now)
                best = min(best, time.process_time() - started)
            cells.append(f"{best / frames * 1e6:.2f}")
        rows.append(f"| {n} | " + " | ".join(cells) + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.growth")
    parser.add_argument("--minutes", default="1,10,60")
    parser.add_argument("--tools", default="1,10,100")
    parser.add_argument("--frames", type=int, default=2000, help="frames per CPU sample (best of 5)")
    parser.add_argument("--quick", action="store_true", help="1 and 2 minutes, 200 frames per sample")
    args = parser.parse_args(argv)
    minutes = [1, 2] if args.quick else [int(m) for m in args.minutes.split(",")]
    frames = 200 if args.quick else args.frames
    print("\n".join(memory(minutes)))
    print()
    print("\n".join(cpu([int(n) for n in args.tools.split(",")], frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
