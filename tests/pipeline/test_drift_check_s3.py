"""DriftCheck reading S3 itself: hour-folder listing, pagination, streaming, the model package's baseline.

S3 and SageMaker are real botocore clients behind Stubbers: every request's parameters are checked
against the API and against what the test expects, and nothing leaves the process. The capture
objects are the files ``test_drift_check``'s builders write, so a run on S3 can be compared with
the same files read from a directory.
"""

from __future__ import annotations

import ast
import copy
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import botocore.session
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

import stepkit
from pipeline_code.steps import drift_check
from pipeline_code.steps.drift_check import capture as capture_reading

from . import test_drift_check as local_tests
from .conftest import run_main
from .test_drift_check import (
    ENDPOINT,
    NOW,
    CODE_FILES,
    START,
    VARIANT,
    WINDOW,
    CloudWatchStub,
    record,
    request_block,
    response_block,
    sampled,
    traffic,
    write_capture,
)

# The directory tests' fixtures: the sample, its baseline, its numeric features.
sample, baseline_path, numeric_features = local_tests.sample, local_tests.baseline_path, local_tests.numeric_features

BUCKET = "mlp-sandbox-capture"
DESTINATION = f"s3://{BUCKET}/data-capture"  # DataCaptureConfig.DestinationS3Uri, as the serving stack sets it
ENDPOINT_PREFIX = f"data-capture/{ENDPOINT}/"
MODEL_BUCKET = "mlp-sandbox-models"
BASELINE_KEY = "mlp-sandbox-model-build/execution-1/baseline/baseline.json"
PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-sandbox-models/12"


def _client(service: str):
    return botocore.session.get_session().create_client(
        service, region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def body(data: bytes, content_length: Optional[int] = None) -> StreamingBody:
    """A response stream; a content length beyond ``data`` makes the read break off (IncompleteReadError)."""
    return StreamingBody(io.BytesIO(data), len(data) if content_length is None else content_length)


class S3Stub:
    """A stubbed S3 client that records every request's parameters."""

    def __init__(self) -> None:
        self.client = _client("s3")
        self.stubber = Stubber(self.client)
        self.requests: List[Tuple[str, dict]] = []
        for operation in ("ListObjectsV2", "GetObject"):
            self.client.meta.events.register(
                f"provide-client-params.s3.{operation}",
                lambda params, model, **_: self.requests.append((model.name, copy.deepcopy(params))),
            )
        self.stubber.activate()

    def expect_list(self, prefix: str, keys: Sequence[Tuple[str, int]] = (), *, delimiter: bool = False,
                    variants: Sequence[str] = (), token: Optional[str] = None, next_token: Optional[str] = None,
                    bucket: str = BUCKET) -> None:
        expected = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            expected["Delimiter"] = "/"
        if token:
            expected["ContinuationToken"] = token
        response: dict = {"IsTruncated": next_token is not None, "KeyCount": len(keys) + len(variants),
                          "Prefix": prefix, "Name": bucket}
        if keys:
            response["Contents"] = [{"Key": key, "Size": size} for key, size in keys]
        if variants:
            response["CommonPrefixes"] = [{"Prefix": f"{prefix}{v}/"} for v in variants]
        if next_token:
            response["NextContinuationToken"] = next_token
        self.stubber.add_response("list_objects_v2", response, expected)

    def expect_get(self, key: str, data: bytes, *, bucket: str = BUCKET, offset: int = 0,
                   content_length: Optional[int] = None) -> None:
        expected = {"Bucket": bucket, "Key": key}
        if offset:
            expected["Range"] = f"bytes={offset}-"
        self.stubber.add_response("get_object", {"Body": body(data, content_length), "ContentLength": len(data)}, expected)

    def done(self) -> None:
        self.stubber.assert_no_pending_responses()

    def listed_prefixes(self) -> List[Tuple[str, Optional[str]]]:
        return [(p["Prefix"], p.get("ContinuationToken")) for op, p in self.requests if op == "ListObjectsV2"]


def sagemaker_stub(package: Optional[dict] = None, error: Optional[str] = None) -> Tuple[object, Stubber]:
    client = _client("sagemaker")
    stubber = Stubber(client)
    if error:
        stubber.add_client_error("describe_model_package", service_error_code=error, service_message="no such package",
                                 http_status_code=400, expected_params={"ModelPackageName": PACKAGE_ARN})
    else:
        response = {
            "ModelPackageName": "mlp-sandbox-models",
            "ModelPackageArn": PACKAGE_ARN,
            "ModelPackageGroupName": "mlp-sandbox-models",
            "ModelPackageVersion": 12,
            "CreationTime": datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc),
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            **(package or {}),
        }
        stubber.add_response("describe_model_package", response, {"ModelPackageName": PACKAGE_ARN})
    stubber.activate()
    return client, stubber


