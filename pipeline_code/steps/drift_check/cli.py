"""The drift check's command line: arguments, one run (baseline, capture, report, metrics) and exit codes."""

from __future__ import annotations

import argparse
import math
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

from stepkit import atomic_write, format_time, parse_time

from .aws import make_client, make_cloudwatch_client, parse_s3_uri
from .baseline import load_baseline, package_baseline_uris, read_s3_baseline
from .capture import Capture, S3Capture, find_capture_files
from .errors import DriftCheckError, NotABaseline, PublishError
from .metrics import MAX_METRIC_AGE, metric_data, publish_metrics
from .report import build_report, report_html, report_json

DEFAULT_CAPTURE_DIR = "/opt/ml/processing/input/capture"
DEFAULT_BASELINE = "/opt/ml/processing/input/baseline"  # a directory holding baseline.json, or the file
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/report"
DEFAULT_NAMESPACE = "MlPlatform/Drift"
DEFAULT_PSI_THRESHOLD = 0.2
DEFAULT_KS_THRESHOLD = 0.1
REPORT_JSON = "drift-report.json"
REPORT_HTML = "drift-report.html"
_PACKAGE_ARN_RE = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:model-package/\S+$")
MAX_WINDOW_HOURS = 24 * 366
_ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's EndpointName pattern


def _time_arg(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hours_arg(text: str) -> int:
    try:
        hours = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of hours: {text!r}") from None
    if not 1 <= hours <= MAX_WINDOW_HOURS:
        raise argparse.ArgumentTypeError(f"must be 1-{MAX_WINDOW_HOURS} hours, got {hours}")
    return hours


def parse_args(argv: Optional[Sequence[str]], now: datetime) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="drift_check", description="Data and prediction drift of an endpoint's captured traffic against the training baseline.")
    capture = parser.add_mutually_exclusive_group()
    capture.add_argument("--capture-dir",
                         help=f"the endpoint's data-capture files (default, without --capture-s3-uri: {DEFAULT_CAPTURE_DIR})")
    capture.add_argument("--capture-s3-uri",
                         help="the endpoint's data-capture destination (DataCaptureConfig.DestinationS3Uri, s3://bucket/prefix): "
                              "the window's hour folders under <uri>/<--endpoint-name>/<variant>/ are listed and read")
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--baseline",
                          help="baseline.json, or the directory holding it; or an S3 object (s3://.../baseline.json) or "
                               f"prefix holding it (default: {DEFAULT_BASELINE})")
    baseline.add_argument("--model-package-arn",
                          help="a model package version: its drift-check baseline (DriftCheckBaselines.ModelDataQuality."
                               "Statistics.S3Uri, set by the pipeline's RegisterModel step) is read")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help=f"report directory (default: {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--window-start", type=_time_arg, help="ISO 8601, inclusive (default: --window-hours before the window end)")
    parser.add_argument("--window-end", type=_time_arg, help="ISO 8601, exclusive (default: now)")
    parser.add_argument("--window-hours", type=_hours_arg,
                        help="window length when --window-start is not given (default: 1)")
    parser.add_argument("--endpoint-name",
                        help="value of the EndpointName metric dimension (required to publish, and with --capture-s3-uri)")
    parser.add_argument("--metric-namespace", default=DEFAULT_NAMESPACE,
                        help=f"CloudWatch namespace (default: {DEFAULT_NAMESPACE})")
    parser.add_argument("--publish-metrics", action=argparse.BooleanOptionalAction, default=True,
                        help="publish the CloudWatch metrics (--no-publish-metrics: only write the reports)")
    parser.add_argument("--psi-threshold", type=float, default=DEFAULT_PSI_THRESHOLD,
                        help=f"a feature drifted when its PSI exceeds this (default: {DEFAULT_PSI_THRESHOLD})")
    parser.add_argument("--ks-threshold", type=float, default=DEFAULT_KS_THRESHOLD,
                        help=f"a numeric feature drifted when its KS distance exceeds this (default: {DEFAULT_KS_THRESHOLD})")
    args = parser.parse_args(argv)
    if args.capture_dir is None and args.capture_s3_uri is None:
        args.capture_dir = DEFAULT_CAPTURE_DIR
    if args.baseline is None and args.model_package_arn is None:
        args.baseline = DEFAULT_BASELINE
    if args.window_start is not None and args.window_hours is not None:
        parser.error("give --window-start or --window-hours, not both")
    if args.window_end is None:
        args.window_end = now
    if args.window_start is None:
        args.window_start = args.window_end - timedelta(hours=args.window_hours or 1)
    if args.window_start >= args.window_end:
        parser.error(f"--window-start ({format_time(args.window_start)}) must be before "
                     f"--window-end ({format_time(args.window_end)})")
    if not (math.isfinite(args.psi_threshold) and args.psi_threshold > 0):
        parser.error(f"--psi-threshold must be a positive number, got {args.psi_threshold}")
    if not (0 < args.ks_threshold <= 1):
        parser.error(f"--ks-threshold must be in (0, 1], got {args.ks_threshold}")
    if args.endpoint_name is not None and not args.endpoint_name.strip():
        parser.error("--endpoint-name must not be empty")
    if args.capture_s3_uri is not None:
        try:
            parse_s3_uri(args.capture_s3_uri)
        except ValueError as exc:
            parser.error(f"--capture-s3-uri: {exc}")
        if not args.endpoint_name:
            parser.error("--endpoint-name is required with --capture-s3-uri (its folder under the capture destination is read)")
        if not _ENDPOINT_NAME_RE.match(args.endpoint_name):
            parser.error(f"--endpoint-name {args.endpoint_name!r} is not a SageMaker endpoint name")
    if args.baseline is not None and args.baseline.startswith("s3:"):
        try:
            parse_s3_uri(args.baseline)
        except ValueError as exc:
            parser.error(f"--baseline: {exc}")
    if args.model_package_arn is not None and not _PACKAGE_ARN_RE.match(args.model_package_arn):
        parser.error(f"--model-package-arn {args.model_package_arn!r} is not a SageMaker model package ARN")
    if args.publish_metrics:
        if not args.endpoint_name:
            parser.error("--endpoint-name is required to publish metrics (or use --no-publish-metrics)")
        if not args.metric_namespace.strip() or args.metric_namespace.startswith("AWS/"):
            parser.error(f"--metric-namespace {args.metric_namespace!r} is not a custom namespace")
    return args


