"""The rules `promtool check metrics` applies to a text-format (0.0.4) exposition, in Python, so the
suite checks them where promtool is not installed: every sample belongs to the family its `# TYPE`
line names, each family is declared once with HELP and TYPE before its samples, which are
contiguous; counters end in `_total` and nothing else does."""

from __future__ import annotations

import re

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+\S+(\s+\S+)?$")


def _belongs(sample: str, family: str, kind: str, labels: str) -> bool:
    if kind == "histogram":
        return (sample == f"{family}_bucket" and 'le="' in labels) or sample in (
            f"{family}_sum",
            f"{family}_count",
        )
    if kind == "summary":
        return sample in (family, f"{family}_sum", f"{family}_count")
    return sample == family


def exposition_problems(text: str) -> list[str]:
    problems: list[str] = []
    helped: set[str] = set()
    typed: dict[str, str] = {}
    current: tuple[str, str] | None = None
    finished: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line[:80]}"
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            if name in helped:
                problems.append(f"second HELP for {name}, {where}")
            helped.add(name)
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if name in typed:
                problems.append(f"second TYPE for {name}, {where}")
            if current is not None:
                finished.add(current[0])
            typed[name], current = kind, (name, kind)
            if name not in helped:
                problems.append(f"{name} has no help text, {where}")
            if kind == "counter" and not name.endswith("_total"):
                problems.append(f'counter {name} should have the "_total" suffix, {where}')
            if kind != "counter" and name.endswith("_total"):
                problems.append(f'non-counter {name} should not have the "_total" suffix, {where}')
        elif line.startswith("#"):
            continue
        else:
            match = _SAMPLE.match(line)
            if match is None:
                problems.append(f"unparsable sample, {where}")
                continue
            sample, labels = match.group(1), match.group(2) or ""
            if current is None or not _belongs(sample, *current, labels):
                family = current[0] if current else None
                problems.append(f"sample {sample} outside its family (TYPE {family}), {where}")
            elif current[0] in finished:
                problems.append(f"samples of {current[0]} are not contiguous, {where}")
    return problems