def registered_baseline(uri: str) -> dict:
    """DescribeModelPackage's DriftCheckBaselines as the pipeline's RegisterModel step sets them."""
    return {"DriftCheckBaselines": {"ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": uri}}}}


def capture_objects(capture_dir: Path) -> Dict[str, bytes]:
    """The files of a local capture tree as the S3 objects under the capture destination."""
    return {f"data-capture/{p.relative_to(capture_dir).as_posix()}": p.read_bytes()
            for p in sorted(capture_dir.rglob("*.jsonl"))}


def hour_prefix(variant: str, hour: datetime) -> str:
    return f"{ENDPOINT_PREFIX}{variant}/{hour:%Y/%m/%d/%H}/"


def expect_window(stub: S3Stub, objects: Dict[str, bytes], variants: Sequence[str], hours: Sequence[datetime],
                  extra: Dict[str, Sequence[Tuple[str, int]]] = {}) -> List[str]:  # noqa: B006 - read only
    """The requests of one run: the variant listing, each variant's hour folders, then the objects in key order."""
    stub.expect_list(ENDPOINT_PREFIX, delimiter=True, variants=variants)
    read = []
    for variant in variants:
        for hour in hours:
            prefix = hour_prefix(variant, hour)
            keys = [(k, len(v)) for k, v in objects.items() if k.startswith(prefix)]
            stub.expect_list(prefix, [*keys, *extra.get(prefix, [])])
            read += [k for k, _ in keys]
    for key in sorted(read):
        stub.expect_get(key, objects[key])
    return sorted(read)


def run_s3(output_dir: Path, *extra: str, s3: S3Stub, sagemaker=None, stub: Optional[CloudWatchStub] = None,
           baseline: Optional[Path] = None, now: datetime = NOW, window: Sequence[str] = WINDOW):
    argv = ["--capture-s3-uri", DESTINATION, "--endpoint-name", ENDPOINT, "--output-dir", str(output_dir), *window, *extra]
    if baseline is not None:
        argv += ["--baseline", str(baseline)]
    if stub is None:
        argv.append("--no-publish-metrics")
    result = run_main(drift_check.main, argv, cloudwatch=stub.client if stub else None, now=now, s3=s3.client,
                      sagemaker=sagemaker)
    report = None
    if (output_dir / "drift-report.json").is_file():
        report = json.loads((output_dir / "drift-report.json").read_text(encoding="utf-8"))
    return result, report


