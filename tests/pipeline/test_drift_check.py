"""DriftCheck: capture decoding, drift scores, window filtering, reports and CloudWatch metrics.

The capture files are written in SageMaker's data-capture layout from rows of the bundled sample;
the baseline is the one the real preprocess.py writes for the sample (``sample_output``).
Metrics go to a botocore Stubber on a CloudWatch client that never leaves the process.
"""

from __future__ import annotations

import ast
import base64
import copy
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import botocore.session
import numpy as np
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber
from scipy import stats

import stepkit
from pipeline_code.steps import drift_check, inference, preprocess
from pipeline_code.steps.drift_check import metrics, scores

from .conftest import ROOT, SAMPLE, SAMPLE_TARGET, make_frame, preprocess_frame, run_main, subprocess_env

STEPS = ROOT / "pipeline_code" / "steps"
# What the drift check's code tarball holds: the package and the helper beside it.
CODE = [STEPS / "drift_check", STEPS / "stepkit.py"]
CODE_FILES = sorted(STEPS.joinpath("drift_check").glob("*.py")) + [STEPS / "stepkit.py"]
ENDPOINT = "churn-endpoint"
VARIANT = "AllTraffic"
NAMESPACE = "MlPlatform/Drift"
START = datetime(2026, 11, 27, 10, tzinfo=timezone.utc)
END = START + timedelta(hours=1)
NOW = END + timedelta(minutes=5)
WINDOW = ["--window-start", "2026-11-27T10:00:00Z", "--window-end", "2026-11-27T11:00:00Z"]
REQUEST_FORMATS = ("csv", "json-rows", "json-objects", "base64-csv", "base64-json")
RESPONSE_FORMATS = ("json", "csv", "base64-json")


# ----------------------------------------------------------------------------- capture builders


@pytest.fixture(scope="module")
def sample():
    """The sample as the clients send it: text cells ("" = missing), and its labels."""
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    return frame.drop(columns=SAMPLE_TARGET), frame[SAMPLE_TARGET]


@pytest.fixture(scope="module")
def baseline_path(sample_output) -> Path:
    return sample_output / "baseline" / "baseline.json"


@pytest.fixture(scope="module")
def numeric_features(baseline_path) -> List[str]:
    features = json.loads(baseline_path.read_text())["features"]
    return [name for name, profile in features.items() if profile["type"] == "numeric"]


def _json_rows(rows: pd.DataFrame, numeric: Sequence[str]) -> List[list]:
    """Rows as a JSON client sends them: numbers as numbers, missing cells as null."""
    out = []
    for record in rows.to_dict("records"):
        out.append([None if v == "" else (float(v) if k in numeric else v) for k, v in record.items()])
    return out


def request_block(rows: pd.DataFrame, fmt: str, numeric: Sequence[str]) -> dict:
    """captureData.endpointInput as SageMaker records it."""
    if fmt.endswith("csv"):
        text, content_type = rows.to_csv(header=False, index=False, lineterminator="\n"), "text/csv"
    else:
        values = _json_rows(rows, numeric)
        if fmt.endswith("objects"):
            values = [{k: v for k, v in zip(rows.columns, r) if v is not None} for r in values]
        text, content_type = json.dumps({"instances": values}), "application/json"
    if fmt.startswith("base64"):
        return {"observedContentType": content_type, "mode": "INPUT",
                "data": base64.b64encode(text.encode("utf-8")).decode("ascii"), "encoding": "BASE64"}
    return {"observedContentType": content_type, "mode": "INPUT", "data": text,
            "encoding": "CSV" if content_type == "text/csv" else "JSON"}


def response_block(labels: Sequence[str], fmt: str) -> dict:
    """captureData.endpointOutput for inference.py's JSON or CSV response."""
    if fmt == "csv":
        return {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "\n".join(labels) + "\n", "encoding": "CSV"}
    text = json.dumps({"predictions": list(labels), "classes": ["high", "low", "medium"]})
    if fmt.startswith("base64"):
        return {"observedContentType": "application/json", "mode": "OUTPUT",
                "data": base64.b64encode(text.encode()).decode(), "encoding": "BASE64"}
    return {"observedContentType": "application/json", "mode": "OUTPUT", "data": text, "encoding": "JSON"}


def record(at: datetime, request: Optional[dict], response: Optional[dict] = None, time_text: Optional[str] = None) -> str:
    """One data-capture line."""
    capture = {}
    if request is not None:
        capture["endpointInput"] = request
    if response is not None:
        capture["endpointOutput"] = response
    event_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{at.isoformat()}-{json.dumps(capture, sort_keys=True)}"))
    return json.dumps({"captureData": capture,
                       "eventMetadata": {"eventId": event_id, "inferenceTime": time_text or stepkit.format_time(at)},
                       "eventVersion": "0"})


