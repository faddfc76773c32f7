#!/usr/bin/env python3
"""DriftCheck: data and prediction drift of an endpoint's captured traffic against the training baseline.

A processing-job script that needs no SageMaker Model Monitor: it reads the endpoint's data-capture
files (SageMaker's layout ``<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``, one captured invocation
per line) from ``--capture-dir`` or, listing only the window's hour folders, straight from S3
(``--capture-s3-uri``, the capture destination), keeps the events whose ``inferenceTime`` falls in
``[--window-start, --window-end)`` (default: the hour before now), decodes the request rows
(CSV or JSON, plain or base64) and the predicted labels, compares them with ``baseline.json``
(written by preprocess.py; a local file, an S3 object, or the drift-check baseline registered with
``--model-package-arn``) and writes ``drift-report.json`` and ``drift-report.html`` to
``--output-dir``; unless ``--no-publish-metrics``, it also publishes CloudWatch metrics.

Scores (the baseline is a profile, not the training rows, so everything is computed from it):

* numeric features: PSI over the baseline's 10 histogram bins (the first and last bins open-ended)
  plus a bin for missing values; the KS distance at the points where the baseline CDF is known
  (training min and max, the 9 inner bin edges, the 7 quantiles); the Wasserstein-1 distance
  between the capture's quantile function and the baseline's, interpolated linearly through those
  points (reported in feature units and in baseline standard deviations).
* categorical features: PSI and Jensen-Shannon distance (base 2) over the baseline's levels, one
  "other" bucket (levels the baseline does not list) and a missing bucket.
* predictions: PSI and Jensen-Shannon distance of the predicted labels against the training
  labels' distribution.

A feature has drifted when its PSI exceeds ``--psi-threshold`` or (numeric) its KS distance
exceeds ``--ks-threshold``; the predictions when their PSI exceeds ``--psi-threshold``.
Malformed capture lines and payloads are counted and skipped, never fatal. A missing or invalid
baseline ends the job with exit code 2 and one ``ERROR:`` line.

Self-contained on purpose (SageMaker runs it as a single file): Python 3.9+, numpy, scipy; boto3
(imported only when needed) to read S3, describe the model package and publish metrics.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import html
import io
import json
import math
import os
import re
import sys
import tempfile
from array import array
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from scipy.special import rel_entr

BASELINE_FORMAT_VERSION = 1  # the baseline.json format this script reads (preprocess.py's FORMAT_VERSION)
REPORT_VERSION = 1
DEFAULT_CAPTURE_DIR = "/opt/ml/processing/input/capture"
DEFAULT_BASELINE = "/opt/ml/processing/input/baseline"  # a directory holding baseline.json, or the file
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/report"
DEFAULT_NAMESPACE = "MlPlatform/Drift"
DEFAULT_PSI_THRESHOLD = 0.2
DEFAULT_KS_THRESHOLD = 0.1
REPORT_JSON = "drift-report.json"
REPORT_HTML = "drift-report.html"

# Cells read as missing; the same list as preprocess.py and inference.py.
NULL_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "NULL", "null", "None", "#N/A", "<NA>"]
_NULLS = frozenset(NULL_VALUES)
PSI_EPSILON = 1e-4  # additive smoothing of bin shares: p -> (p + eps) / (1 + bins * eps)
WASSERSTEIN_POINTS = 1000  # quantile-function grid of the Wasserstein integral (midpoint rule)
FOLDER_SLACK = timedelta(hours=1)  # hour folders this far outside the window are still read
S3_CHUNK_BYTES = 1 << 20  # read size of a capture object's stream
S3_READ_ATTEMPTS = 3  # a broken object stream is resumed (Range request) this many times in all
BASELINE_FILE = "baseline.json"
_S3_URI_RE = re.compile(r"^s3://([^/\s]+)(?:/(.*))?$")
_PACKAGE_ARN_RE = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:model-package/\S+$")
FLOAT32_MAX = float(np.finfo(np.float32).max)
TOP_LEVEL_CHANGES = 5
DECIMALS = 6

# CloudWatch PutMetricData limits: 1,000 data points and 1 MB per call; dimension values of at
# most 1,024 characters (255 in older documentation: the safe bound); timestamps up to two weeks
# in the past and two hours in the future.
METRICS_PER_CALL = 1000
MAX_CALL_BYTES = 900_000  # estimated request size per call, under the 1 MB limit
MAX_DIMENSION_VALUE = 255
MAX_METRIC_AGE = timedelta(days=14)


class DriftCheckError(Exception):
    """A problem with the inputs or arguments (or reading them from AWS); reported as one line, exit code 2."""


class NotABaseline(DriftCheckError):
    """JSON without this script's ``format_version``: some other file (Model Monitor's statistics.json, say)."""


class PublishError(Exception):
    """CloudWatch refused the metrics (or could not be reached): exit code 1, the report stays."""


class _Malformed(Exception):
    """A capture line or payload that cannot be used; ``reason`` names the counter."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------------------------------ time

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)



