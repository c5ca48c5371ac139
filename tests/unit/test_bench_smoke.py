"""The benchmark's pure pieces: the upstream's reply shape and the load split (no processes)."""

from __future__ import annotations

from bench.load import CLEARED_HEAD, DELTA_HEAD, _parse_id, split
from bench.upstream import reply_to


def test_upstream_echoes_audio_and_timing() -> None:
    reply = reply_to('{"type":"input_audio_buffer.append","event_id":"b_7_123","audio":"QUJD"}')
    assert reply is not None and reply.startswith(DELTA_HEAD) and reply.endswith('"delta":"QUJD"}')
    assert _parse_id(reply, DELTA_HEAD) == (7, 123)
    cleared = reply_to('{"type":"input_audio_buffer.clear","event_id":"c_3_9"}')
    assert cleared is not None and _parse_id(cleared, CLEARED_HEAD) == (3, 9)
    assert reply_to('{"type":"response.create"}') is None


def test_split_covers_every_session() -> None:
    assert split(301, 2) == [(0, 151), (151, 150)]
