"""The drift report: its JSON (the same inputs give the same bytes) and a self-contained HTML page."""

from __future__ import annotations

import argparse
import html
import json
from typing import Any, Dict, List, Optional

import numpy as np

from stepkit import format_time

from .capture import Capture
from .scores import categorical_drift, numeric_drift, prediction_drift

REPORT_VERSION = 1


def build_report(args: argparse.Namespace, baseline: dict, capture: Capture, skipped_folders: int,
                 baseline_uri: Optional[str] = None, s3_capture: Optional[dict] = None) -> dict:
    thresholds = {"psi": args.psi_threshold, "ks": args.ks_threshold}
    malformed = int(sum(capture.malformed.values()))
    has_data = capture.rows > 0 or capture.predictions > 0
    features: Dict[str, dict] = {}
    if has_data:
        for name, numeric in zip(capture.features, capture.numeric):
            profile = baseline["features"][name]
            if numeric:
                raw = np.frombuffer(capture.values[name], dtype=np.float64) if len(capture.values[name]) else np.zeros(0)
                features[name] = numeric_drift(profile, raw, thresholds)
            else:
                features[name] = categorical_drift(profile, capture.levels[name], capture.missing[name], thresholds)
    drifted = [name for name in capture.features if features.get(name, {}).get("drifted")]
    predictions = prediction_drift(baseline["target"], capture.labels, thresholds) if has_data else None
    if has_data:
        message = (f"{len(drifted)} of {len(capture.features)} features drifted"
                   + (f" ({', '.join(drifted)})" if drifted else "")
                   + ("; predictions drifted" if predictions and predictions["drifted"] else ""))
    else:
        message = "no capture data in the window" + (f" ({malformed} malformed record(s))" if malformed else "")
    return {
        "report_version": REPORT_VERSION,
        "status": "ok" if has_data else "no_capture_data",
        "message": message,
        "endpoint_name": args.endpoint_name,
        "window": {"start": format_time(args.window_start), "end": format_time(args.window_end)},
        "thresholds": thresholds,
        "baseline": {"row_count": baseline.get("row_count"), "target_column": baseline["target"].get("column"),
                     "features": len(capture.features), "s3_uri": baseline_uri,
                     "model_package_arn": getattr(args, "model_package_arn", None)},
        "rows_analysed": capture.rows,
        "predictions_analysed": capture.predictions,
        "malformed_records": malformed,
        "capture": {
            "source": "s3" if s3_capture is not None else "directory",
            "s3": s3_capture,
            "files_read": capture.files,
            "bytes_read": capture.bytes,
            "date_folders_skipped": skipped_folders,
            "lines": capture.lines,
            "records_in_window": capture.in_window,
            "records_outside_window": capture.outside_window,
            "malformed": dict(capture.malformed),
            "input_encodings": dict(capture.encodings),
        },
        "features": features,
        "drifted_features": drifted,
        "drifted_count": len(drifted),
        "prediction_drift": predictions,
    }