def _csv_rows(payload: str) -> List[List[str]]:
    """The non-empty rows of a CSV payload; malformed CSV is a malformed record."""
    try:
        return [row for row in csv.reader(io.StringIO(payload)) if row]
    except csv.Error:
        raise _Malformed("invalid_csv") from None

def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time as an aware UTC datetime; no offset means UTC. ValueError if not."""
    match = _ISO_RE.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro,
                     tzinfo=timezone.utc)
    if zone and zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        value = value - offset if zone[0] == "+" else value + offset
    return value


def format_time(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"


def _folder_period(parts: Sequence[str]) -> Optional[Tuple[datetime, datetime]]:
    """The time span of a capture folder ending in yyyy/mm[/dd[/hh]], or None."""
    for depth in (4, 3, 2):
        if len(parts) < depth:
            continue
        tail = parts[-depth:]
        if not (re.fullmatch(r"\d{4}", tail[0]) and all(re.fullmatch(r"\d{2}", p) for p in tail[1:])):
            continue
        numbers = [int(p) for p in tail]
        try:
            if depth == 2:
                start = datetime(numbers[0], numbers[1], 1, tzinfo=timezone.utc)
                year, month = (numbers[0] + 1, 1) if numbers[1] == 12 else (numbers[0], numbers[1] + 1)
                return start, datetime(year, month, 1, tzinfo=timezone.utc)
            start = datetime(*numbers, tzinfo=timezone.utc)  # type: ignore[misc]
        except ValueError:
            return None
        return start, start + (timedelta(days=1) if depth == 3 else timedelta(hours=1))
    return None


def _outside_window(period: Tuple[datetime, datetime], start: datetime, end: datetime) -> bool:
    """Whether a capture folder spanning ``period`` is not read: it ends or starts FOLDER_SLACK away."""
    return period[1] + FOLDER_SLACK <= start or period[0] - FOLDER_SLACK >= end


def capture_hours(start: datetime, end: datetime) -> List[datetime]:
    """The hour folders (their start) that the window reads: the same rule as for a directory."""
    hour = (start - FOLDER_SLACK - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour - FOLDER_SLACK < end:
        if not _outside_window((hour, hour + timedelta(hours=1)), start, end):
            hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def find_capture_files(capture_dir: Path, start: datetime, end: datetime) -> Tuple[List[Path], int]:
    """``*.jsonl`` files under capture_dir in sorted order, and the number of date folders skipped.

    Folders named like SageMaker's ``yyyy/mm/dd/hh`` whose span ends more than FOLDER_SLACK before
    the window or starts more than FOLDER_SLACK after it are not read (a capture file can hold
    events from around its folder's hour); the events' own inferenceTime decides the rest.
    """
    if capture_dir.is_file():
        return [capture_dir], 0
    if not capture_dir.is_dir():
        raise DriftCheckError(f"capture directory {capture_dir} does not exist")
    files: List[Path] = []
    skipped = 0
    for root, dirs, names in os.walk(capture_dir):
        rel = Path(root).relative_to(capture_dir).parts
        keep = []
        for name in sorted(dirs):
            if name.startswith("."):
                continue
            period = _folder_period(rel + (name,))
            if period and _outside_window(period, start, end):
                skipped += 1
                continue
            keep.append(name)
        dirs[:] = keep
        files.extend(Path(root) / n for n in names if n.lower().endswith(".jsonl") and not n.startswith("."))
    return sorted(files, key=lambda p: p.relative_to(capture_dir).as_posix()), skipped


# -------------------------------------------------------------------------------------- baseline


def load_baseline(path: Path) -> dict:
    """baseline.json (or the directory holding it), checked enough to compute every score."""
    if path.is_dir():
        path = path / BASELINE_FILE
    if not path.is_file():
        raise DriftCheckError(f"baseline file {path} does not exist")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DriftCheckError(f"cannot read baseline file {path}: {exc.strerror or exc}") from None
    return parse_baseline(data, str(path))


def parse_baseline(data: bytes, path: str) -> dict:
    """The baseline in ``data`` (read from ``path``, which names it in errors), checked."""
    try:
        baseline = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise DriftCheckError(f"baseline file {path} is not valid JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(baseline, dict):
        raise DriftCheckError(f"baseline file {path} does not hold a JSON object")
    version = baseline.get("format_version")
    if version != BASELINE_FORMAT_VERSION:
        raise (DriftCheckError if "format_version" in baseline else NotABaseline)(
            f"baseline file {path} has format_version {version!r}; this drift check reads version {BASELINE_FORMAT_VERSION}"
        )
    features = baseline.get("features")
    if not isinstance(features, dict) or not features:
        raise DriftCheckError(f"baseline file {path} has no features")
    for name, profile in features.items():
        problem = _profile_problem(profile)
        if problem:
            raise DriftCheckError(f"baseline file {path}: feature {name!r} {problem}")
    target = baseline.get("target")
    if not (isinstance(target, dict) and isinstance(target.get("counts"), dict)
            and all(_is_count(v) for v in target["counts"].values())):
        raise DriftCheckError(f"baseline file {path} has no target label counts")
    return baseline


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _profile_problem(profile: Any) -> Optional[str]:
    if not isinstance(profile, dict):
        return "has no profile"
    if not (_is_count(profile.get("count")) and _is_count(profile.get("missing_count"))
            and profile["missing_count"] <= profile["count"]):
        return "has no valid count / missing_count"
    kind = profile.get("type")
    if kind == "numeric":
        histogram = profile.get("histogram")
        if histogram is None:
            return None if profile["missing_count"] == profile["count"] else "has values but no histogram"
        if not isinstance(histogram, dict):
            return "has a malformed histogram"
        edges, counts = histogram.get("bin_edges"), histogram.get("counts")
        if not (isinstance(edges, list) and isinstance(counts, list) and len(counts) >= 1
                and len(edges) == len(counts) + 1 and all(_is_number(e) for e in edges)
                and all(_is_count(c) for c in counts) and list(edges) == sorted(edges)):
            return "has a malformed histogram"
        if not all(_is_number(profile.get(k)) for k in ("min", "max", "mean", "std")):
            return "has no min/max/mean/std"
        quantiles = profile.get("quantiles")
        if not (isinstance(quantiles, dict) and all(re.fullmatch(r"p\d\d", k) and _is_number(v) for k, v in quantiles.items())):
            return "has malformed quantiles"
        return None
    if kind == "categorical":
        counts = profile.get("counts")
        if not (isinstance(counts, dict) and all(_is_count(v) for v in counts.values())):
            return "has malformed level counts"
        if not (_is_number(profile.get("other_fraction", 0.0)) and 0.0 <= profile.get("other_fraction", 0.0) <= 1.0):
            return "has a malformed other_fraction"
        return None
    return f"has unknown type {kind!r}"


# --------------------------------------------------------------------------------------- capture


def _media_type(value: Any) -> str:
    return str(value or "").split(";", 1)[0].strip().lower()


def _payload(block: Any) -> Tuple[str, Any]:
    """(kind "csv" | "json", text or already-parsed JSON) of an endpointInput/endpointOutput block."""
    if not isinstance(block, dict):
        raise _Malformed("missing_fields")
    data = block.get("data")
    encoding = str(block.get("encoding") or "").upper()
    media = _media_type(block.get("observedContentType"))
    if isinstance(data, (dict, list)):
        return "json", data
    if not isinstance(data, str):
        raise _Malformed("missing_fields")
    if encoding == "BASE64":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # bad base64, or bytes that are not UTF-8 text
            raise _Malformed("undecodable_base64") from None
    elif encoding in ("CSV", "JSON"):
        text = data
    else:
        raise _Malformed("unknown_encoding")
    if "json" in media:
        return "json", text
    if "csv" in media:
        return "csv", text
    if encoding in ("CSV", "JSON"):
        return encoding.lower(), text
    return ("json" if text.lstrip()[:1] in ("{", "[") else "csv"), text


def _json(text: Any, reason: str) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise _Malformed(reason) from None


def decode_rows(kind: str, payload: Any, features: Sequence[str]) -> List[list]:
    """A request's rows of raw values in feature order, as inference.py reads them."""
    n = len(features)
    if kind == "csv":
        rows = _csv_rows(payload)
        if rows and rows[0] == list(features):
            rows = rows[1:]  # a header row, which inference.py skips too
        if not rows:
            raise _Malformed("empty_payload")
        if any(len(row) != n for row in rows):
            raise _Malformed("wrong_column_count")
        return rows
    obj = _json(payload, "invalid_json_payload")
    instances = obj
    if isinstance(obj, dict):
        instances = obj["instances"] if "instances" in obj else [obj]
    if not isinstance(instances, list) or not instances:
        raise _Malformed("invalid_json_instances")
    if all(isinstance(item, dict) for item in instances):
        known = set(features)
        if any(key not in known for item in instances for key in item):
            raise _Malformed("unknown_feature")
        rows = [[item.get(name) for name in features] for item in instances]
    else:
        if not any(isinstance(item, (list, dict)) for item in instances):
            instances = [instances]  # one bare row
        if not all(isinstance(item, list) for item in instances):
            raise _Malformed("invalid_json_instances")
        if any(len(item) != n for item in instances):
            raise _Malformed("wrong_column_count")
        rows = instances
    if any(isinstance(value, (list, dict)) for row in rows for value in row):
        raise _Malformed("invalid_json_instances")
    return rows


def _number(value: Any) -> float:
    """A numeric cell as float (NaN = missing); _Malformed for text that is no (finite) number."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        if value in _NULLS:
            return math.nan
        try:
            number = float(value)
        except ValueError:
            raise _Malformed("non_numeric_value") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # a JSON integer beyond any float
            raise _Malformed("non_numeric_value") from None
    else:
        raise _Malformed("non_numeric_value")
    if math.isnan(number):
        return math.nan
    if not abs(number) <= FLOAT32_MAX:  # infinite, or beyond float32 (which training rejects)
        raise _Malformed("non_numeric_value")
    return number


def _category(value: Any) -> Optional[str]:
    if value is None or (isinstance(value, str) and value in _NULLS):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value if isinstance(value, str) else str(value)


def decode_labels(kind: str, payload: Any) -> List[str]:
    """Predicted labels of a response: inference.py's JSON ({"predictions": [...]}) or CSV (one per line)."""
    if kind == "csv":
        rows = _csv_rows(payload)
        if not rows or any(len(row) != 1 for row in rows):
            raise _Malformed("no_predictions")
        return [row[0] for row in rows]
    obj = _json(payload, "invalid_json_payload")
    predictions = obj.get("predictions") if isinstance(obj, dict) else obj
    if not isinstance(predictions, list) or not predictions:
        raise _Malformed("no_predictions")
    labels = []
    for label in predictions:
        if isinstance(label, (list, dict)) or label is None:
            raise _Malformed("no_predictions")
        labels.append(label if isinstance(label, str) else str(label))
    return labels


class Capture:
    """Everything read from the capture files in the window: raw feature values, labels, counters."""

    def __init__(self, baseline: dict, start: datetime, end: datetime):
        self.features = list(baseline["features"])
        self.numeric = [baseline["features"][f]["type"] == "numeric" for f in self.features]
        self.start, self.end = start, end
        self.values: Dict[str, array] = {f: array("d") for f, num in zip(self.features, self.numeric) if num}
        self.levels: Dict[str, Counter] = {f: Counter() for f, num in zip(self.features, self.numeric) if not num}
        self.missing: Counter = Counter()
        self.labels: Counter = Counter()
        self.malformed: Counter = Counter()
        self.encodings: Counter = Counter()
        self.rows = 0
        self.predictions = 0
        self.files = 0
        self.bytes = 0
        self.lines = 0
        self.in_window = 0
        self.outside_window = 0

    def read(self, paths: Sequence[Path]) -> None:
        for path in paths:
            with open(path, "rb") as fh:
                self.read_lines(fh)

    def read_lines(self, lines: Iterable[bytes]) -> None:
        """One capture file (or S3 object) given as its lines, line endings included."""
        self.files += 1
        for line in lines:
            self.bytes += len(line)
            if line.strip():
                self.lines += 1
                self.add_line(line)

    def add_line(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # bad JSON, a truncated line, not UTF-8, absurd nesting
            self.malformed["invalid_json_line"] += 1
            return
        capture = event.get("captureData") if isinstance(event, dict) else None
        meta = event.get("eventMetadata") if isinstance(event, dict) else None
        if not isinstance(capture, dict) or not isinstance(meta, dict) or not isinstance(meta.get("inferenceTime"), str):
            self.malformed["missing_fields"] += 1
            return
        try:
            when = parse_time(meta["inferenceTime"])
        except ValueError:
            self.malformed["invalid_inference_time"] += 1
            return
        if not self.start <= when < self.end:
            self.outside_window += 1
            return
        self.in_window += 1
        request, response = capture.get("endpointInput"), capture.get("endpointOutput")
        if request is None and response is None:  # capture can be INPUT-only or OUTPUT-only, not neither
            self.malformed["missing_fields"] += 1
            return
        columns = None
        try:
            if request is not None:
                kind, payload = _payload(request)
                columns = self._columns(decode_rows(kind, payload, self.features))
                self.encodings[str(request.get("encoding") or "").upper() or "NONE"] += 1
        except _Malformed as exc:  # the endpoint rejected such a request too: the record is skipped
            self.malformed[exc.reason] += 1
            return
        labels = None
        problem = None
        if response is not None:
            try:
                kind, payload = _payload(response)
                labels = decode_labels(kind, payload)
            except _Malformed as exc:  # the request's rows still count
                problem = "output_" + exc.reason
        if columns is not None:
            self._add_columns(columns)
        if labels is not None:
            self.labels.update(labels)
            self.predictions += len(labels)
        if problem:
            self.malformed[problem] += 1

    def _columns(self, rows: List[list]) -> List[list]:
        """Per-feature typed values of one payload; every cell is checked before anything is kept."""
        columns = []
        for j, numeric in enumerate(self.numeric):
            if numeric:
                columns.append([_number(row[j]) for row in rows])
            else:
                columns.append([_category(row[j]) for row in rows])
        return columns

    def _add_columns(self, columns: List[list]) -> None:
        self.rows += len(columns[0]) if columns else 0
        for name, numeric, column in zip(self.features, self.numeric, columns):
            if numeric:
                self.values[name].extend(column)
                self.missing[name] += sum(1 for v in column if v != v)
            else:
                present = [v for v in column if v is not None]
                self.levels[name].update(present)
                self.missing[name] += len(column) - len(present)


# ------------------------------------------------------------------------------------ S3, registry


def _aws_errors() -> Tuple[type, ...]:
    """botocore's exception bases (a client object implies botocore is installed)."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover
        return ()
    return BotoCoreError, ClientError


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(((response or {}).get("Error") or {}).get("Code") or "") if isinstance(response, dict) else ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def parse_s3_uri(uri: str) -> Tuple[str, str]:
    """(bucket, key or prefix) of ``s3://bucket/key``; ValueError if ``uri`` is not one."""
    match = _S3_URI_RE.match(uri)
    if not match:
        raise ValueError(f"not an S3 URI (s3://bucket/prefix): {uri!r}")
    return match.group(1), match.group(2) or ""


def baseline_object(uri: str) -> Tuple[str, str]:
    """(bucket, key) of the baseline named by ``uri``: a ``.json`` object, or a prefix holding baseline.json."""
    bucket, key = parse_s3_uri(uri)
    if not key.lower().endswith(".json"):
        key = f"{key.rstrip('/')}/{BASELINE_FILE}".lstrip("/")
    return bucket, key


def read_s3_baseline(s3: Any, uri: str) -> Tuple[dict, str]:
    """The checked baseline at ``uri`` and the object's URI."""
    bucket, key = baseline_object(uri)
    name = f"s3://{bucket}/{key}"
    last: Optional[BaseException] = None
    for _ in range(S3_READ_ATTEMPTS):
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
            try:
                data = response["Body"].read()
            finally:
                response["Body"].close()
            return parse_baseline(data, name), name
        except _aws_errors() as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise DriftCheckError(f"baseline file {name} does not exist") from None
            if _error_code(exc):  # the service answered: access denied, no such bucket, ...
                raise DriftCheckError(f"cannot read baseline file {name}: {_one_line(exc)}") from None
            last = exc  # a broken connection or stream: try again
    raise DriftCheckError(f"cannot read baseline file {name}: {_one_line(last)}")


# Where RegisterModel puts baseline.json: DriftCheckBaselines by default. With the model-build
# pipeline's Model Monitor data-quality baseline on, that slot holds Model Monitor's statistics and
# baseline.json is registered as the model's data statistics (ModelMetrics), which only that mode
# sets: tried first, so the other file is not even read.
PACKAGE_BASELINE_FIELDS = (
    ("ModelMetrics", "ModelDataQuality", "Statistics"),
    ("DriftCheckBaselines", "ModelDataQuality", "Statistics"),
)


def package_baseline_uris(sagemaker: Any, arn: str) -> List[Tuple[str, str]]:
    """(field, S3 URI) of the statistics a model package version was registered with, in PACKAGE_BASELINE_FIELDS order."""
    try:
        package = sagemaker.describe_model_package(ModelPackageName=arn)
    except _aws_errors() as exc:
        raise DriftCheckError(f"cannot describe model package {arn}: {_one_line(exc)}") from None
    found = []
    for path in PACKAGE_BASELINE_FIELDS:
        value: Any = package
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        uri = value.get("S3Uri") if isinstance(value, dict) else None
        if uri:
            field = ".".join(path) + ".S3Uri"
            try:
                parse_s3_uri(uri)
            except ValueError:
                raise DriftCheckError(f"model package {arn}: {field} is not an S3 URI: {uri!r}") from None
            found.append((field, uri))
    if not found:
        raise DriftCheckError(f"model package {arn} has no drift-check baseline "
                              f"({' or '.join('.'.join(path) + '.S3Uri' for path in reversed(PACKAGE_BASELINE_FIELDS))})")
    return found


class S3Capture:
    """An endpoint's capture objects under a data-capture destination, read hour folder by hour folder.

    SageMaker writes ``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``. The variants
    come from one delimited listing of ``<destination>/<endpoint>/``; then only the window's hour
    folders (``capture_hours``: the window plus FOLDER_SLACK, as for a directory) are listed, so
    the cost does not grow with the capture history.
    """

    def __init__(self, s3: Any, destination: str, endpoint: str, start: datetime, end: datetime):
        self.s3 = s3
        self.bucket, prefix = parse_s3_uri(destination)
        prefix = prefix.rstrip("/")
        self.prefix = f"{prefix}/{endpoint}/" if prefix else f"{endpoint}/"
        self.hours = capture_hours(start, end)
        self.variants: List[str] = []
        self.list_requests = 0
        self.hour_prefixes_listed = 0
        self.objects_missing = 0
        self.stream_retries = 0

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _pages(self, **params: str) -> Iterator[dict]:
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, **params):
                self.list_requests += 1
                yield page
        except _aws_errors() as exc:
            raise DriftCheckError(f"listing s3://{self.bucket}/{params['Prefix']} failed: {_one_line(exc)}") from None

    def list_objects(self) -> List[Tuple[str, int]]:
        """(key, size) of every ``.jsonl`` object in the window's hour folders, in key order."""
        for page in self._pages(Prefix=self.prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes") or []:
                variant = common["Prefix"][len(self.prefix):].rstrip("/")
                if variant and not variant.startswith("."):
                    self.variants.append(variant)
        self.variants.sort()
        objects = []
        for variant in self.variants:
            for hour in self.hours:
                self.hour_prefixes_listed += 1
                for page in self._pages(Prefix=f"{self.prefix}{variant}/{hour:%Y/%m/%d/%H}/"):
                    for item in page.get("Contents") or []:
                        name = item["Key"].rsplit("/", 1)[-1]
                        if name.lower().endswith(".jsonl") and not name.startswith("."):
                            objects.append((item["Key"], int(item.get("Size") or 0)))
        return sorted(objects)

    def read_into(self, capture: Capture, objects: Sequence[Tuple[str, int]]) -> None:
        for key, size in objects:
            body = self._open(key, 0)
            if body is None:  # expired or deleted since the listing
                self.objects_missing += 1
                print(f"[drift] WARNING: s3://{self.bucket}/{key} disappeared after it was listed; skipped", flush=True)
                continue
            capture.read_lines(self._lines(key, size, body))

    def _open(self, key: str, offset: int) -> Any:
        params = {"Bucket": self.bucket, "Key": key}
        if offset:
            params["Range"] = f"bytes={offset}-"
        try:
            return self.s3.get_object(**params)["Body"]
        except _aws_errors() as exc:
            if offset == 0 and _error_code(exc) == "NoSuchKey":
                return None
            raise DriftCheckError(f"cannot read s3://{self.bucket}/{key}: {_one_line(exc)}") from None

    def _lines(self, key: str, size: int, body: Any) -> Iterator[bytes]:
        """The object's lines (endings kept), streamed; a broken stream resumes after the last whole line."""
        offset = 0  # bytes of the lines handed out so far
        failures = 0
        while True:
            buffer = bytearray()
            scan = 0
            broken: Optional[BaseException] = None
            try:
                while True:
                    chunk = body.read(S3_CHUNK_BYTES)
                    if not chunk:
                        break
                    buffer += chunk
                    start = 0
                    newline = buffer.find(b"\n", scan)
                    while newline >= 0:
                        line = bytes(buffer[start:newline + 1])
                        offset += len(line)
                        yield line
                        start = newline + 1
                        newline = buffer.find(b"\n", start)
                    del buffer[:start]
                    scan = len(buffer)
            except _aws_errors() as exc:  # a reset connection, a read timeout, a short body
                broken = exc
            finally:
                body.close()
            if broken is None:
                if buffer:
                    yield bytes(buffer)  # a last line without a line break
                return
            failures += 1
            if failures >= S3_READ_ATTEMPTS:
                raise DriftCheckError(f"reading s3://{self.bucket}/{key} failed {failures} times: {_one_line(broken)}")
            self.stream_retries += 1
            print(f"[drift] WARNING: reading s3://{self.bucket}/{key} broke off ({_one_line(broken)}); "
                  f"resuming at byte {offset}", flush=True)
            if offset >= size:
                return
            body = self._open(key, offset)
            if body is None:
                raise DriftCheckError(f"s3://{self.bucket}/{key} disappeared while it was read")

    def summary(self) -> dict:
        return {
            "uri": self.uri,
            "variants": list(self.variants),
            "hours": {"count": len(self.hours), "first": format_time(self.hours[0]) if self.hours else None,
                      "last": format_time(self.hours[-1]) if self.hours else None},
            "hour_prefixes_listed": self.hour_prefixes_listed,
            "list_requests": self.list_requests,
            "objects_missing": self.objects_missing,
            "stream_retries": self.stream_retries,
        }


# ---------------------------------------------------------------------------------------- scores


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


# ---------------------------------------------------------------------------------------- report


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


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------------------- metrics


def metric_data(report: dict, timestamp: datetime) -> List[dict]:
    """The CloudWatch data points of a report, in a fixed order."""
    endpoint = {"Name": "EndpointName", "Value": str(report["endpoint_name"])[:MAX_DIMENSION_VALUE]}

    def datum(name: str, value: float, unit: str, extra: Sequence[dict] = ()) -> dict:
        return {"MetricName": name, "Dimensions": [endpoint, *extra], "Timestamp": timestamp,
                "Value": float(value), "Unit": unit}

    no_data = report["status"] == "no_capture_data"
    data = [
        datum("NoCaptureData", 1.0 if no_data else 0.0, "Count"),
        datum("RowsAnalysed", report["rows_analysed"], "Count"),
        datum("MalformedRecords", report["malformed_records"], "Count"),
    ]
    if no_data:
        return data
    if report["rows_analysed"]:
        data.append(datum("DriftedFeatures", report["drifted_count"], "Count"))
    if report["prediction_drift"] and report["prediction_drift"]["psi"] is not None:
        data.append(datum("PredictionDriftScore", report["prediction_drift"]["psi"], "None"))
    for name in sorted(report["features"]):
        score = report["features"][name]["psi"]
        if score is not None:
            data.append(datum("FeatureDriftScore", score, "None",
                              [{"Name": "Feature", "Value": name[:MAX_DIMENSION_VALUE]}]))
    return data


def metric_batches(data: Sequence[dict]) -> Iterator[List[dict]]:
    """Chunks within PutMetricData's limits: METRICS_PER_CALL points and about MAX_CALL_BYTES each."""
    batch: List[dict] = []
    size = 0
    for datum in data:
        # The query protocol (the largest encoding botocore may use) spells out every member path:
        # 1.4-1.7 times a data point's JSON; 2 times is a safe estimate.
        datum_size = 2 * len(json.dumps(datum, default=str))
        if batch and (len(batch) >= METRICS_PER_CALL or size + datum_size > MAX_CALL_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(datum)
        size += datum_size
    if batch:
        yield batch


def publish_metrics(client: Any, namespace: str, data: Sequence[dict]) -> int:
    """PutMetricData in batches; the number of calls made. PublishError on an AWS error."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        aws_errors: Tuple[type, ...] = (BotoCoreError, ClientError)
    except ImportError:  # pragma: no cover - a client object implies botocore
        aws_errors = ()
    calls = 0
    for batch in metric_batches(data):
        try:
            client.put_metric_data(Namespace=namespace, MetricData=batch)
        except aws_errors as exc:
            raise PublishError(f"publishing metrics to CloudWatch failed: {' '.join(str(exc).split())}") from None
        calls += 1
    return calls


def _region() -> Optional[str]:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def make_cloudwatch_client() -> Any:
    region = _region()
    if not region:
        raise DriftCheckError("no AWS region to publish metrics to: set AWS_REGION (or use --no-publish-metrics)")
    try:
        import boto3
    except ImportError:
        raise DriftCheckError("boto3 is not installed, so metrics cannot be published (use --no-publish-metrics)") from None
    return boto3.client("cloudwatch", region_name=region)


def make_client(service: str, purpose: str) -> Any:
    """A boto3 client (standard retry mode: throttling and 5xx are retried with backoff)."""
    region = _region()
    if not region:
        raise DriftCheckError(f"no AWS region to {purpose}: set AWS_REGION")
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise DriftCheckError(f"boto3 is not installed, so the script cannot {purpose}") from None
    return boto3.client(service, region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 8}))


# ------------------------------------------------------------------------------------------ main

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    write_atomically(output_dir / REPORT_JSON, report_json(report))
    write_atomically(output_dir / REPORT_HTML, report_html(report))
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
