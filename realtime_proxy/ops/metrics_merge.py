"""Sum the Prometheus expositions of several worker processes into one (the supervisor's /metrics).

Counters, histograms and gauges are summed per sample and label set (sessions_active of N workers is
their sum); `_created` timestamps keep the earliest, info-style samples the largest."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString as _untyped_float

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def merge_exposition(texts: list[str]) -> str:
    families: dict[str, tuple[str, str, Samples]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            kind, doc, samples = families.setdefault(family.name, (family.type, family.documentation, {}))
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
    lines: list[str] = []
    for name, (kind, doc, samples) in families.items():
        lines.append(f"# HELP {name} {_escape_help(doc)}")
        lines.append(f"# TYPE {name} {kind}")
        for (sample_name, labels), value in samples.items():
            rendered = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
            lines.append(
                f"{sample_name}{{{rendered}}} {_float(value)}" if labels else f"{sample_name} {_float(value)}"
            )
    return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _float(value: float) -> str:
    return str(_untyped_float(value))  # type: ignore[no-untyped-call]