def report_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#1b1b1b}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td{background:#fde2e1}.status-ok{color:#1a7f37}.status-drift{color:#b42318;font-weight:bold}
.note{color:#555;font-size:.9em;max-width:60em}
""".strip()


def _e(value: Any) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return html.escape(f"{value:.4f}")
    return html.escape(str(value), quote=True)


def _pct(value: Optional[float]) -> str:
    return "&ndash;" if value is None else html.escape(f"{100.0 * value:.1f}%")


def report_html(report: dict) -> str:
    """A self-contained page (inline CSS, no scripts) with every value HTML-escaped."""
    out: List[str] = []
    add = out.append
    title = "Drift report" + (f": {report['endpoint_name']}" if report["endpoint_name"] else "")
    add(f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
        f"<style>\n{_CSS}\n</style>\n</head>\n<body>\n<h1>{_e(title)}</h1>\n")
    window = report["window"]
    drift_class = "status-drift" if report["drifted_count"] or (report["prediction_drift"] or {}).get("drifted") else "status-ok"
    summary = [
        ("Endpoint", _e(report["endpoint_name"])),
        ("Window (UTC)", f"{_e(window['start'])} &ndash; {_e(window['end'])} (end excluded)"),
        ("Result", f'<span class="{drift_class}">{_e(report["message"])}</span>'),
        ("Rows analysed", _e(report["rows_analysed"])),
        ("Predictions analysed", _e(report["predictions_analysed"])),
        ("Malformed records", _e(report["malformed_records"])),
        ("Thresholds", f"PSI &gt; {_e(report['thresholds']['psi'])}, KS distance &gt; {_e(report['thresholds']['ks'])}"),
    ]
    add('<table class="summary">\n')
    for label, cell in summary:
        add(f"<tr><th>{_e(label)}</th><td>{cell}</td></tr>\n")
    add("</table>\n")
    if report["status"] == "no_capture_data":
        add("<p><strong>No capture data in the window:</strong> no request rows or predictions could be analysed, "
            "so no drift scores were computed.</p>\n")
    if report["features"]:
        add("<h2>Features</h2>\n<table>\n<tr><th>Feature</th><th>Type</th><th>Rows</th><th>Missing (baseline &rarr; window)</th>"
            "<th>PSI</th><th>KS distance</th><th>Wasserstein (std)</th><th>JS distance</th><th>Unseen levels</th>"
            "<th>Drifted</th></tr>\n")
        order = sorted(report["features"].items(), key=lambda kv: (not kv[1]["drifted"], -(kv[1]["psi"] or 0.0), kv[0]))
        for name, f in order:
            missing = f"{_pct(f['missing']['baseline'])} &rarr; {_pct(f['missing']['window'])}"
            drifted = f"yes ({_e(', '.join(f['drift_reasons']))})" if f["drifted"] else "no"
            row_class = ' class="drifted"' if f["drifted"] else ""
            add(f'<tr{row_class}><td>{_e(name)}</td><td>{_e(f["type"])}</td>'
                f'<td class="num">{_e(f["rows"])}</td><td>{missing}</td><td class="num">{_e(f["psi"])}</td>'
                f'<td class="num">{_e(f.get("ks_distance"))}</td><td class="num">{_e(f.get("wasserstein_std"))}</td>'
                f'<td class="num">{_e(f.get("js_distance"))}</td><td class="num">{_pct(f.get("unseen_fraction"))}</td>'
                f"<td>{drifted}</td></tr>\n")
        add("</table>\n")
    prediction = report["prediction_drift"]
    if prediction:
        add(f"<h2>Predictions</h2>\n<p>{_e(prediction['predictions'])} predictions; PSI {_e(prediction['psi'])}, "
            f"JS distance {_e(prediction['js_distance'])}, unseen labels {_pct(prediction['unseen_fraction'])}: "
            f"<strong>{'drifted' if prediction['drifted'] else 'no drift'}</strong>.</p>\n"
            "<table>\n<tr><th>Label</th><th>Training share</th><th>Window share</th></tr>\n")
        for label, share in prediction["distribution"]["window"].items():
            add(f"<tr><td>{_e(label)}</td><td class=\"num\">{_pct(prediction['distribution']['baseline'].get(label))}</td>"
                f'<td class="num">{_pct(share)}</td></tr>\n')
        add("</table>\n")
    elif report["status"] == "ok":
        add("<h2>Predictions</h2>\n<p>No predictions were captured in the window.</p>\n")
    capture = report["capture"]
    add(f"<h2>Capture</h2>\n<p>{_e(capture['files_read'])} file(s) ({_e(capture['bytes_read'])} bytes), "
        f"{_e(capture['lines'])} line(s) read; "
        f"{_e(capture['records_in_window'])} record(s) in the window, {_e(capture['records_outside_window'])} outside; ")
    s3 = capture.get("s3")
    if s3:
        add(f"read from {_e(s3['uri'])}: variant(s) {_e(', '.join(s3['variants']) or 'none')}, "
            f"{_e(s3['hours']['count'])} hour folder(s) each from {_e(s3['hours']['first'])}, "
            f"{_e(s3['list_requests'])} list request(s).</p>\n")
    else:
        add(f"{_e(capture['date_folders_skipped'])} date folder(s) outside the window skipped.</p>\n")
    if capture["malformed"]:
        add("<table>\n<tr><th>Malformed (skipped)</th><th>Records</th></tr>\n")
        for reason, count in sorted(capture["malformed"].items()):
            add(f'<tr><td>{_e(reason)}</td><td class="num">{_e(count)}</td></tr>\n')
        add("</table>\n")
    add('<p class="note">PSI over the training histogram bins (first and last open-ended) plus a missing bin, or over '
        "the training levels plus &ldquo;other&rdquo; and missing; KS distance at the points where the training CDF "
        "is known (min, max, bin edges, quantiles); Wasserstein-1 distance from the interpolated training quantile "
        "function, in training standard deviations; Jensen-Shannon distance base 2.</p>\n</body>\n</html>\n")
    return "".join(out)
