#!/usr/bin/env python3
"""Time the platform synth, cold and warm, against an empty one-stack app in the same rounds.

Every run is a fresh process (what `cdk synth` does). Each round runs the empty app and then every
variant, so machine noise hits a round alike; a variant's ratio is the median over rounds of its
time divided by the same round's empty-app time.

- cold:    a fresh clone: no `.cache/` (each run gets a new, empty cache folder); the committed
           pipeline definitions in `pipeline_code/definitions/built/` are all it has.
- warm:    `.cache/` filled by an earlier run (a developer's second synth).
- rebuilt: every pipeline definition built again (the SageMaker SDK imported), as after a change
           to the pipeline code before `make definitions` re-records them. Reported, no goal.

Goal: cold and warm at most 2.0x the empty app. A missed goal makes the script exit 1.

    .venv/bin/python benchmarks/synth_time.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 2.0
EMPTY = "empty one-stack app"


def timed_run(script: Path, outdir: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script)], cwd=ROOT, env={**env, "CDK_OUTDIR": outdir}, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds (default: 7; minimum 5)")
    args = parser.parse_args()
    runs = max(args.runs, 5)
    env = {**os.environ, "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CDK_CONTEXT_JSON", None)
    # What `make approved-model` records, passed the way the CDK CLI passes context.
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["ml-platform:sandbox:approved-model-package"] = {
        "arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-sandbox-models/1",
        "version": 1, "group": "mlp-sandbox-models", "creation_time": "2026-11-20T09:30:00Z",
    }  # fmt: skip
    with_package = {"CDK_CONTEXT_JSON": json.dumps(context)}
    app = ROOT / "app.py"
    with tempfile.TemporaryDirectory() as tmp:
        warm_cache = {"ML_PLATFORM_CACHE_DIR": f"{tmp}/warm-cache"}
        rebuilt = {"ML_PLATFORM_DEFINITION_CACHE": "0"}
        # (script, extra environment, goal?); "cold" gets a new empty cache folder on every run.
        variants = {
            EMPTY: (ROOT / "benchmarks" / "empty_app.py", {}, False),
            "sandbox (5 stacks, cdk-nag on): cold": (app, {}, True),
            "sandbox: warm": (app, warm_cache, True),
            "sandbox: definitions rebuilt": (app, rebuilt, False),
            "serving an approved model (7 stacks, 3 pipelines): cold": (app, with_package, True),
            "serving: warm": (app, {**with_package, **warm_cache}, True),
            "serving: definitions rebuilt": (app, {**with_package, **rebuilt}, False),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}

        def run(name: str, label: str) -> float:
            script, extra, _ = variants[name]
            extra = {**extra, "ML_PLATFORM_CACHE_DIR": f"{tmp}/cold-{label}"} if name.endswith("cold") else extra
            return timed_run(script, f"{tmp}/out-{label}", {**env, **extra})

        for name in variants:  # warm-up: fills the warm cache; first runs after install are much slower
            run(name, f"warm-up-{len(times[name])}-{list(variants).index(name)}")
        for i in range(runs):
            for name in variants:
                times[name].append(run(name, f"{i}-{list(variants).index(name)}"))
    width = max(map(len, variants))
    print(f"synth wall time over {runs} rounds (python {sys.version.split()[0]}, {os.cpu_count()} cores):")
    print(f"  {'':<{width}}  median   min     max     ratio to empty (median of rounds)")
    missed = False
    for name, values in times.items():
        ratio = statistics.median(v / e for v, e in zip(values, times[EMPTY]))
        goal = variants[name][2]
        missed |= goal and ratio > GOAL
        verdict = f"  (goal: <= {GOAL}x) {'met' if ratio <= GOAL else 'NOT met'}" if goal else ""
        shown = "" if name == EMPTY else f"{ratio:5.2f}x{verdict}"
        print(f"  {name:<{width}}  {statistics.median(values):5.2f} s {min(values):5.2f}   {max(values):5.2f}   {shown}")
    return 1 if missed else 0  # a missed goal fails `make bench`


if __name__ == "__main__":
    sys.exit(main())
