#!/usr/bin/env python
"""Builder benchmark: the survey import's new records built by `lib.bulkcopy.Builder`, with its
values put straight into the instance (`direct`) against the floor, `Model(*values)` — Django's
own way to build an instance from its column values, which the Builder took before. Prints one
JSON object: per model, µs per instance of each way (the better of two medians, the ways
alternated) and their ratio. No database.

    SHOUHU_DEMO=1 .venv/bin/python bench/builder.py [--n 20000] [--reps 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shouhu.settings")

import django  # noqa: E402

django.setup()

from shouhu.lib.bulkcopy import Builder  # noqa: E402
from shouhu.registry import services  # noqa: E402
from shouhu.registry.models import Child, Entrustment, FamilyMember, Household, ParentSituation  # noqa: E402

CASES = [  # as a survey row fills them (the rest: the fields' defaults)
    (
        Child,
        services.CHILD_FIELDS,
        {"name": "李小花", "birth_date": date(2015, 3, 8), "gender": "F", "health": "healthy"},
    ),
    (Household, services.HOUSEHOLD_FIELDS, {"address": "武进区湖塘镇1号"}),
    (FamilyMember, services.MEMBER_FIELDS, {"name": "李大山", "relation": "father", "phone": "13800000000"}),
    (ParentSituation, services.SITUATION_FIELDS, {"kind": "migrant", "since": date(2020, 1, 1)}),
    (Entrustment, services.ENTRUSTMENT_FIELDS, {"carer_name": "王芳", "carer_relation": "grandmother"}),
]


def _time(build: Builder, data: dict, n: int, reps: int) -> float:
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(n):
            build(data)
        runs.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="instances per timed run")
    ap.add_argument("--reps", type=int, default=7, help="timed runs per way (the median is printed)")
    args = ap.parse_args()
    out: dict[str, dict[str, float | int]] = {}
    for model, names, data in CASES:
        build = Builder(model, names)
        if not build.direct:
            sys.exit(f"bench: {model.__name__} is not built directly (a descriptor or an init listener)")
        timings = {}
        for direct in (False, True, False, True):  # alternated: the machine is shared
            build.direct = direct
            timings.setdefault(direct, []).append(_time(build, data, args.n, args.reps))
        floor, direct_us = min(timings[False]), min(timings[True])
        out[model.__name__] = {
            "fields": len(model._meta.concrete_fields),
            "direct_us": round(direct_us, 2),
            "floor_init_us": round(floor, 2),
            "ratio": round(direct_us / floor, 2),
        }
    print(json.dumps({"n": args.n, "reps": args.reps, "models": out}, ensure_ascii=False))


if __name__ == "__main__":
    main()