def error_lines(text: str) -> List[str]:
    return [line for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------ listing


def test_reads_only_the_window_hours_and_matches_a_directory_run(sample, baseline_path, numeric_features, tmp_path):
    capture_dir = tmp_path / "capture"
    features, labels = sampled(sample, rows=300)
    write_capture(capture_dir, traffic(features, labels, numeric_features))  # 10:00-11:00: the window
    # A late file in the next hour's folder, neighbours outside the window, far folders never listed.
    late = START + timedelta(minutes=59)
    block, out = request_block(features.iloc[:2], "csv", numeric_features), response_block(labels[:2], "json")
    write_capture(capture_dir, [(late, record(late, block, out))], folder_shift=timedelta(hours=1))
    for hours in (-4, -2, -1, 1, 2, 3):
        at = START + timedelta(hours=hours, minutes=5)
        write_capture(capture_dir, [(at, record(at, block, out))])
    canary = capture_dir / ENDPOINT / "Canary" / "2026" / "11" / "27" / "10"
    canary.mkdir(parents=True)
    (canary / "30-00-000-canary.jsonl").write_text(record(START + timedelta(minutes=30), block, out) + "\n")
    objects = capture_objects(capture_dir)
    assert len(objects) == 9  # hour folders 06, 08, 09, 10, 11 (two files), 12, 13 and the canary's 10

    s3 = S3Stub()
    hours = [START - timedelta(hours=1), START, START + timedelta(hours=1)]  # 09, 10 and 11
    # Not capture files: skipped without a read.
    extra = {hour_prefix(VARIANT, START): [(hour_prefix(VARIANT, START) + ".00-00-000-partial.jsonl", 10),
                                           (hour_prefix(VARIANT, START) + "manifest.json", 10)]}
    read = expect_window(s3, objects, ["AllTraffic", "Canary"], hours, extra)
    assert len(read) == 5  # 09 (the neighbour), 10, 11 (the late file and the neighbour), and the canary's 10
    cloudwatch = CloudWatchStub()
    result, report = run_s3(tmp_path / "out", s3=s3, stub=cloudwatch, baseline=baseline_path)
    assert result.code == 0, result.err
    s3.done()
    cloudwatch.done()

    assert s3.listed_prefixes() == [
        (ENDPOINT_PREFIX, None),
        *[(hour_prefix(v, h), None) for v in ("AllTraffic", "Canary") for h in hours],
    ]
    assert [p["Delimiter"] for op, p in s3.requests if op == "ListObjectsV2" and "Delimiter" in p] == ["/"]
    assert [p["Key"] for op, p in s3.requests if op == "GetObject"] == read
    capture = report["capture"]
    assert capture["source"] == "s3" and capture["files_read"] == 5
    assert capture["bytes_read"] == sum(len(objects[k]) for k in read)
    assert capture["date_folders_skipped"] == 0
    assert capture["s3"] == {
        "uri": f"s3://{BUCKET}/{ENDPOINT_PREFIX}", "variants": ["AllTraffic", "Canary"],
        "hours": {"count": 3, "first": "2026-11-27T09:00:00Z", "last": "2026-11-27T11:00:00Z"},
        "hour_prefixes_listed": 6, "list_requests": 7, "objects_missing": 0, "stream_retries": 0,
    }  # fmt: skip
    assert report["rows_analysed"] == 300 + 2 + 2 and report["capture"]["records_outside_window"] == 2

    # The same files from a directory: the same scores, the same files (date folders are skipped there).
    local = run_main(drift_check.main, ["--capture-dir", str(capture_dir), "--baseline", str(baseline_path),
                                        "--output-dir", str(tmp_path / "local"), *WINDOW, "--no-publish-metrics"])
    assert local.code == 0, local.err
    local_report = json.loads((tmp_path / "local" / "drift-report.json").read_text())
    for key in ("features", "prediction_drift", "rows_analysed", "predictions_analysed", "drifted_features", "message"):
        assert report[key] == local_report[key], key
    for key in ("files_read", "bytes_read", "lines", "records_in_window", "records_outside_window", "malformed"):
        assert capture[key] == local_report["capture"][key], key
    assert local_report["capture"]["source"] == "directory" and local_report["capture"]["s3"] is None
    assert local_report["capture"]["date_folders_skipped"] == 4  # 06, 08, 12 and 13
    assert f"read from s3://{BUCKET}/{ENDPOINT_PREFIX}" in (tmp_path / "out" / "drift-report.html").read_text()
    assert "5 file(s)" in result.out and "7 request(s)" in result.out


def _hours(first: str, count: int) -> List[datetime]:
    start = stepkit.parse_time(first)
    return [start + timedelta(hours=i) for i in range(count)]


@pytest.mark.parametrize("argv,now,hours", [
    (WINDOW, NOW, _hours("2026-11-27T09:00Z", 3)),  # a whole hour: that hour and one on each side
    ([], datetime(2026, 11, 27, 10, 40, 12, tzinfo=timezone.utc), _hours("2026-11-27T08:00Z", 4)),  # default: last hour
    (["--window-hours", "3", "--window-end", "2026-11-27T11:00:00Z"], NOW, _hours("2026-11-27T07:00Z", 5)),
    (["--window-start", "2026-11-30T23:30:00Z", "--window-end", "2026-12-01T00:30:00Z"], NOW,
     _hours("2026-11-30T22:00Z", 4)),  # across a month: 2026/11/30/22 .. 2026/12/01/01
])  # fmt: skip
def test_only_the_window_hour_prefixes_are_listed(baseline_path, tmp_path, argv, now, hours):
    s3 = S3Stub()
    expect_window(s3, {}, [VARIANT], hours)
    result, report = run_s3(tmp_path / "out", s3=s3, baseline=baseline_path, now=now, window=argv)
    assert result.code == 0, result.err
    s3.done()
    assert s3.listed_prefixes() == [(ENDPOINT_PREFIX, None), *[(hour_prefix(VARIANT, h), None) for h in hours]]
    assert report["status"] == "no_capture_data" and report["capture"]["files_read"] == 0
    assert capture_reading.capture_hours(stepkit.parse_time(report["window"]["start"]),
                                     stepkit.parse_time(report["window"]["end"])) == hours


def test_listings_are_paginated(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample, rows=120)
    lines = traffic(features, labels, numeric_features)
    capture_dir = tmp_path / "capture"
    for n in range(3):  # three files in the window's hour folder
        write_capture(capture_dir, lines[n::3])
    objects = capture_objects(capture_dir)
    keys = sorted(objects)
    assert len(keys) == 3
    s3 = S3Stub()
    s3.expect_list(ENDPOINT_PREFIX, delimiter=True, variants=["AllTraffic"], next_token="variants-2")
    s3.expect_list(ENDPOINT_PREFIX, delimiter=True, variants=["Shadow"], token="variants-2")
    for variant in ("AllTraffic", "Shadow"):
        for hour in _hours("2026-11-27T09:00Z", 3):
            prefix = hour_prefix(variant, hour)
            if variant == "AllTraffic" and hour == START:
                s3.expect_list(prefix, [(k, len(objects[k])) for k in keys[:2]], next_token="page-2")
                s3.expect_list(prefix, [(keys[2], len(objects[keys[2]]))], token="page-2")
            else:
                s3.expect_list(prefix)
    for key in keys:
        s3.expect_get(key, objects[key])
    result, report = run_s3(tmp_path / "out", s3=s3, baseline=baseline_path)
    assert result.code == 0, result.err
    s3.done()
    assert s3.listed_prefixes()[:2] == [(ENDPOINT_PREFIX, None), (ENDPOINT_PREFIX, "variants-2")]
    assert (hour_prefix(VARIANT, START), "page-2") in s3.listed_prefixes()
    assert report["capture"]["s3"]["variants"] == ["AllTraffic", "Shadow"]
    assert report["capture"]["s3"]["list_requests"] == 2 + 6 + 1
    assert report["capture"]["files_read"] == 3 and report["rows_analysed"] == 120


def test_a_broken_stream_resumes_after_the_last_whole_line(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample, rows=60)
    write_capture(tmp_path / "capture", traffic(features, labels, numeric_features))
    ((key, data),) = capture_objects(tmp_path / "capture").items()
    cut = data.index(b"\n", len(data) // 2) + 40  # 40 bytes into a line
    resume = data.rindex(b"\n", 0, cut) + 1
    s3 = S3Stub()
    s3.expect_list(ENDPOINT_PREFIX, delimiter=True, variants=[VARIANT])
    for hour in _hours("2026-11-27T09:00Z", 3):
        s3.expect_list(hour_prefix(VARIANT, hour), [(key, len(data))] if hour == START else [])
    s3.expect_get(key, data[:cut], content_length=len(data))  # the connection drops
    s3.expect_get(key, data[resume:], offset=resume)
    result, report = run_s3(tmp_path / "out", s3=s3, baseline=baseline_path)
    assert result.code == 0, result.err
    s3.done()
    assert [p.get("Range") for op, p in s3.requests if op == "GetObject"] == [None, f"bytes={resume}-"]
    assert "resuming at byte" in result.out
    assert report["rows_analysed"] == 60 and report["malformed_records"] == 0
    assert report["capture"]["bytes_read"] == len(data) and report["capture"]["s3"]["stream_retries"] == 1


def test_an_object_gone_since_the_listing_is_skipped(baseline_path, tmp_path):
    s3 = S3Stub()
    s3.expect_list(ENDPOINT_PREFIX, delimiter=True, variants=[VARIANT])
    gone = hour_prefix(VARIANT, START) + "10-00-000-gone.jsonl"
    for hour in _hours("2026-11-27T09:00Z", 3):
        s3.expect_list(hour_prefix(VARIANT, hour), [(gone, 100)] if hour == START else [])
    s3.stubber.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404,
                                expected_params={"Bucket": BUCKET, "Key": gone})
    result, report = run_s3(tmp_path / "out", s3=s3, baseline=baseline_path)
    assert result.code == 0, result.err
    s3.done()
    assert report["capture"]["s3"]["objects_missing"] == 1 and report["capture"]["files_read"] == 0
    assert "disappeared after it was listed" in result.out


def test_a_listing_error_exits_2_before_anything_is_written(baseline_path, tmp_path):
    s3 = S3Stub()
    s3.stubber.add_client_error("list_objects_v2", service_error_code="AccessDenied", service_message="Access Denied",
                                http_status_code=403)
    result, report = run_s3(tmp_path / "out", s3=s3, baseline=baseline_path)
    assert result.code == 2
    (line,) = error_lines(result.err)
    assert line.startswith(f"ERROR: listing s3://{BUCKET}/{ENDPOINT_PREFIX} failed") and "AccessDenied" in line
    assert report is None and not (tmp_path / "out").exists()


def test_no_variant_folders_is_no_capture_data(baseline_path, tmp_path):
    s3 = S3Stub()
    s3.expect_list(ENDPOINT_PREFIX, delimiter=True)
    cloudwatch = CloudWatchStub()
    result, report = run_s3(tmp_path / "out", s3=s3, stub=cloudwatch, baseline=baseline_path)
    assert result.code == 0, result.err
    s3.done()
    cloudwatch.done()
    assert report["status"] == "no_capture_data" and "no variant folders" in result.out
    assert cloudwatch.values()[("NoCaptureData", None)] == 1.0


# ----------------------------------------------------------------------------------- baseline


def test_baseline_of_the_model_package(sample, baseline_path, numeric_features, tmp_path):
    features, labels = sampled(sample, rows=50)
    write_capture(tmp_path / "capture", traffic(features, labels, numeric_features))
    objects = capture_objects(tmp_path / "capture")
    sagemaker, sm_stubber = sagemaker_stub(registered_baseline(f"s3://{MODEL_BUCKET}/{BASELINE_KEY}"))
    s3 = S3Stub()
    s3.expect_get(BASELINE_KEY, baseline_path.read_bytes(), bucket=MODEL_BUCKET)  # first: before any listing
    expect_window(s3, objects, [VARIANT], _hours("2026-11-27T09:00Z", 3))
    result, report = run_s3(tmp_path / "out", "--model-package-arn", PACKAGE_ARN, s3=s3, sagemaker=sagemaker)
    assert result.code == 0, result.err
    sm_stubber.assert_no_pending_responses()
    s3.done()
    assert s3.requests[0] == ("GetObject", {"Bucket": MODEL_BUCKET, "Key": BASELINE_KEY})
    assert report["baseline"] == {"row_count": 1049, "target_column": "churn_risk", "features": 10,
                                  "s3_uri": f"s3://{MODEL_BUCKET}/{BASELINE_KEY}", "model_package_arn": PACKAGE_ARN}
    assert report["status"] == "ok" and report["rows_analysed"] == 50
    assert f"model package {PACKAGE_ARN}: baseline s3://{MODEL_BUCKET}/{BASELINE_KEY}" in result.out


MONITOR_KEY = "mlp-sandbox-model-build/execution-1/data-quality-baseline/statistics.json"
MONITOR_STATISTICS = {"version": 0.0, "dataset": {"item_count": 1049}, "features": [{"name": "age", "inferred_type": "Integral"}]}


def test_package_with_a_model_monitor_baseline_reads_its_data_statistics(baseline_path, tmp_path):
    """With the model-build pipeline's data-quality baseline on, RegisterModel puts Model Monitor's
    statistics.json in DriftCheckBaselines and baseline.json in ModelMetrics.ModelDataQuality: the
    latter is read, the former not even fetched (the monitoring role may not read it)."""
    package = {
        "DriftCheckBaselines": {"ModelDataQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://reports/{MONITOR_KEY}"},
            "Constraints": {"ContentType": "application/json", "S3Uri": "s3://reports/constraints.json"}}},
        "ModelMetrics": {"ModelDataQuality": {"Statistics": {"ContentType": "application/json",
                                                             "S3Uri": f"s3://{MODEL_BUCKET}/{BASELINE_KEY}"}}},
    }  # fmt: skip
    sagemaker, sm_stubber = sagemaker_stub(package)
    s3 = S3Stub()
    s3.expect_get(BASELINE_KEY, baseline_path.read_bytes(), bucket=MODEL_BUCKET)
    expect_window(s3, {}, [VARIANT], _hours("2026-11-27T09:00Z", 3))
    result, report = run_s3(tmp_path / "out", "--model-package-arn", PACKAGE_ARN, s3=s3, sagemaker=sagemaker)
    assert result.code == 0, result.err
    sm_stubber.assert_no_pending_responses()
    s3.done()
    assert report["baseline"]["s3_uri"] == f"s3://{MODEL_BUCKET}/{BASELINE_KEY}"
    assert "(ModelMetrics.ModelDataQuality.Statistics.S3Uri)" in result.out