def write_capture(capture_dir: Path, lines: Iterable[Tuple[datetime, str]], folder_shift: timedelta = timedelta()) -> None:
    """Lines into <endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm-uuid>.jsonl, one file per hour folder."""
    by_hour: Dict[datetime, List[str]] = {}
    for at, line in lines:
        hour = (at + folder_shift).replace(minute=0, second=0, microsecond=0)
        by_hour.setdefault(hour, []).append(line)
    for hour, hour_lines in by_hour.items():
        folder = capture_dir / ENDPOINT / VARIANT / hour.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{hour:%M-%S}-000-{uuid.uuid5(uuid.NAMESPACE_OID, str(hour) + str(len(list(folder.iterdir()))))}.jsonl"
        (folder / name).write_text("\n".join(hour_lines) + "\n", encoding="utf-8")


def traffic(features: pd.DataFrame, labels: Sequence[str], numeric: Sequence[str], start: datetime = START,
            formats: Sequence[str] = REQUEST_FORMATS) -> List[Tuple[datetime, str]]:
    """Requests of 1, 3, 7 or 20 rows spread over the hour, cycling through request and response formats."""
    lines, i, n = [], 0, 0
    sizes = (1, 3, 7, 20)
    total = len(features)
    while i < total:
        size = sizes[n % len(sizes)]
        rows = features.iloc[i:i + size]
        at = start + timedelta(seconds=int(3599 * i / total), milliseconds=n % 1000)
        lines.append((at, record(at, request_block(rows, formats[n % len(formats)], numeric),
                                 response_block(list(labels[i:i + size]), RESPONSE_FORMATS[n % len(RESPONSE_FORMATS)]))))
        i, n = i + size, n + 1
    return lines


def sampled(sample, rows: int = 600, seed: int = 7) -> Tuple[pd.DataFrame, List[str]]:
    features, labels = sample
    index = np.random.RandomState(seed).choice(len(features), rows, replace=False)
    return features.iloc[index].reset_index(drop=True), labels.iloc[index].tolist()


# --------------------------------------------------------------------------------- CloudWatch stub


