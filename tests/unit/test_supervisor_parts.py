"""The supervisor's pure parts: the merged exposition keeps promtool's rules, the shared session zone
counts across processes and forgets a dead one, the respawn backoff, a failed log write is dropped
and counted, never raised."""

from __future__ import annotations

import io
import os

import pytest
from prometheus_client import generate_latest

from realtime_proxy.commands.supervisor import backoff
from realtime_proxy.edge.shared_limits import LocalSlots, SharedSlots, Zone
from realtime_proxy.observe.logs import LineSink, configure_logging, dropped_lines, get_logger
from realtime_proxy.observe.metrics import Metrics, SupervisorMetrics
from realtime_proxy.observe.metrics_merge import merge_exposition
from tests.exposition_lint import exposition_problems


def _exposition() -> str:
    metrics = Metrics()
    metrics.rewrites_total.labels("tool_choice_object").inc()
    metrics.rate_limit_remaining.labels("requests").set(5)
    return generate_latest(metrics.registry).decode()


def test_a_worker_exposition_and_the_merged_one_follow_the_rules() -> None:
    one = _exposition()
    assert exposition_problems(one) == []
    merged = merge_exposition([one, one, generate_latest(SupervisorMetrics().registry).decode()])
    assert exposition_problems(merged) == []
    assert '\nrealtime_proxy_rewrites_total{rule="tool_choice_object"} 2.0\n' in merged
    assert "\n# TYPE realtime_proxy_rewrites_total counter\n" in merged
    assert '\nrealtime_proxy_build_info{version="' in merged and '"} 1.0\n' in merged  # info: not summed


def test_exited_workers_leave_their_counters_and_the_sum_never_goes_down() -> None:
    one = _exposition()
    retired = merge_exposition([one], cumulative_only=True)
    assert "realtime_proxy_rewrites_total" in retired and "realtime_proxy_rate_limit_remaining" not in retired
    floor: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    assert '{rule="tool_choice_object"} 2.0' in merge_exposition([one, one], floor=floor)
    # One worker gone without a word (its counters lost): the exposed counter does not go back.
    after = merge_exposition([one], floor=floor)
    assert '{rule="tool_choice_object"} 2.0' in after and 'remaining{name="requests"} 5.0' in after


def test_the_rules_catch_a_type_line_without_its_total_suffix() -> None:
    text = "# HELP x Things\n# TYPE x counter\nx_total 1.0\n"
    assert [p.split(",")[0] for p in exposition_problems(text)] == [
        'counter x should have the "_total" suffix',
        "sample x_total outside its family (TYPE x)",
    ]
    split = "# HELP a A\n# TYPE a gauge\na 1\n# HELP b B\n# TYPE b gauge\nb 1\na 2\n"
    assert any("outside its family" in p for p in exposition_problems(split))


def test_the_zone_limits_the_sum_over_processes_and_forgets_a_dead_one() -> None:
    zone = Zone.create(4)
    try:
        worker_a, worker_b = SharedSlots(zone, 0, 3), SharedSlots(Zone(zone.fd, 4), 1, 3)
        assert [worker_a.acquire(), worker_b.acquire(), worker_a.acquire()] == [True, True, True]
        assert (worker_a.acquire(), worker_b.acquire()) == (False, False)
        assert worker_b.in_use() == 3 and zone.count(0) == 2
        zone.clear(0)  # worker A died: its two sessions went with it
        assert (worker_b.acquire(), worker_b.acquire(), worker_b.acquire()) == (True, True, False)
        worker_b.release()
        assert worker_a.acquire() and zone.total() == 3
        worker_a.release()
        worker_a.release()  # never below zero
        assert zone.count(0) == 0
    finally:
        zone.close()
    zone.clear(0)  # after close: a no-op, not a crash (a late exit callback)


def test_local_slots() -> None:
    slots = LocalSlots(2)
    assert [slots.acquire(), slots.acquire(), slots.acquire()] == [True, True, False]
    slots.release()
    assert slots.in_use() == 1


def test_backoff_doubles_from_a_tenth_of_a_second_to_ten() -> None:
    assert [backoff(n) for n in (0, 1, 2, 3, 7, 8, 50)] == [0.1, 0.2, 0.4, 0.8, 10.0, 10.0, 10.0]
    assert backoff(6) == pytest.approx(6.4)


def test_a_log_line_to_a_closed_pipe_is_dropped_and_counted() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = os.fdopen(write_end, "w")
    sink = LineSink(stream)
    sink.fd = write_end  # as for stdout: raw writes, no Python buffer left to fail at exit
    before = dropped_lines()
    sink.write("one")
    sink.write("two")
    assert dropped_lines() == before + 2
    stream.close()


def test_a_failing_stream_never_raises_into_the_caller() -> None:
    class Broken(io.StringIO):
        def write(self, _text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    before = dropped_lines()
    configure_logging(log_format="json", level="info", stream=Broken())
    get_logger("proxy.test").info("session_open", session_id="s")
    import logging

    logging.getLogger("websockets.server").warning("from the stdlib")
    assert dropped_lines() == before + 2
    configure_logging(log_format="json", level="info", stream=io.StringIO())
