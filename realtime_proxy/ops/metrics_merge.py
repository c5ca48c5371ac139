"""Sum the Prometheus expositions of several worker processes into one (the supervisor's /metrics).

Counters, histograms and gauges are summed per sample and label set (sessions_active of N workers is
their sum); `_created` timestamps keep the earliest, info-style samples the largest. The result is
rendered by prometheus_client's own writer, so it has exactly the shape of one worker's exposition
(`# TYPE x_total counter` above `x_total` samples: what `promtool check metrics` requires)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def merge_exposition(texts: list[str]) -> str:
    families: dict[str, tuple[str, str, Samples]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
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
        for (sample_name, labels), value in samples.items():
            metric.add_sample(sample_name, dict(labels), value)
        merged.append(metric)
    return generate_latest(_Families(merged)).decode()
