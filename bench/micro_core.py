"""Per-frame cost of the proxy's pure core and of the JSON choices it could make, in-process.

`python -m bench.micro_core` — single core, no sockets. Compare with the relay's CPU per frame
from `python -m bench` to see what share of the proxy's per-frame cost is its own logic.
"""

from __future__ import annotations

import base64
import json
import random
import re
import sys
import timeit
from collections.abc import Callable

import orjson

from realtime_proxy.core.events import parse_object, sniff_type
from realtime_proxy.core.retry import ResponseRetrier, RetryPolicy
from realtime_proxy.core.rules import build_chain
from realtime_proxy.core.session import SessionCore
from realtime_proxy.core.traffic import TrafficCounts

AUDIO = base64.b64encode(random.Random(0).randbytes(960)).decode()
APPEND = f'{{"type":"input_audio_buffer.append","event_id":"b_1_123456789","audio":"{AUDIO}"}}'
DELTA = (
    '{"type":"response.output_audio.delta","event_id":"b_1_123456789","response_id":"resp_bench",'
    f'"item_id":"item_bench","output_index":0,"content_index":0,"delta":"{AUDIO}"}}'
)
CLEAR = '{"type":"input_audio_buffer.clear","event_id":"c_1_123456789"}'
CLEARED = '{"type":"input_audio_buffer.cleared","event_id":"c_1_123456789"}'
_TYPE_ANYWHERE = re.compile(r'"type"\s*:\s*"([^"\\]{1,128})"')


def per_call_us(fn: Callable[[], object], number: int = 20_000) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> int:
    core = SessionCore(
        build_chain(),
        retrier=ResponseRetrier(RetryPolicy(), random.Random(0)),
        traffic=TrafficCounts(),
    )
    rows = {
        "core.from_client(append 1.3 KB)": lambda: core.from_client(APPEND, 0.0),
        "core.from_upstream(audio delta 1.4 KB)": lambda: core.from_upstream(DELTA, 0.0),
        "core.from_client(input_audio_buffer.clear)": lambda: core.from_client(CLEAR, 0.0),
        "core.from_upstream(input_audio_buffer.cleared)": lambda: core.from_upstream(CLEARED, 0.0),
        "events.sniff_type(append) [regex on head]": lambda: sniff_type(APPEND),
        "orjson.loads(append)": lambda: orjson.loads(APPEND),
        "json.loads(append) [stdlib]": lambda: json.loads(APPEND),
        "events.parse_object(delta) [orjson]": lambda: parse_object(DELTA),
        "json.loads(delta) [stdlib]": lambda: json.loads(DELTA),
        "orjson.dumps(parsed append)": lambda: orjson.dumps(orjson.loads(APPEND)),
        "json.dumps(parsed append) [stdlib]": lambda: json.dumps(json.loads(APPEND)),
        "regex search for type anywhere (append)": lambda: _TYPE_ANYWHERE.search(APPEND),
    }
    print("| operation | µs per call |\n|---|---|")
    for name, fn in rows.items():
        print(f"| {name} | {per_call_us(fn):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
