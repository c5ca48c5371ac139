"""Sum the Prometheus expositions of several worker processes into one (the supervisor's /metrics).

Counters, histograms and gauges are summed per sample and label set (sessions_active of N workers is
their sum); `_created` timestamps keep the earliest, info-style samples the largest. `cumulative_only`
keeps counters, histograms and summaries (what a worker that exited leaves to the sum); `floor`
keeps each of their samples from ever going below what was exposed before (a worker killed between
two scrapes takes its last increments with it: no spurious counter reset for rate()). The result is
rendered by prometheus_client's own writer, so it has exactly the shape of one worker's exposition
(`# TYPE x_total counter` above `x_total` samples: what `promtool check metrics` requires)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
CUMULATIVE = ("counter", "histogram", "summary")


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def merge_exposition(texts: list[str], *, cumulative_only: bool = False, floor: Samples | None = None) -> str:
    families: dict[str, tuple[str, str, Samples]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if cumulative_only and family.type not in CUMULATIVE:
                continue
            kind, _doc, samples = families.setdefault(family.name, (family.type, family.documentation, {}))
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = samples.get(key)
                if old is None:
                    samples[key] = sample.value
                elif sample.name.endswith("_created"):
                    samples[key] = min(old, sample.value)
                elif kind == "info" or sample.name.endswith("_info"):
                    samples[key] = max(old, sample.value)
                else:
                    samples[key] = old + sample.value
    merged: list[Metric] = []
    for name, (kind, doc, samples) in families.items():
        metric = Metric(name, doc, kind)
        for key, value in samples.items():
            sample_name, labels = key
            if floor is not None and kind in CUMULATIVE:
                value = floor[key] = max(value, floor.get(key, 0.0))
            metric.add_sample(sample_name, dict(labels), value)
        merged.append(metric)
    return generate_latest(_Families(merged)).decode()
