"""Reading an endpoint's captured requests and responses in a time window, from a directory or from S3."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import os
import re
from array import array
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from stepkit import NULL_VALUES, aws_error_code, aws_errors, format_time, one_line, parse_time

from .aws import parse_s3_uri
from .baseline import S3_READ_ATTEMPTS
from .errors import DriftCheckError

_NULLS = frozenset(NULL_VALUES)
FOLDER_SLACK = timedelta(hours=1)  # hour folders this far outside the window are still read
S3_CHUNK_BYTES = 1 << 20  # read size of a capture object's stream
FLOAT32_MAX = float(np.finfo(np.float32).max)


class _Malformed(Exception):
    """A capture line or payload that cannot be used; ``reason`` names the counter."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason



def _csv_rows(payload: str) -> List[List[str]]:
    """The non-empty rows of a CSV payload; malformed CSV is a malformed record."""
    try:
        return [row for row in csv.reader(io.StringIO(payload)) if row]
    except csv.Error:
        raise _Malformed("invalid_csv") from None


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
        except aws_errors() as exc:
            raise DriftCheckError(f"listing s3://{self.bucket}/{params['Prefix']} failed: {one_line(exc)}") from None

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
        except aws_errors() as exc:
            if offset == 0 and aws_error_code(exc) == "NoSuchKey":
                return None
            raise DriftCheckError(f"cannot read s3://{self.bucket}/{key}: {one_line(exc)}") from None

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
            except aws_errors() as exc:  # a reset connection, a read timeout, a short body
                broken = exc
            finally:
                body.close()
            if broken is None:
                if buffer:
                    yield bytes(buffer)  # a last line without a line break
                return
            failures += 1
            if failures >= S3_READ_ATTEMPTS:
                raise DriftCheckError(f"reading s3://{self.bucket}/{key} failed {failures} times: {one_line(broken)}")
            self.stream_retries += 1
            print(f"[drift] WARNING: reading s3://{self.bucket}/{key} broke off ({one_line(broken)}); "
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
