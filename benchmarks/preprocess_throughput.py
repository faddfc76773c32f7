#!/usr/bin/env python3
"""Preprocessing throughput and peak memory: pipeline_code/steps/preprocess.py vs plain pandas.

Generates a mixed-type CSV (default 1,000,000 rows: 12 numeric and 8 categorical features with
about 5% missing cells each, plus a 3-class string target) in a temporary directory, then runs, in
the same invocation and each in its own fresh process:

  ours      pipeline_code/steps/preprocess.py, exactly as the processing job runs it
  baseline  the same transforms as tutorials write them: pd.read_csv with defaults, fillna with
            the median / mode per column, pd.get_dummies, StandardScaler, two stratified
            train_test_split calls, DataFrame.to_csv for train/validation/test

Both read the same cached file and write the same three splits; ours also writes the fitted
preprocessor and the baseline profile. Wall time includes interpreter start and imports. Peak
memory is the child's peak RSS from wait4(). Runs alternate (ours, baseline, ours, ...) so that
machine noise hits both alike; the best run of each counts. Goal: ours >= 2x the rows/s of the
baseline at <= 0.6x its peak memory.

    .venv/bin/python benchmarks/preprocess_throughput.py [--rows N] [--runs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parent.parent
PREPROCESS = ROOT / "pipeline_code" / "steps" / "preprocess.py"
TARGET = "target"
GOAL_SPEEDUP, GOAL_MEMORY = 2.0, 0.6

BASELINE = textwrap.dedent(
    """
    import sys
    import joblib
    import pandas as pd
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    data_path, out_dir, target = sys.argv[1], sys.argv[2], sys.argv[3]
    df = pd.read_csv(data_path)
    y = df.pop(target)
    num_cols = df.select_dtypes(include="number").columns.tolist()
    cat_cols = [c for c in df.columns if c not in num_cols]
    for col in num_cols:
        df[col] = df[col].fillna(df[col].median())
    for col in cat_cols:
        df[col] = df[col].fillna(df[col].mode()[0])
    df = pd.get_dummies(df, columns=cat_cols)
    scaler = StandardScaler()
    df[num_cols] = scaler.fit_transform(df[num_cols])
    X_train, X_rest, y_train, y_rest = train_test_split(df, y, test_size=0.3, stratify=y, random_state=42)
    X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=42)
    for name, X, labels in (("train", X_train, y_train), ("validation", X_val, y_val), ("test", X_test, y_test)):
        out = X.copy()
        out[target] = labels
        out.to_csv(f"{out_dir}/{name}.csv", index=False)
    joblib.dump(scaler, f"{out_dir}/scaler.joblib")
    """
)


def generate(path: Path, rows: int, seed: int = 0, chunk: int = 250_000) -> None:
    """A mixed-type CSV with missing values and a learnable 3-class target, written in chunks."""
    rng = np.random.RandomState(seed)
    levels = {f"cat_{i:02d}": [f"c{i}_{k}" for k in range(n)] for i, n in enumerate([3, 4, 5, 7, 10, 12, 20, 30])}
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        columns, score = {}, np.zeros(n)
        for i in range(12):
            values = rng.normal(i * 10.0, 1.0 + i, n)
            score += values * (0.05 if i % 3 == 0 else 0.0)
            if i % 2:
                columns[f"num_{i:02d}"] = pa.array(np.round(values).astype(np.int64), mask=rng.random_sample(n) < 0.05)
            else:
                columns[f"num_{i:02d}"] = pa.array(np.round(values, 3), mask=rng.random_sample(n) < 0.05)
        for name, options in levels.items():
            codes = rng.randint(0, len(options), n)
            score += (codes % 3) * 0.3
            columns[name] = pa.array(np.asarray(options, dtype=object)[codes], mask=rng.random_sample(n) < 0.05)
        score += rng.normal(0, 1.0, n)
        cuts = np.quantile(score, [0.4, 0.75])
        columns[TARGET] = pa.array(np.where(score < cuts[0], "low", np.where(score < cuts[1], "mid", "high")))
        table = pa.table(columns)
        if writer is None:
            writer = pcsv.CSVWriter(str(path), table.schema, write_options=pcsv.WriteOptions(quoting_style="none"))
        writer.write_table(table)
    writer.close()


def measure(command, cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[1]} failed ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024.0  # Linux reports KiB


def count_rows(path: Path) -> int:
    lines = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            lines += block.count(b"\n")
    return lines - 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate (default: 1,000,000)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each implementation, best counts (default: 2)")
    parser.add_argument("--keep", type=Path, help="keep data and outputs in this directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="preprocess-bench-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        data_dir = work / "data"
        data_dir.mkdir(exist_ok=True)
        data = data_dir / "data.csv"
        started = time.perf_counter()
        generate(data, args.rows)
        size = data.stat().st_size / 2**20
        print(f"generated {args.rows:,} rows x 21 columns ({size:.0f} MiB) in {time.perf_counter() - started:.1f}s")
        baseline_script = work / "baseline_pandas.py"
        baseline_script.write_text(BASELINE, encoding="utf-8")
        commands = {
            "ours (preprocess.py)": lambda out: [sys.executable, str(PREPROCESS), "--input-dir", str(data_dir),
                                                 "--output-dir", str(out), "--target-column", TARGET],
            "baseline (pandas)": lambda out: [sys.executable, str(baseline_script), str(data), str(out), TARGET],
        }
        results = {name: [] for name in commands}
        for run in range(args.runs):
            for index, (name, command) in enumerate(commands.items()):
                out = work / f"out-{index}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                elapsed, peak = measure(command(out), ROOT)
                results[name].append((elapsed, peak))
                print(f"  run {run + 1}: {name:<22} {elapsed:7.1f} s  {peak:8.0f} MiB", flush=True)
        ours_rows = sum(count_rows(work / "out-0" / split / f"{split}.csv") for split in ("train", "validation", "test"))
        base_rows = sum(count_rows(p) for p in (work / "out-1").glob("*.csv"))
        if ours_rows != args.rows or base_rows != args.rows:
            raise SystemExit(f"row counts differ: ours {ours_rows}, baseline {base_rows}, input {args.rows}")

        print(f"\npreprocessing {args.rows:,} rows (python {sys.version.split()[0]}, {os.cpu_count()} cores; best of {args.runs})")
        print(f"{'implementation':<22} {'wall s':>8} {'rows/s':>12} {'peak RSS MiB':>13}")
        best = {}
        for name, values in results.items():
            elapsed = min(v[0] for v in values)
            peak = min(v[1] for v in values)
            best[name] = (elapsed, peak)
            print(f"{name:<22} {elapsed:8.1f} {args.rows / elapsed:12,.0f} {peak:13.0f}")
        (ours_s, ours_mem), (base_s, base_mem) = best.values()
        speedup, memory = base_s / ours_s, ours_mem / base_mem
        print(f"{'ours / baseline':<22} {'':>8} {speedup:11.2f}x {memory:12.2f}x")
        print(f"goal: rows/s >= {GOAL_SPEEDUP:.1f}x -> {'met' if speedup >= GOAL_SPEEDUP else 'NOT met'}; "
              f"peak memory <= {GOAL_MEMORY:.1f}x -> {'met' if memory <= GOAL_MEMORY else 'NOT met'}")
        return 0 if speedup >= GOAL_SPEEDUP and memory <= GOAL_MEMORY else 1  # a missed goal fails `make bench`
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