class _Clients:
    """AWS clients: the injected ones (tests), else created on first use."""

    def __init__(self, **given: Any):
        self._clients = dict(given)

    def get(self, service: str, purpose: str) -> Any:
        if self._clients.get(service) is None:
            self._clients[service] = make_client(service, purpose)
        return self._clients[service]


def _load_baseline(args: argparse.Namespace, clients: _Clients) -> Tuple[dict, Optional[str]]:
    """The baseline and, when it came from S3, its URI."""
    if args.model_package_arn:
        arn = args.model_package_arn
        candidates = package_baseline_uris(clients.get("sagemaker", "describe the model package"), arn)
        s3 = clients.get("s3", "read the baseline from S3")
        for (field, uri), following in zip(candidates, [*candidates[1:], None]):
            try:
                loaded = read_s3_baseline(s3, uri)
            except NotABaseline:
                if following is None:
                    raise
                print(f"[drift] model package {arn}: {field} ({uri}) is not a drift_check baseline; "
                      f"trying {following[0]}", flush=True)
                continue
            print(f"[drift] model package {arn}: baseline {loaded[1]} ({field})", flush=True)
            return loaded
    if args.baseline.startswith("s3://"):
        return read_s3_baseline(clients.get("s3", "read the baseline from S3"), args.baseline)
    return load_baseline(Path(args.baseline)), None


def run(args: argparse.Namespace, cloudwatch: Any, now: datetime, s3: Any = None, sagemaker: Any = None) -> dict:
    clients = _Clients(s3=s3, sagemaker=sagemaker)
    baseline, baseline_uri = _load_baseline(args, clients)
    capture = Capture(baseline, args.window_start, args.window_end)
    s3_summary = None
    if args.capture_s3_uri:
        source = S3Capture(clients.get("s3", "read the capture data from S3"), args.capture_s3_uri, args.endpoint_name,
                           args.window_start, args.window_end)
        objects = source.list_objects()
        if not source.variants:
            print(f"[drift] WARNING: no variant folders under {source.uri}: the endpoint has captured nothing there",
                  flush=True)
        print(f"[drift] listed {source.hour_prefixes_listed} hour folder(s) of {len(source.variants)} variant(s) under "
              f"{source.uri} in {source.list_requests} request(s): {len(objects)} object(s), "
              f"{sum(size for _, size in objects)} bytes", flush=True)
        source.read_into(capture, objects)
        skipped = 0
        s3_summary = source.summary()
    else:
        files, skipped = find_capture_files(Path(args.capture_dir), args.window_start, args.window_end)
        capture.read(files)
    report = build_report(args, baseline, capture, skipped, baseline_uri, s3_summary)
    output_dir = Path(args.output_dir)
    atomic_write(output_dir / REPORT_JSON, report_json(report))
    atomic_write(output_dir / REPORT_HTML, report_html(report))
    print(f"[drift] window {report['window']['start']} - {report['window']['end']}: {capture.files} file(s) "
          f"({capture.bytes} bytes), {report['rows_analysed']} row(s), {report['predictions_analysed']} prediction(s), "
          f"{report['malformed_records']} malformed record(s); {report['message']}", flush=True)
    print(f"[drift] wrote {output_dir / REPORT_JSON} and {output_dir / REPORT_HTML}", flush=True)
    if cloudwatch is not None:
        timestamp = min(args.window_end, now)
        if now - timestamp > MAX_METRIC_AGE:
            print(f"[drift] WARNING: metrics not published: the window ended more than {MAX_METRIC_AGE.days} days ago, "
                  "which CloudWatch does not accept", flush=True)
        else:
            data = metric_data(report, timestamp)
            calls = publish_metrics(cloudwatch, args.metric_namespace, data)
            print(f"[drift] published {len(data)} metric(s) to {args.metric_namespace} in {calls} call(s)", flush=True)
    return report


def main(argv: Optional[Sequence[str]] = None, cloudwatch: Any = None, now: Optional[datetime] = None,
         s3: Any = None, sagemaker: Any = None) -> int:
    """Entry point; ``cloudwatch``, ``s3`` and ``sagemaker`` inject clients (tests), ``now`` the current time (UTC)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    args = parse_args(argv, now)
    try:
        if args.publish_metrics and cloudwatch is None:
            cloudwatch = make_cloudwatch_client()
        run(args, cloudwatch if args.publish_metrics else None, now, s3=s3, sagemaker=sagemaker)
    except DriftCheckError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return 2
    except PublishError as exc:  # the report is written; the job fails so that the gap is noticed
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
