"""Count the function calls inside `realtime_proxy` along two walks through the pure core:
a client `response.create` to the frame that goes upstream, and an upstream `response.done` to
the frame that goes to the client. Configured as a default session (rules, retries, turn-taking).

    python scripts/core_walks.py          # this checkout
    PYTHONPATH=/path/to/other/checkout python scripts/core_walks.py   # another one, to compare
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from realtime_proxy.core.orchestration_observations import OrchestrationOptions
from realtime_proxy.core.retry import ResponseRetrier, RetryPolicy
from realtime_proxy.core.rules import build_chain
from realtime_proxy.core.session import CoreOptions, SessionCore

CREATE = '{"type":"response.create","event_id":"c1","response":{"instructions":"hi"}}'
CREATED = '{"type":"response.created","event_id":"s1","response":{"id":"r1","conversation_id":"conv"}}'
DONE = (
    '{"type":"response.done","event_id":"s2","response":{"id":"r1","status":"completed",'
    '"conversation_id":"conv","output":[],"usage":null}}'
)


def count(walk: Callable[[], Any]) -> tuple[int, int, int]:
    """(calls, distinct functions, deepest nesting) of realtime_proxy code during `walk`."""
    calls: list[str] = []
    depth = deepest = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal depth, deepest
        if "/realtime_proxy/" not in frame.f_code.co_filename:
            return
        if event == "call":
            calls.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
            depth += 1
            deepest = max(deepest, depth)
        elif event == "return":
            depth -= 1

    sys.setprofile(profile)
    try:
        walk()
    finally:
        sys.setprofile(None)
    return len(calls), len(set(calls)), deepest


def main() -> None:
    retrier = ResponseRetrier(RetryPolicy(), random.Random(1))
    options = CoreOptions(orchestration=OrchestrationOptions())
    core = SessionCore(build_chain(), retrier=retrier, escalation=build_chain(), options=options)
    walks = {
        "client response.create -> upstream": lambda: core.from_client(CREATE, 1.0),
        "upstream response.created -> client": lambda: core.from_upstream(CREATED, 1.1),
        "upstream response.done -> client": lambda: core.from_upstream(DONE, 2.0),
    }
    for name, walk in walks.items():
        calls, distinct, deepest = count(walk)
        print(f"{name}: {calls} calls, {distinct} distinct functions, {deepest} deep")


if __name__ == "__main__":
    main()
