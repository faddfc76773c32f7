#!/usr/bin/env python3
"""Regenerate pipeline_code/data/sample.csv: a small, synthetic, license-clean churn-risk table.

1,500 customers, 6 numeric and 4 categorical features with a few percent missing cells, and a
three-class string target ``churn_risk`` (low / medium / high) drawn from a noisy function of the
features, so a random forest learns it to roughly 0.85 accuracy. Deterministic: numpy's legacy
``RandomState`` stream is frozen across numpy versions and every value is formatted explicitly,
so the file is byte-identical on every run.

    python pipeline_code/data/make_sample.py [--out PATH] [--rows N] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGET = "churn_risk"
NOISE = 0.2  # label noise: a random forest reaches about 0.85 accuracy
COLUMNS = [
    "age", "income", "tenure_months", "monthly_spend", "support_calls", "satisfaction",
    "region", "plan", "contract", "payment_method", TARGET,
]


def generate(rows: int = 1500, seed: int = 7) -> list[list[str]]:
    rng = np.random.RandomState(seed)
    age = np.clip(np.round(rng.normal(44, 13, rows)), 18, 85).astype(int)
    income = np.round(np.exp(rng.normal(10.8, 0.45, rows)), 2)
    tenure = np.clip(np.round(rng.exponential(30, rows)), 0, 120).astype(int)
    plan = rng.choice(["basic", "standard", "premium"], size=rows, p=[0.5, 0.35, 0.15])
    contract = rng.choice(["monthly", "annual", "two-year"], size=rows, p=[0.55, 0.3, 0.15])
    region = rng.choice(["north", "south", "east", "west"], size=rows, p=[0.3, 0.25, 0.25, 0.2])
    payment = rng.choice(["card", "bank", "cash", "voucher"], size=rows, p=[0.45, 0.3, 0.2, 0.05])
    plan_fee = np.select([plan == "basic", plan == "standard"], [20.0, 45.0], 80.0)
    spend = np.round(np.clip(plan_fee + rng.normal(0, 12, rows), 5, None), 2)
    calls = rng.poisson(1.2, rows)
    satisfaction = np.round(np.clip(rng.normal(3.6, 0.9, rows) - 0.25 * calls, 1, 5), 1)

    score = (
        -0.025 * np.minimum(tenure, 60)
        + 0.45 * np.minimum(calls, 4)
        - 0.6 * (satisfaction - 3.5)
        + np.select([contract == "monthly", contract == "annual"], [1.0, 0.0], -1.0)
        + np.where(payment == "voucher", 0.8, 0.0)
        + rng.normal(0, NOISE, rows)
    )
    low_cut, high_cut = np.quantile(score, [0.45, 0.8])
    risk = np.where(score < low_cut, "low", np.where(score < high_cut, "medium", "high"))

    columns = {
        "age": [str(v) for v in age],
        "income": [f"{v:.2f}" for v in income],
        "tenure_months": [str(v) for v in tenure],
        "monthly_spend": [f"{v:.2f}" for v in spend],
        "support_calls": [str(v) for v in calls],
        "satisfaction": [f"{v:.1f}" for v in satisfaction],
        "region": list(region),
        "plan": list(plan),
        "contract": list(contract),
        "payment_method": list(payment),
        TARGET: list(risk),
    }
    # A few percent of missing cells, in numeric and categorical features alike.
    for name, share in [("age", 0.03), ("income", 0.05), ("satisfaction", 0.04), ("region", 0.03), ("payment_method", 0.04)]:
        for i in np.flatnonzero(rng.random_sample(rows) < share):
            columns[name][i] = ""
    return [[columns[c][i] for c in COLUMNS] for i in range(rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "sample.csv")
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with open(args.out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(generate(args.rows, args.seed))
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()
