"""The training-feature profile (preprocess.py's baseline.json): from a file, an S3 object or a model package."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, List, Optional, Tuple

from stepkit import aws_error_code, aws_errors, one_line

from .aws import parse_s3_uri
from .errors import DriftCheckError, NotABaseline

BASELINE_FORMAT_VERSION = 1  # the baseline.json format this check reads (preprocess.py's FORMAT_VERSION)
BASELINE_FILE = "baseline.json"
S3_READ_ATTEMPTS = 3  # a broken S3 stream is read (or resumed) this many times in all


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
        raise DriftCheckError(f"baseline file {path} is not valid JSON: {one_line(exc)}") from None
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
        except aws_errors() as exc:
            if aws_error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise DriftCheckError(f"baseline file {name} does not exist") from None
            if aws_error_code(exc):  # the service answered: access denied, no such bucket, ...
                raise DriftCheckError(f"cannot read baseline file {name}: {one_line(exc)}") from None
            last = exc  # a broken connection or stream: try again
    raise DriftCheckError(f"cannot read baseline file {name}: {one_line(last)}")


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
    except aws_errors() as exc:
        raise DriftCheckError(f"cannot describe model package {arn}: {one_line(exc)}") from None
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