def test_statistics_that_are_not_a_baseline_fall_back_to_the_drift_check_baseline(baseline_path, tmp_path):
    package = {
        **registered_baseline(f"s3://{MODEL_BUCKET}/{BASELINE_KEY}"),
        "ModelMetrics": {"ModelDataQuality": {"Statistics": {"ContentType": "application/json",
                                                             "S3Uri": f"s3://{MODEL_BUCKET}/{MONITOR_KEY}"}}},
    }  # fmt: skip
    sagemaker, _ = sagemaker_stub(package)
    s3 = S3Stub()
    s3.expect_get(MONITOR_KEY, json.dumps(MONITOR_STATISTICS).encode(), bucket=MODEL_BUCKET)
    s3.expect_get(BASELINE_KEY, baseline_path.read_bytes(), bucket=MODEL_BUCKET)
    expect_window(s3, {}, [VARIANT], _hours("2026-11-27T09:00Z", 3))
    result, report = run_s3(tmp_path / "out", "--model-package-arn", PACKAGE_ARN, s3=s3, sagemaker=sagemaker)
    assert result.code == 0, result.err
    s3.done()
    assert report["baseline"]["s3_uri"] == f"s3://{MODEL_BUCKET}/{BASELINE_KEY}"
    assert "is not a drift_check baseline; trying DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri" in result.out


