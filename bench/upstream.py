"""A minimal Realtime-like upstream for the benchmark, as cheap as possible so the floor is clean.

- `input_audio_buffer.append` -> one `response.output_audio.delta` carrying the same audio and the
  client's event_id (which holds the sequence number and send time), so the client measures RTT.
- `input_audio_buffer.clear` -> `input_audio_buffer.cleared` with the same event_id (burst scenario).
- Anything else is ignored. A small `session.created` is sent on connect, like the real API.

Run: `python -m bench.upstream [--uvloop]`; prints one JSON line `{"event": "listening", "port": N}`.
"""

from __future__ import annotations

import argparse
import json
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench.bare_relay import WS_SETTINGS, run_loop

APPEND = '{"type":"input_audio_buffer.append","event_id":"'
CLEAR = '{"type":"input_audio_buffer.clear","event_id":"'
SESSION_CREATED = (
    '{"type":"session.created","event_id":"event_bench_0","session":{"type":"realtime",'
    '"id":"sess_bench","object":"realtime.session","model":"gpt-realtime","output_modalities":["audio"],'
    '"audio":{"input":{"format":{"type":"audio/pcm","rate":24000}},'
    '"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"alloy"}}}}'
)
DELTA_HEAD = '{"type":"response.output_audio.delta","event_id":"'
DELTA_MID = '","response_id":"resp_bench","item_id":"item_bench","output_index":0,"content_index":0,"delta":"'


def reply_to(message: str | bytes) -> str | None:
    if not isinstance(message, str):
        return None
    if message.startswith(APPEND):
        start = len(APPEND)
        end = message.index('"', start)
        audio = message.index('"audio":"', end) + 9
        return DELTA_HEAD + message[start:end] + DELTA_MID + message[audio : message.index('"', audio)] + '"}'
    if message.startswith(CLEAR):
        start = len(CLEAR)
        end = message.index('"', start)
        return '{"type":"input_audio_buffer.cleared","event_id":"' + message[start:end] + '"}'
    return None


async def handle(ws: ServerConnection) -> None:
    send = ws.send
    try:
        await send(SESSION_CREATED)
        async for message in ws:
            reply = reply_to(message)
            if reply is not None:
                await send(reply)
    except ConnectionClosed:
        pass


async def main_async(port: int) -> None:
    async with serve(handle, "127.0.0.1", port, **WS_SETTINGS) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"event": "listening", "port": bound}), flush=True)
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="use uvloop (default: stdlib asyncio)")
    args = parser.parse_args(argv)
    run_loop(main_async(args.port), use_uvloop=args.uvloop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
