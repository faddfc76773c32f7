"""Drift scores from the baseline profile: PSI, KS, Wasserstein and Jensen-Shannon distances, per feature and for the predictions."""

from __future__ import annotations

import math
from collections import Counter
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy.special import rel_entr

PSI_EPSILON = 1e-4  # additive smoothing of bin shares: p -> (p + eps) / (1 + bins * eps)
WASSERSTEIN_POINTS = 1000  # quantile-function grid of the Wasserstein integral (midpoint rule)
TOP_LEVEL_CHANGES = 5
DECIMALS = 6


def _round(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return round(value, DECIMALS) + 0.0 if math.isfinite(value) else None


def psi(baseline_counts: Sequence[float], window_counts: Sequence[float]) -> Optional[float]:
    """Population stability index of two count vectors over the same bins, with additive smoothing."""
    b, w = np.asarray(baseline_counts, dtype=np.float64), np.asarray(window_counts, dtype=np.float64)
    if b.sum() <= 0 or w.sum() <= 0:
        return None
    k = len(b)
    p = (b / b.sum() + PSI_EPSILON) / (1.0 + k * PSI_EPSILON)
    q = (w / w.sum() + PSI_EPSILON) / (1.0 + k * PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(baseline_counts: Sequence[float], window_counts: Sequence[float]) -> Optional[float]:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count vectors over the same bins."""
    b, w = np.asarray(baseline_counts, dtype=np.float64), np.asarray(window_counts, dtype=np.float64)
    if b.sum() <= 0 or w.sum() <= 0:
        return None
    p, q = b / b.sum(), w / w.sum()
    m = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / (2.0 * math.log(2.0))
    return float(math.sqrt(min(1.0, max(0.0, divergence))))


def _cdf_knots(profile: dict) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the baseline CDF is known: exact points (x, P(X < x)) and quantile points (x, p)."""
    lo, hi = float(profile["min"]), float(profile["max"])
    edges = np.asarray(profile["histogram"]["bin_edges"], dtype=np.float64)
    counts = np.asarray(profile["histogram"]["counts"], dtype=np.float64)
    below = np.cumsum(counts)[:-1] / counts.sum()  # P(X < inner edge i)
    inner = edges[1:-1]
    keep = (inner > lo) & (inner < hi)
    quantiles = sorted(profile["quantiles"].items())
    qx = np.asarray([float(v) for _, v in quantiles], dtype=np.float64)
    qp = np.asarray([int(k[1:]) / 100.0 for k, _ in quantiles], dtype=np.float64)
    return inner[keep], below[keep], qx, qp


def ks_distance(profile: dict, values: np.ndarray) -> float:
    """max |F_window - F_baseline| over the points where the baseline CDF is known (sorted values).

    Exact at the training min (share of values below it), max (share above it) and inner bin
    edges (the histogram gives P(X < edge)); at a quantile q_p the distance is how far p lies
    outside [F(q-), F(q)], which is 0 for a point mass (integer features) that straddles p. A
    lower bound of the two-sample KS statistic that the real training rows would give.
    """
    n = len(values)
    lo, hi = float(profile["min"]), float(profile["max"])
    inner, below, qx, qp = _cdf_knots(profile)
    distances = [np.searchsorted(values, lo, side="left") / n, 1.0 - np.searchsorted(values, hi, side="right") / n]
    if inner.size:
        distances.append(np.max(np.abs(np.searchsorted(values, inner, side="left") / n - below)))
    if qx.size:
        left = np.searchsorted(values, qx, side="left") / n
        right = np.searchsorted(values, qx, side="right") / n
        distances.append(np.max(np.maximum(0.0, np.maximum(left - qp, qp - right))))
    return float(max(distances))


def wasserstein(profile: dict, values: np.ndarray) -> float:
    """Wasserstein-1 distance: mean |Q_baseline(u) - Q_window(u)| over a uniform grid of u.

    Q_baseline is interpolated linearly through the known CDF points (min at 0, inner bin edges,
    quantiles, max at 1), i.e. the training values are taken as spread evenly between them.
    """
    lo, hi = float(profile["min"]), float(profile["max"])
    inner, below, qx, qp = _cdf_knots(profile)
    xs = np.concatenate(([lo, hi], inner, qx))
    us = np.concatenate(([0.0, 1.0], below, qp))
    order = np.lexsort((us, xs))
    xs, us = xs[order], np.maximum.accumulate(us[order])
    grid = (np.arange(WASSERSTEIN_POINTS) + 0.5) / WASSERSTEIN_POINTS
    j = np.clip(np.searchsorted(us, grid, side="right") - 1, 0, len(us) - 2)
    span = us[j + 1] - us[j]
    t = np.where(span > 0, (grid - us[j]) / np.where(span > 0, span, 1.0), 1.0)
    q_baseline = xs[j] + np.clip(t, 0.0, 1.0) * (xs[j + 1] - xs[j])
    n = len(values)
    q_window = values[np.clip(np.ceil(grid * n).astype(np.int64) - 1, 0, n - 1)]
    return float(np.mean(np.abs(q_baseline - q_window)))


def _missing_block(profile: dict, rows: int, missing: int) -> dict:
    base = profile["missing_count"] / profile["count"] if profile["count"] else 0.0
    window = missing / rows if rows else None
    return {"baseline": _round(base), "window": _round(window),
            "change": _round(window - base) if window is not None else None}


def numeric_drift(profile: dict, raw: np.ndarray, thresholds: dict) -> dict:
    values = raw.astype(np.float32).astype(np.float64)  # as the model sees them, as the profile was made
    present = np.sort(values[~np.isnan(values)])
    rows, missing = len(values), len(values) - len(present)
    histogram = profile.get("histogram")
    if histogram:
        edges = np.asarray(histogram["bin_edges"], dtype=np.float64)
        base_bins = np.asarray(histogram["counts"], dtype=np.float64)
        window_bins = np.bincount(np.searchsorted(edges[1:-1], present, side="right"), minlength=len(base_bins))
    else:  # no value in training: one bin for "has a value"
        base_bins, window_bins = np.zeros(1), np.asarray([len(present)], dtype=np.float64)
    score = psi(np.append(base_bins, profile["missing_count"]), np.append(window_bins, missing)) if rows else None
    result = {
        "type": "numeric",
        "rows": rows,
        "values": int(len(present)),
        "missing": _missing_block(profile, rows, missing),
        "psi": _round(score),
        "ks_distance": None,
        "wasserstein": None,
        "wasserstein_std": None,
        "mean": {"baseline": _round(profile.get("mean")), "window": _round(present.mean()) if len(present) else None},
        "std": {"baseline": _round(profile.get("std")), "window": _round(present.std()) if len(present) else None},
        "below_min_fraction": None,
        "above_max_fraction": None,
        "bins": {"baseline": [int(c) for c in base_bins], "window": [int(c) for c in window_bins]},
    }
    if histogram and len(present):
        ks = ks_distance(profile, present)
        w1 = wasserstein(profile, present)
        std = float(profile["std"])
        result.update(
            ks_distance=_round(ks),
            wasserstein=_round(w1),
            wasserstein_std=_round(w1 / std) if std > 0 else None,
            below_min_fraction=_round(np.searchsorted(present, float(profile["min"]), side="left") / len(present)),
            above_max_fraction=_round(1.0 - np.searchsorted(present, float(profile["max"]), side="right") / len(present)),
        )
    reasons = []
    if result["psi"] is not None and result["psi"] > thresholds["psi"]:
        reasons.append("psi")
    if result["ks_distance"] is not None and result["ks_distance"] > thresholds["ks"]:
        reasons.append("ks")
    result.update(drifted=bool(reasons), drift_reasons=reasons)
    return result


def categorical_drift(profile: dict, levels: Counter, missing: int, thresholds: dict) -> dict:
    known = list(profile["counts"])
    base_present = profile["count"] - profile["missing_count"]
    base_counts = [float(profile["counts"][level]) for level in known]
    base_other = max(0.0, base_present - sum(base_counts))
    window_counts = [float(levels.get(level, 0)) for level in known]
    present = int(sum(levels.values()))
    window_other = present - sum(window_counts)
    rows = present + missing
    base = base_counts + [base_other, float(profile["missing_count"])]
    window = window_counts + [window_other, float(missing)]
    score = psi(base, window) if rows else None
    js = js_distance(base, window) if rows else None
    changes = []
    if present and base_present:
        for level, b, w in zip(known, base_counts, window_counts):
            changes.append((level, b / base_present, w / present))
        changes.sort(key=lambda c: (-abs(c[2] - c[1]), c[0]))
    result = {
        "type": "categorical",
        "rows": rows,
        "values": present,
        "missing": _missing_block(profile, rows, missing),
        "psi": _round(score),
        "js_distance": _round(js),
        "unseen_fraction": _round(window_other / present) if present else None,
        "baseline_other_fraction": _round(base_other / base_present) if base_present else 0.0,
        "top_level_changes": [{"level": level, "baseline": _round(b), "window": _round(w)}
                              for level, b, w in changes[:TOP_LEVEL_CHANGES]],
    }
    reasons = ["psi"] if result["psi"] is not None and result["psi"] > thresholds["psi"] else []
    result.update(drifted=bool(reasons), drift_reasons=reasons)
    return result


def prediction_drift(target: dict, labels: Counter, thresholds: dict) -> Optional[dict]:
    total = int(sum(labels.values()))
    if not total:
        return None
    known = list(target["counts"])
    base_total = float(sum(target["counts"].values()))
    base = [float(target["counts"][label]) for label in known] + [0.0]
    window = [float(labels.get(label, 0)) for label in known]
    window.append(total - sum(window))
    score, js = psi(base, window), js_distance(base, window)
    result = {
        "predictions": total,
        "psi": _round(score),
        "js_distance": _round(js),
        "unseen_fraction": _round(window[-1] / total),
        "distribution": {
            "baseline": {label: _round(c / base_total) for label, c in zip(known, base)} if base_total else {},
            "window": {label: _round(c / total) for label, c in zip(known, window)},
        },
    }
    result["drifted"] = bool(result["psi"] is not None and result["psi"] > thresholds["psi"])
    return result

