#!/usr/bin/env python3
"""Time the full platform synth against an empty one-stack app, in the same run.

Runs both as fresh processes (what `cdk synth` does), alternating so that machine
noise hits both alike, and prints medians and their ratio. Goal: full synth at
most 2.5x the empty-app floor.

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
GOAL = 2.5


def timed_run(script: Path, outdir: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script)], cwd=ROOT, env={**env, "CDK_OUTDIR": outdir}, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each app (default: 7; minimum 5)")
    args = parser.parse_args()
    runs = max(args.runs, 5)
    env = {**os.environ, "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CDK_CONTEXT_JSON", None)
    empty, full, cold = "empty one-stack app", "full platform (sandbox, cdk-nag on)", "  same, pipeline definition rebuilt"
    serving, serving_cold = "full platform serving an approved model", "  same, 3 pipeline definitions rebuilt"
    # What `make approved-model` records, passed the way the CDK CLI passes context.
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["ml-platform:sandbox:approved-model-package"] = {
        "arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-sandbox-models/1",
        "version": 1, "group": "mlp-sandbox-models", "creation_time": "2026-11-20T09:30:00Z",
    }  # fmt: skip
    with_package = {"CDK_CONTEXT_JSON": json.dumps(context)}
    # (script, extra environment): the cold variants rebuild the definitions as after a pipeline change.
    apps = {
        empty: (ROOT / "benchmarks" / "empty_app.py", {}),
        full: (ROOT / "app.py", {}),
        cold: (ROOT / "app.py", {"ML_PLATFORM_DEFINITION_CACHE": "0"}),
        serving: (ROOT / "app.py", with_package),
        serving_cold: (ROOT / "app.py", {**with_package, "ML_PLATFORM_DEFINITION_CACHE": "0"}),
    }
    times: dict[str, list[float]] = {name: [] for name in apps}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (script, extra) in apps.items():  # warm-up: first runs after install are much slower
            timed_run(script, f"{tmp}/warm", {**env, **extra})
        for i in range(runs):
            for name, (script, extra) in apps.items():
                times[name].append(timed_run(script, f"{tmp}/{i}-{len(times[name])}", {**env, **extra}))
    medians = {name: statistics.median(values) for name, values in times.items()}
    width = max(map(len, apps))
    print(f"synth wall time, median of {runs} runs each (python {sys.version.split()[0]}, {os.cpu_count()} cores):")
    for name, values in times.items():
        print(f"  {name:<{width}}  {medians[name]:6.2f} s   (min {min(values):.2f}, max {max(values):.2f})")
    missed = False
    for name in (full, cold, serving, serving_cold):
        ratio = medians[name] / medians[empty]
        goal = name in (full, serving)
        missed |= goal and ratio > GOAL
        verdict = f"  (goal: <= {GOAL}x) -> {'met' if ratio <= GOAL else 'NOT met'}" if goal else ""
        print(f"  ratio {name.strip()} / empty: {ratio:.2f}x{verdict}")
    return 1 if missed else 0  # a missed goal fails `make bench`


if __name__ == "__main__":
    sys.exit(main())