def test_package_whose_only_statistics_are_not_a_baseline_exits_2(tmp_path):
    sagemaker, _ = sagemaker_stub(registered_baseline(f"s3://{MODEL_BUCKET}/statistics.json"))
    s3 = S3Stub()
    s3.expect_get("statistics.json", b'{"version": 0.0, "features": []}', bucket=MODEL_BUCKET)
    result, report = run_s3(tmp_path / "out", "--model-package-arn", PACKAGE_ARN, s3=s3, sagemaker=sagemaker)
    assert result.code == 2 and report is None
    (line,) = error_lines(result.err)
    assert line == (f"ERROR: baseline file s3://{MODEL_BUCKET}/statistics.json has format_version None; "
                    "this drift check reads version 1")


@pytest.mark.parametrize("package,error,needle", [
    ({}, None, "has no drift-check baseline (DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri or "
               "ModelMetrics.ModelDataQuality.Statistics.S3Uri)"),
    ({"DriftCheckBaselines": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/k.json"}}}},
     None, "has no drift-check baseline"),
    (None, "ValidationException", "cannot describe model package"),
])  # fmt: skip
def test_package_without_a_baseline_exits_2(tmp_path, package, error, needle):
    sagemaker, sm_stubber = sagemaker_stub(package, error=error)
    s3 = S3Stub()  # any S3 request would fail: none is expected
    result, report = run_s3(tmp_path / "out", "--model-package-arn", PACKAGE_ARN, s3=s3, sagemaker=sagemaker)
    assert result.code == 2
    (line,) = error_lines(result.err)
    assert line.startswith("ERROR: ") and PACKAGE_ARN in line and needle in line, line
    sm_stubber.assert_no_pending_responses()
    assert s3.requests == [] and report is None and not (tmp_path / "out").exists()


@pytest.mark.parametrize("uri,key", [
    (f"s3://{MODEL_BUCKET}/{BASELINE_KEY}", BASELINE_KEY),
    (f"s3://{MODEL_BUCKET}/mlp-sandbox-model-build/execution-1/baseline/", BASELINE_KEY),  # the step's output prefix
    (f"s3://{MODEL_BUCKET}/mlp-sandbox-model-build/execution-1/baseline", BASELINE_KEY),
])  # fmt: skip
def test_baseline_from_an_s3_uri(baseline_path, tmp_path, uri, key):
    s3 = S3Stub()
    s3.expect_get(key, baseline_path.read_bytes(), bucket=MODEL_BUCKET)
    expect_window(s3, {}, [VARIANT], _hours("2026-11-27T09:00Z", 3))
    result, report = run_s3(tmp_path / "out", "--baseline", uri, s3=s3)
    assert result.code == 0, result.err
    s3.done()
    assert report["baseline"]["s3_uri"] == f"s3://{MODEL_BUCKET}/{key}" and report["baseline"]["model_package_arn"] is None


@pytest.mark.parametrize("case,needle", [("missing", "does not exist"), ("not-json", "is not valid JSON"),
                                         ("denied", "cannot read baseline file")])
def test_bad_s3_baseline_exits_2(tmp_path, case, needle):
    s3 = S3Stub()
    expected = {"Bucket": MODEL_BUCKET, "Key": BASELINE_KEY}
    if case == "missing":
        s3.stubber.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404, expected_params=expected)
    elif case == "denied":
        s3.stubber.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403,
                                    expected_params=expected)
    else:
        s3.expect_get(BASELINE_KEY, b"{not json", bucket=MODEL_BUCKET)
    result, report = run_s3(tmp_path / "out", "--baseline", f"s3://{MODEL_BUCKET}/{BASELINE_KEY}", s3=s3)
    assert result.code == 2
    (line,) = error_lines(result.err)
    assert line.startswith("ERROR: ") and f"s3://{MODEL_BUCKET}/{BASELINE_KEY}" in line and needle in line, line
    s3.done()
    assert report is None