class CloudWatchStub:
    """A real botocore CloudWatch client with a Stubber: parameters are validated, nothing is sent."""

    def __init__(self, calls: int = 1, expected: Optional[List[dict]] = None):
        self.client = botocore.session.get_session().create_client(
            "cloudwatch", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        self.stubber = Stubber(self.client)
        self.params: List[dict] = []
        self.client.meta.events.register("provide-client-params.cloudwatch.PutMetricData",
                                         lambda params, **_: self.params.append(copy.deepcopy(params)))
        for _ in range(calls):
            self.stubber.add_response("put_metric_data", {},
                                      {"Namespace": NAMESPACE, "MetricData": ANY if expected is None else expected})
        self.stubber.activate()

    def done(self) -> None:
        self.stubber.assert_no_pending_responses()

    @property
    def data(self) -> List[dict]:
        return [datum for call in self.params for datum in call["MetricData"]]

    def values(self) -> Dict[Tuple[str, Optional[str]], float]:
        """(metric name, Feature dimension or None) -> value; checks the EndpointName dimension of each."""
        out = {}
        for datum in self.data:
            dims = {d["Name"]: d["Value"] for d in datum["Dimensions"]}
            assert dims["EndpointName"] == ENDPOINT
            assert set(dims) <= {"EndpointName", "Feature"}
            key = (datum["MetricName"], dims.get("Feature"))
            assert key not in out, key
            out[key] = datum["Value"]
        return out


def run_check(capture_dir: Path, baseline: Path, output_dir: Path, *extra: str, stub: Optional[CloudWatchStub] = None,
              now: datetime = NOW, window: Sequence[str] = WINDOW):
    argv = ["--capture-dir", str(capture_dir), "--baseline", str(baseline), "--output-dir", str(output_dir), *window, *extra]
    if stub is None:
        argv.append("--no-publish-metrics")
    else:
        argv += ["--endpoint-name", ENDPOINT]
    result = run_main(drift_check.main, argv, cloudwatch=stub.client if stub else None, now=now)
    report = None
    if (output_dir / "drift-report.json").is_file():
        report = json.loads((output_dir / "drift-report.json").read_text(encoding="utf-8"))
    return result, report


# ------------------------------------------------------------------------------------ the 4 cases


def test_no_drift_on_traffic_sampled_from_the_same_data(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample)
    write_capture(tmp_path / "capture", traffic(features, labels, numeric_features))
    stub = CloudWatchStub()
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out", stub=stub)
    assert result.code == 0, result.err
    stub.done()

    assert report["status"] == "ok" and report["window"] == {"start": "2026-11-27T10:00:00Z", "end": "2026-11-27T11:00:00Z"}
    assert report["rows_analysed"] == 600 and report["predictions_analysed"] == 600
    assert report["malformed_records"] == 0 and report["capture"]["malformed"] == {}
    assert set(report["capture"]["input_encodings"]) == {"CSV", "JSON", "BASE64"}
    assert report["drifted_count"] == 0 and report["drifted_features"] == []
    assert report["thresholds"] == {"psi": 0.2, "ks": 0.1}
    assert set(report["features"]) == set(sample[0].columns)
    for name, scores in report["features"].items():
        assert scores["psi"] < 0.1 and not scores["drifted"], (name, scores)
        assert scores["rows"] == 600
        assert abs(scores["missing"]["change"]) < 0.03, name
        if scores["type"] == "numeric":
            assert scores["ks_distance"] < 0.1 and scores["wasserstein_std"] < 0.2, (name, scores)
            assert sum(scores["bins"]["window"]) == scores["values"]
        else:
            assert scores["js_distance"] < 0.1 and scores["unseen_fraction"] == 0.0, (name, scores)
    assert report["prediction_drift"]["predictions"] == 600
    assert report["prediction_drift"]["psi"] < 0.05 and not report["prediction_drift"]["drifted"]

    values = stub.values()
    assert values.pop(("NoCaptureData", None)) == 0.0
    assert values.pop(("RowsAnalysed", None)) == 600.0
    assert values.pop(("MalformedRecords", None)) == 0.0
    assert values.pop(("DriftedFeatures", None)) == 0.0
    assert values.pop(("PredictionDriftScore", None)) == report["prediction_drift"]["psi"]
    assert values == {("FeatureDriftScore", name): scores["psi"] for name, scores in report["features"].items()}
    assert {d["Timestamp"] for d in stub.data} == {END}
    units = {d["MetricName"]: d["Unit"] for d in stub.data}
    assert units == {"NoCaptureData": "Count", "RowsAnalysed": "Count", "MalformedRecords": "Count",
                     "DriftedFeatures": "Count", "PredictionDriftScore": "None", "FeatureDriftScore": "None"}


def _shift(features: pd.DataFrame, name: str, baseline: dict) -> pd.DataFrame:
    drifted = features.copy()
    profile = baseline["features"][name]
    if profile["type"] == "numeric":  # + 5 standard deviations
        values = pd.to_numeric(drifted[name].replace("", np.nan))
        drifted[name] = (values + 5 * profile["std"]).map(lambda v: "" if np.isnan(v) else f"{v:.2f}")
    else:  # the most and the least frequent levels swap
        levels = list(profile["counts"])
        swap = {levels[0]: levels[-1], levels[-1]: levels[0]}
        drifted[name] = drifted[name].map(lambda v: swap.get(v, v))
    return drifted


@pytest.mark.parametrize("feature", ["monthly_spend", "plan"])
def test_strong_drift_on_one_feature_flags_exactly_that_feature(sample, baseline_path, numeric_features, tmp_path, feature):
    baseline = json.loads(baseline_path.read_text())
    features, labels = sampled(sample)
    write_capture(tmp_path / "capture", traffic(_shift(features, feature, baseline), labels, numeric_features))
    stub = CloudWatchStub()
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out", stub=stub)
    assert result.code == 0, result.err
    stub.done()

    assert report["drifted_features"] == [feature] and report["drifted_count"] == 1
    scores = report["features"][feature]
    assert scores["drifted"] and scores["psi"] > 0.5
    if feature in numeric_features:
        assert scores["drift_reasons"] == ["psi", "ks"]
        assert scores["ks_distance"] > 0.9 and scores["above_max_fraction"] > 0.5
        assert scores["wasserstein_std"] == pytest.approx(5.0, abs=0.3)
        shift = scores["mean"]["window"] - scores["mean"]["baseline"]
        assert shift == pytest.approx(5 * baseline["features"][feature]["std"], rel=0.05)
    else:
        assert scores["drift_reasons"] == ["psi"] and scores["js_distance"] > 0.2
        assert {c["level"] for c in scores["top_level_changes"][:2]} == {"basic", "premium"}
    assert not report["prediction_drift"]["drifted"]
    assert f"1 of 10 features drifted ({feature})" in report["message"]

    values = stub.values()
    assert values[("DriftedFeatures", None)] == 1.0
    assert values[("FeatureDriftScore", feature)] == scores["psi"] > 0.2
    assert all(v < 0.2 for (metric, name), v in values.items() if metric == "FeatureDriftScore" and name != feature)
    html_text = (tmp_path / "out" / "drift-report.html").read_text()
    assert '<tr class="drifted"><td>' + feature + "</td>" in html_text


@pytest.mark.parametrize("case", ["outside-window", "empty-directory"])
def test_empty_window_reports_no_capture_data(sample, baseline_path, numeric_features, tmp_path, case):
    capture_dir = tmp_path / "capture"
    capture_dir.mkdir()
    if case == "outside-window":  # traffic the hour before and the hour after, none in the window
        features, labels = sampled(sample, rows=60)
        write_capture(capture_dir, traffic(features, labels, numeric_features, start=START - timedelta(hours=1))
                      + traffic(features, labels, numeric_features, start=END))
    expected = [
        {"MetricName": name, "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}], "Timestamp": END,
         "Value": value, "Unit": "Count"}
        for name, value in (("NoCaptureData", 1.0), ("RowsAnalysed", 0.0), ("MalformedRecords", 0.0))
    ]
    stub = CloudWatchStub(expected=expected)
    result, report = run_check(capture_dir, baseline_path, tmp_path / "out", stub=stub)
    assert result.code == 0, result.err
    stub.done()
    assert report["status"] == "no_capture_data" and report["message"] == "no capture data in the window"
    assert report["rows_analysed"] == 0 and report["features"] == {} and report["prediction_drift"] is None
    assert report["drifted_count"] == 0
    if case == "outside-window":
        assert report["capture"]["records_outside_window"] == report["capture"]["lines"] > 0
        assert report["capture"]["records_in_window"] == 0
    assert "No capture data in the window" in (tmp_path / "out" / "drift-report.html").read_text()
    assert "no capture data in the window" in result.out


def test_malformed_lines_and_payloads_are_counted_and_skipped(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample, rows=200)
    good = traffic(features, labels, numeric_features)
    rows = features.iloc[:4]
    at = START + timedelta(minutes=30)
    csv_block = request_block(rows, "csv", numeric_features)
    short = rows.iloc[:, :-1].to_csv(header=False, index=False, lineterminator="\n")
    bad_number = rows.copy()
    bad_number["income"] = "lots"
    bad = [
        ("invalid_json_line", "{this is not json"),
        ("invalid_json_line", record(at, csv_block)[:80]),  # a truncated line
        ("missing_fields", json.dumps({"eventMetadata": {"inferenceTime": "2026-11-27T10:30:00Z"}, "eventVersion": "0"})),
        ("missing_fields", record(at, None, None)),
        ("invalid_inference_time", record(at, csv_block, time_text="yesterday")),
        ("undecodable_base64", record(at, {**csv_block, "encoding": "BASE64", "data": "@@not base64@@"})),
        ("undecodable_base64", record(at, {**csv_block, "encoding": "BASE64",
                                           "data": base64.b64encode(b"\xff\xfe\x00bad").decode()})),
        ("invalid_json_payload", record(at, {"observedContentType": "application/json", "mode": "INPUT",
                                             "data": '{"instances": [[1, 2', "encoding": "JSON"})),
        ("wrong_column_count", record(at, {**csv_block, "data": short})),
        ("wrong_column_count", record(at, request_block(rows.iloc[:, :-1], "json-rows", numeric_features))),
        ("unknown_feature", record(at, {"observedContentType": "application/json", "mode": "INPUT",
                                        "data": json.dumps({"instances": [{"age": 40, "shoe_size": 44}]}), "encoding": "JSON"})),
        ("non_numeric_value", record(at, request_block(bad_number, "csv", numeric_features))),
        ("non_numeric_value", record(at, {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
                                          "data": json.dumps({"instances": [{"age": 10 ** 400}]})})),
        ("invalid_json_line", "[" * 100_000),  # nesting deeper than the JSON parser recurses
        ("unknown_encoding", record(at, {**csv_block, "encoding": "UTF-16"})),
        ("output_no_predictions", record(at, csv_block, {"observedContentType": "application/json", "mode": "OUTPUT",
                                                         "data": json.dumps({"error": "boom"}), "encoding": "JSON"})),
    ]
    lines = good + [(at, line) for _, line in bad]
    write_capture(tmp_path / "capture", lines)
    stub = CloudWatchStub()
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out", stub=stub)
    assert result.code == 0, result.err
    stub.done()

    expected: Dict[str, int] = {}
    for reason, _ in bad:
        expected[reason] = expected.get(reason, 0) + 1
    assert report["capture"]["malformed"] == expected
    assert report["malformed_records"] == len(bad) == 16
    # The good traffic, plus the rows of the record whose response alone was malformed.
    assert report["rows_analysed"] == 200 + 4 and report["predictions_analysed"] == 200
    assert report["drifted_count"] == 0
    values = stub.values()
    assert values[("MalformedRecords", None)] == 16.0 and values[("RowsAnalysed", None)] == 204.0
    assert values[("NoCaptureData", None)] == 0.0


# ------------------------------------------------------------------------------ decoding, windows


def test_every_encoding_decodes_to_the_same_rows(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample, rows=120)
    reports = {}
    for fmt in REQUEST_FORMATS:
        write_capture(tmp_path / fmt, traffic(features, labels, numeric_features, formats=[fmt]))
        result, reports[fmt] = run_check(tmp_path / fmt, baseline_path, tmp_path / f"out-{fmt}")
        assert result.code == 0, result.err
        assert reports[fmt]["rows_analysed"] == 120 and reports[fmt]["malformed_records"] == 0, fmt
    encodings = {fmt: r["capture"]["input_encodings"] for fmt, r in reports.items()}
    assert encodings["csv"] == {"CSV": 16} and encodings["json-rows"] == {"JSON": 16}  # 1+3+7+20 rows each 31
    assert encodings["base64-csv"] == encodings["base64-json"] == {"BASE64": 16}
    for fmt in REQUEST_FORMATS[1:]:
        assert reports[fmt]["features"] == reports["csv"]["features"], fmt
        assert reports[fmt]["prediction_drift"] == reports["csv"]["prediction_drift"], fmt


def test_payload_variants_that_inference_accepts(sample, baseline_path, numeric_features, tmp_path):
    features, _ = sample
    rows = features.iloc[:3]
    names = list(features.columns)
    one = _json_rows(rows.iloc[:1], numeric_features)[0]
    at = START + timedelta(minutes=1)
    requests = [
        {"observedContentType": "text/csv; charset=utf-8", "mode": "INPUT", "encoding": "CSV",
         "data": rows.to_csv(index=False, lineterminator="\r\n")},  # a header row, CRLF: 3 rows
        {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
         "data": json.dumps(_json_rows(rows, numeric_features))},  # a bare list of rows: 3 rows
        {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON", "data": json.dumps(one)},  # one bare row
        {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
         "data": json.dumps(dict(zip(names, one)))},  # one object keyed by feature name
        {"observedContentType": "application/octet-stream", "mode": "INPUT", "encoding": "BASE64",
         "data": base64.b64encode(rows.to_csv(header=False, index=False).encode()).decode()},  # sniffed as CSV: 3 rows
    ]
    write_capture(tmp_path / "capture", [(at, record(at, r, response_block(["low"], "csv"))) for r in requests])
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out")
    assert result.code == 0, result.err
    assert report["malformed_records"] == 0 and report["rows_analysed"] == 3 + 3 + 1 + 1 + 3
    assert report["predictions_analysed"] == 5


@pytest.mark.parametrize("mode", ["input-only", "output-only"])
def test_capture_of_requests_only_or_responses_only(sample, baseline_path, numeric_features, tmp_path, mode):
    features, labels = sampled(sample, rows=100)
    lines = []
    for start in range(0, 100, 10):
        at = START + timedelta(minutes=start // 10)
        request = request_block(features.iloc[start:start + 10], "csv", numeric_features) if mode == "input-only" else None
        response = response_block(labels[start:start + 10], "json") if mode == "output-only" else None
        lines.append((at, record(at, request, response)))
    write_capture(tmp_path / "capture", lines)
    stub = CloudWatchStub()
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out", stub=stub)
    assert result.code == 0, result.err
    assert report["status"] == "ok" and report["malformed_records"] == 0
    names = {name for name, _ in stub.values()}
    page = (tmp_path / "out" / "drift-report.html").read_text()
    if mode == "input-only":
        assert report["rows_analysed"] == 100 and report["prediction_drift"] is None
        assert "No predictions were captured" in page
        assert "PredictionDriftScore" not in names and "DriftedFeatures" in names
    else:
        assert report["rows_analysed"] == 0 and report["predictions_analysed"] == 100
        assert all(f["psi"] is None and not f["drifted"] for f in report["features"].values())
        assert names == {"NoCaptureData", "RowsAnalysed", "MalformedRecords", "PredictionDriftScore"}


def test_window_is_start_inclusive_end_exclusive_and_far_folders_are_not_read(sample, baseline_path, numeric_features,
                                                                               tmp_path):
    features, labels = sample
    block = request_block(features.iloc[:1], "csv", numeric_features)
    out = response_block([labels.iloc[0]], "json")
    capture_dir = tmp_path / "capture"
    counted = [START, START + timedelta(minutes=59, seconds=59, microseconds=999000)]
    lines = [(at, record(at, block, out)) for at in counted]
    lines += [(at, record(at, block, out)) for at in (START - timedelta(microseconds=1000), END)]
    # Other spellings of the same instant: fractions and offsets.
    lines.append((START, record(START, block, out, time_text="2026-11-27T10:30:00.123456Z")))
    lines.append((START, record(START, block, out, time_text="2026-11-27T11:45:00+01:00")))  # 10:45 UTC
    lines.append((START, record(START, block, out, time_text="2026-11-27T12:00:00+01:00")))  # 11:00 UTC: excluded
    write_capture(capture_dir, lines)
    # A file flushed into the next hour's folder still counts; a folder hours away is never opened.
    late = START + timedelta(minutes=58)
    write_capture(capture_dir, [(late, record(late, block, out))], folder_shift=timedelta(hours=1))
    far = capture_dir / ENDPOINT / VARIANT / "2026" / "11" / "27" / "06"
    far.mkdir(parents=True)
    (far / "00-00-000-x.jsonl").write_text("garbage that would count as malformed\n")
    (capture_dir / ENDPOINT / VARIANT / "2026" / "10" / "01" / "10").mkdir(parents=True)

    result, report = run_check(capture_dir, baseline_path, tmp_path / "out")
    assert result.code == 0, result.err
    assert report["rows_analysed"] == 2 + 2 + 1
    assert report["capture"]["records_in_window"] == 5 and report["capture"]["records_outside_window"] == 3
    assert report["malformed_records"] == 0
    assert report["capture"]["date_folders_skipped"] == 2  # 2026/11/27/06 and the month 2026/10


def test_default_window_is_the_hour_before_now(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample, rows=40)
    now = datetime(2026, 11, 27, 10, 40, 12, 345678, tzinfo=timezone.utc)
    write_capture(tmp_path / "capture", traffic(features, labels, numeric_features, start=START))
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out", now=now, window=[])
    assert result.code == 0, result.err
    assert report["window"] == {"start": "2026-11-27T09:40:12Z", "end": "2026-11-27T10:40:12Z"}
    assert 0 < report["rows_analysed"] < 40


# ----------------------------------------------------------------------- scores vs exact statistics


def test_profile_approximations_agree_with_exact_statistics_on_training_rows(baseline_path):
    """KS and Wasserstein from the profile against scipy on the real training rows of the sample."""
    baseline = json.loads(baseline_path.read_text())
    raw = pd.read_csv(SAMPLE)
    codes = pd.factorize(raw[SAMPLE_TARGET])[0]
    splits = preprocess.split_indices(codes, 0.15, 0.15, 42)
    train, test = raw.iloc[splits["train"]], raw.iloc[splits["test"]]
    for name, profile in baseline["features"].items():
        if profile["type"] != "numeric":
            continue
        train_values = train[name].dropna().to_numpy(np.float32).astype(np.float64)
        for shift in (0.0, 0.5 * profile["std"]):
            window = np.sort(test[name].dropna().to_numpy(np.float32).astype(np.float64) + shift)
            exact_ks = stats.ks_2samp(train_values, window).statistic
            approx_ks = scores.ks_distance(profile, window)
            assert approx_ks <= exact_ks + 0.01, (name, shift)  # a lower bound, up to quantile interpolation
            assert exact_ks - approx_ks < 0.06, (name, shift)
            exact_w = stats.wasserstein_distance(train_values, window) / profile["std"]
            approx_w = scores.wasserstein(profile, window) / profile["std"]
            assert approx_w == pytest.approx(exact_w, abs=0.1), (name, shift)
        # The training values against their own profile: exact at the edges, quantiles within 1/n.
        own = np.sort(train_values)
        assert scores.ks_distance(profile, own) <= 1.0 / len(own) + 1e-9, name


def test_psi_and_js_distance():
    assert scores.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-12)
    assert scores.js_distance([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-7)
    assert scores.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    eps = scores.PSI_EPSILON
    ps, qs = (p + eps) / (1 + 3 * eps), (q + eps) / (1 + 3 * eps)
    assert scores.psi(p * 100, q * 100) == pytest.approx(np.sum((qs - ps) * np.log(qs / ps)))
    assert scores.psi([0, 0], [1, 2]) is None


def test_prediction_drift(sample, baseline_path, numeric_features, tmp_path):
    features, _ = sampled(sample, rows=300)
    write_capture(tmp_path / "capture", traffic(features, ["high"] * 300, numeric_features))
    stub = CloudWatchStub()
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out", stub=stub)
    assert result.code == 0, result.err
    drift = report["prediction_drift"]
    assert drift["drifted"] and drift["psi"] > 1.0
    assert drift["distribution"]["window"] == {"high": 1.0, "low": 0.0, "medium": 0.0}
    assert report["drifted_count"] == 0 and "predictions drifted" in report["message"]
    assert stub.values()[("PredictionDriftScore", None)] == drift["psi"]


def test_real_endpoint_responses(local_pipeline, sample, baseline_path, numeric_features, tmp_path):
    """Responses made by inference.py with the local run's model, in both response formats."""
    assert local_pipeline.code == 0, local_pipeline.out + local_pipeline.err
    bundle = inference.model_fn(str(local_pipeline.model_dir))
    features, _ = sampled(sample, rows=300)
    lines = []
    for n, start in enumerate(range(0, 300, 30)):
        rows = features.iloc[start:start + 30]
        fmt = REQUEST_FORMATS[n % len(REQUEST_FORMATS)]
        request = request_block(rows, fmt, numeric_features)
        body = base64.b64decode(request["data"]) if request["encoding"] == "BASE64" else request["data"]
        accept = ("application/json", "text/csv")[n % 2]
        response, content_type = inference.output_fn(
            inference.predict_fn(inference.input_fn(body, request["observedContentType"]), bundle), accept)
        at = START + timedelta(minutes=n)
        lines.append((at, record(at, request, {"observedContentType": content_type, "mode": "OUTPUT",
                                               "data": response, "encoding": "JSON" if n % 2 == 0 else "CSV"})))
    write_capture(tmp_path / "capture", lines)
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out")
    assert result.code == 0, result.err
    assert report["rows_analysed"] == report["predictions_analysed"] == 300
    assert report["malformed_records"] == 0 and report["drifted_count"] == 0
    assert not report["prediction_drift"]["drifted"] and report["prediction_drift"]["unseen_fraction"] == 0.0


# ------------------------------------------------------------------------- reports and metrics


def test_reports_are_deterministic_and_html_is_escaped(tmp_path):
    frame = make_frame(rows=400).rename(columns={"color": 'col<or>&"x"'})
    frame['col<or>&"x"'] = frame['col<or>&"x"'].replace({"red": "<b>red</b>"})
    baseline = preprocess_frame(frame, tmp_path / "data") / "baseline" / "baseline.json"
    features = frame.drop(columns="label").astype(str).replace({"nan": "", "None": ""})
    features['col<or>&"x"'] = features['col<or>&"x"'].replace({"<b>red</b>": "<script>alert(1)</script>"})
    write_capture(tmp_path / "capture", traffic(features, frame["label"].tolist(), ["x1", "x2"]))
    outputs = []
    for n in range(2):
        result, report = run_check(tmp_path / "capture", baseline, tmp_path / f"out{n}")
        assert result.code == 0, result.err
        outputs.append(((tmp_path / f"out{n}" / "drift-report.json").read_bytes(),
                        (tmp_path / f"out{n}" / "drift-report.html").read_bytes()))
    assert outputs[0] == outputs[1]
    text = outputs[0][0].decode()
    assert json.loads(text) == report and text == json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert report["drifted_features"] == ['col<or>&"x"']  # "<b>red</b>" vanished, "<script>..." unseen
    assert report["features"]['col<or>&"x"']["unseen_fraction"] > 0.2
    page = outputs[0][1].decode()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "col&lt;or&gt;&amp;&quot;x&quot;" in page and 'col<or>' not in page


def test_metrics_are_batched_within_the_api_limits():
    timestamp = END
    data = [{"MetricName": "FeatureDriftScore", "Timestamp": timestamp, "Value": 0.1, "Unit": "None",
             "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "Feature", "Value": f"f{i}"}]}
            for i in range(2345)]
    stub = CloudWatchStub(calls=3)
    assert metrics.publish_metrics(stub.client, NAMESPACE, data) == 3
    stub.done()
    assert [len(call["MetricData"]) for call in stub.params] == [1000, 1000, 345]
    assert all(len(batch) <= 1000 for batch in metrics.metric_batches(data))
    report = {"status": "ok", "endpoint_name": "e" * 300, "rows_analysed": 1, "malformed_records": 0, "drifted_count": 0,
              "prediction_drift": None, "features": {"x" * 400: {"psi": 0.5}, "y": {"psi": None}}}
    points = metrics.metric_data(report, timestamp)
    assert [p["MetricName"] for p in points] == ["NoCaptureData", "RowsAnalysed", "MalformedRecords", "DriftedFeatures",
                                                 "FeatureDriftScore"]
    assert all(len(d["Value"]) <= 255 for p in points for d in p["Dimensions"])


def test_cloudwatch_error_fails_the_job_after_the_report(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample, rows=20)
    write_capture(tmp_path / "capture", traffic(features, labels, numeric_features))
    stub = CloudWatchStub(calls=0)
    stub.stubber.add_client_error("put_metric_data", service_error_code="AccessDenied", service_message="not allowed",
                                  http_status_code=403)
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out", stub=stub)
    assert result.code == 1
    assert result.err.startswith("ERROR: publishing metrics to CloudWatch failed") and "AccessDenied" in result.err
    assert report["rows_analysed"] == 20


def test_windows_older_than_cloudwatch_accepts_are_not_published(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample, rows=20)
    write_capture(tmp_path / "capture", traffic(features, labels, numeric_features))
    stub = CloudWatchStub(calls=0)  # any call would fail
    result, report = run_check(tmp_path / "capture", baseline_path, tmp_path / "out", stub=stub,
                               now=END + timedelta(days=15))
    assert result.code == 0, result.err
    assert "metrics not published" in result.out and report["rows_analysed"] == 20
    assert stub.params == []


# ---------------------------------------------------------------------------------- bad inputs


def _baseline_variant(baseline_path: Path, tmp_path: Path, case: str) -> Path:
    path = tmp_path / "baseline.json"
    baseline = json.loads(baseline_path.read_text())
    if case == "missing":
        return tmp_path / "nowhere" / "baseline.json"
    if case == "not-json":
        path.write_text("{not json")
    elif case == "format-version":
        baseline["format_version"] = 2
        path.write_text(json.dumps(baseline))
    elif case == "no-features":
        baseline["features"] = {}
        path.write_text(json.dumps(baseline))
    elif case == "bad-histogram":
        baseline["features"]["age"]["histogram"]["counts"].pop()
        path.write_text(json.dumps(baseline))
    return path


@pytest.mark.parametrize("case,needle", [
    ("missing", "does not exist"),
    ("not-json", "is not valid JSON"),
    ("format-version", "format_version 2"),
    ("no-features", "has no features"),
    ("bad-histogram", "feature 'age' has a malformed histogram"),
])
def test_bad_baseline_exits_2_with_one_error_line(baseline_path, tmp_path, case, needle):
    (tmp_path / "capture").mkdir()
    stub = CloudWatchStub(calls=0)
    result, report = run_check(tmp_path / "capture", _baseline_variant(baseline_path, tmp_path, case), tmp_path / "out",
                               stub=stub)
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: baseline file ") and needle in lines[0], result.err
    assert report is None and not (tmp_path / "out").exists()


def test_baseline_directory_is_accepted(sample_output, tmp_path):
    (tmp_path / "capture").mkdir()
    result, report = run_check(tmp_path / "capture", sample_output / "baseline", tmp_path / "out")
    assert result.code == 0, result.err
    assert report["status"] == "no_capture_data" and report["baseline"]["row_count"] == 1049


@pytest.mark.parametrize("argv,needle", [
    (["--publish-metrics"], "--endpoint-name is required"),
    (["--window-start", "2026-11-27T11:00:00Z", "--window-end", "2026-11-27T10:00:00Z", "--no-publish-metrics"],
     "must be before"),
    (["--window-start", "last tuesday", "--no-publish-metrics"], "not an ISO 8601"),
    (["--psi-threshold", "0", "--no-publish-metrics"], "--psi-threshold"),
    (["--endpoint-name", "e", "--metric-namespace", "AWS/SageMaker"], "not a custom namespace"),
])
def test_argument_errors_exit_2(baseline_path, tmp_path, argv, needle):
    result = run_main(drift_check.main, ["--capture-dir", str(tmp_path), "--baseline", str(baseline_path),
                                         "--output-dir", str(tmp_path / "out"), *argv])
    assert result.code == 2 and needle in result.err, result.err


def test_missing_capture_dir_and_missing_region_exit_2(baseline_path, tmp_path, monkeypatch):
    result = run_main(drift_check.main, ["--capture-dir", str(tmp_path / "none"), "--baseline", str(baseline_path),
                                         "--output-dir", str(tmp_path / "out"), "--no-publish-metrics"])
    assert result.code == 2 and result.err.startswith("ERROR: capture directory") and "does not exist" in result.err
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    result = run_main(drift_check.main, ["--capture-dir", str(tmp_path), "--baseline", str(baseline_path),
                                         "--output-dir", str(tmp_path / "out"), "--endpoint-name", ENDPOINT])
    assert result.code == 2 and result.err.startswith("ERROR: no AWS region") and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ container fitness


@pytest.mark.parametrize("module", CODE_FILES, ids=lambda path: path.name)
def test_script_is_python_39_and_self_contained(module):
    source = module.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=module.name, feature_version=(3, 9))
    assert "from __future__ import annotations" in source
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # Relative imports stay inside the package; everything else is the container's or stepkit.
            assert node.level == 0 or (node.level == 1 and module.parent.name == "drift_check"), ast.dump(node)
            if node.level == 0:
                imported.add(node.module.split(".")[0])
    # The scikit-learn processing container's packages; boto3 (botocore) comes with its SageMaker toolkit.
    foreign = imported - {"numpy", "scipy", "boto3", "botocore", "pyarrow", "stepkit"} - set(sys.stdlib_module_names)
    assert not foreign, sorted(foreign)


def test_runs_as_a_standalone_script(sample, baseline_path, numeric_features, tmp_path):
    """As the job runs it: the shipped tarball, unpacked and run by the pipeline's container command."""
    from ml_constructs.step_code import deterministic_tarball
    from pipeline_code.pipeline import tarball_command

    features, labels = sampled(sample, rows=50)
    write_capture(tmp_path / "capture", traffic(features, labels, numeric_features))
    code = tmp_path / "code.tar.gz"
    code.write_bytes(deterministic_tarball(CODE))
    command = [*tarball_command("drift_check"), str(code)]
    assert command[0] == "/bin/sh" and "python3 -m drift_check" in command[2]
    env = subprocess_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # python3: the test's interpreter
    env["TMPDIR"] = str(tmp_path)  # where the command unpacks the code
    result = subprocess.run(
        [*command, "--capture-dir", str(tmp_path / "capture"), "--baseline", str(baseline_path),
         "--output-dir", str(tmp_path / "out"), *WINDOW, "--no-publish-metrics"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "50 row(s)" in result.stdout
    assert json.loads((tmp_path / "out" / "drift-report.json").read_text())["rows_analysed"] == 50
