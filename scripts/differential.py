"""The differential run: valid client events (generated from the `openai` SDK's TypedDicts) on every route
and model through the real core with shipped defaults; counts tried, changed, refused, harmful.

    .venv/bin/python scripts/differential.py [--per-type N] [--show K]

Deterministic (fixed seed). The verdicts are `tests/noharm.py`'s; to measure another checkout, run
this file with PYTHONPATH pointing at that checkout first (its `realtime_proxy`) and this repo second."""

from __future__ import annotations

import argparse
import collections
import pathlib
import sys
import warnings
from typing import Any

sys.path.append(str(pathlib.Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import noharm, sdk_events
from tests.noharm_sessions import SCENARIOS


def run(per_type: int) -> tuple[collections.Counter[str], list[tuple[str, str | None, str, Any]]]:
    counts: collections.Counter[str] = collections.Counter()
    harms: list[tuple[str, str | None, str, Any]] = []
    for td in [*sdk_events.REALTIME_EVENTS, *sdk_events.TRANSLATION_EVENTS]:
        kind = sdk_events.event_type_of(td)
        translation = td in sdk_events.TRANSLATION_EVENTS
        routes = ["translation"] if translation else [r for r in noharm.TARGETS if r != "translation"]

        @settings(
            max_examples=per_type,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            event=sdk_events.typeddict_strategy(td),
            route=st.sampled_from(routes),
            model=st.sampled_from(noharm.MODELS),
        )
        def trial(event: dict[str, Any], route: str, model: str | None) -> None:
            verdict = noharm.judge(noharm.Session(route, model), event)
            counts["tried"] += 1
            counts[verdict.outcome] += 1
            if verdict.harmful:
                counts["harmful"] += 1
                harms.append((route, model, verdict.harmful, event))

        trial()
        counts[f"type:{kind}"] += 0
    return counts, harms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-type", type=int, default=300, help="examples per client event type")
    parser.add_argument("--show", type=int, default=5, help="harmful cases to print")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    counts, harms = run(args.per_type)
    keys = ("tried", "unchanged", "changed", "tagged", "refused", "held", "harmful")
    print("generated:", " ".join(f"{k}={counts[k]}" for k in keys))
    wrong = 0
    for scenario in SCENARIOS:
        verdict = scenario.run()
        if verdict.outcome != scenario.expected or verdict.harmful:
            wrong += 1
            print(f"  session harmed: {scenario.name} ({scenario.cause}): {verdict.outcome} {verdict.rules}")
    print(f"sessions with known ground truth: tried={len(SCENARIOS)} harmful={wrong}")
    reasons = collections.Counter(h[2] for h in harms)
    for reason, n in reasons.most_common():
        print(f"  {n:5d}  {reason}")
    for route, model, reason, event in harms[: args.show]:
        print(f"- {route} {model}: {reason}\n    {event}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