# ---------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("argv,needle", [
    (["--capture-dir", "/tmp/x", "--capture-s3-uri", DESTINATION, "--endpoint-name", ENDPOINT], "not allowed with"),
    (["--capture-s3-uri", DESTINATION], "--endpoint-name is required with --capture-s3-uri"),
    (["--capture-s3-uri", "https://bucket/prefix", "--endpoint-name", ENDPOINT], "--capture-s3-uri: not an S3 URI"),
    (["--capture-s3-uri", DESTINATION, "--endpoint-name", "a/b"], "is not a SageMaker endpoint name"),
    (["--baseline", "/tmp/b.json", "--model-package-arn", PACKAGE_ARN], "not allowed with"),
    (["--model-package-arn", "mlp-sandbox-models/12"], "is not a SageMaker model package ARN"),
    (["--baseline", "s3://"], "--baseline: not an S3 URI"),
    (["--window-hours", "2", "--window-start", "2026-11-27T10:00:00Z"], "not both"),
    (["--window-hours", "0"], "must be 1-8784 hours"),
])  # fmt: skip
def test_argument_errors_exit_2(tmp_path, argv, needle):
    result = run_main(drift_check.main, [*argv, "--output-dir", str(tmp_path / "out"), "--no-publish-metrics"])
    assert result.code == 2 and needle in result.err, result.err


def test_without_a_region_the_s3_clients_are_not_made(baseline_path, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    result = run_main(drift_check.main, ["--capture-s3-uri", DESTINATION, "--endpoint-name", ENDPOINT, "--baseline",
                                         str(baseline_path), "--output-dir", str(tmp_path / "out"), "--no-publish-metrics"])
    assert result.code == 2
    assert error_lines(result.err) == ["ERROR: no AWS region to read the capture data from S3: set AWS_REGION"]


@pytest.mark.parametrize("module", CODE_FILES, ids=lambda path: path.name)
def test_boto3_is_imported_only_when_needed(module):
    tree = ast.parse(module.read_text(encoding="utf-8"))
    top_level = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top_level |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert not top_level & {"boto3", "botocore"}
