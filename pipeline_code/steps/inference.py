"""Serving handlers for the SageMaker scikit-learn container: model_fn, input_fn, predict_fn, output_fn.

model.tar.gz (written by train.py) holds ``model.joblib`` (the estimator) and
``preprocessor.joblib`` (the fitted ColumnTransformer plus the raw feature names and types). Each
request carries RAW feature values, which go through the same preprocessor, then the model.

Requests (Content-Type):
  ``text/csv``          one row per line, no header (a first line equal to the feature names is
                        skipped), columns in the raw feature order without the target; empty cells
                        and NA/NaN/NULL/None are missing values.
  ``application/json``  ``{"instances": [[v1, v2, ...], ...]}`` (rows in raw feature order) or
                        ``{"instances": [{"feature": value, ...}, ...]}`` (keyed by feature name;
                        absent keys are missing values), or the bare list; a single object keyed by
                        feature name is one row. ``null`` is a missing value.
Responses (Accept; ``*/*`` or none means JSON):
  ``application/json``  ``{"predictions": [label, ...], "classes": [...],
                        "probabilities": [[p per class, in "classes" order], ...]}``
  ``text/csv``          one predicted label per line.

Client errors carry an HTTP status: 415 for an unsupported Content-Type, 406 for an unsupported
Accept, 400 for a malformed payload, e.g. ``expected 10 columns, got 9``. They are raised as the
inference toolkit's ``GenericInferenceToolkitError`` (a small stand-in with the same ``status_code``
attribute where the toolkit is not installed), which the toolkit's model server turns into that
status. The container's default single-model server (gunicorn + Flask, sagemaker-containers)
turns any exception from a handler into a 500 instead; there, while a Flask request is being
served, input_fn hands the error on as a value and output_fn returns it as a Flask response with
the right status.

Per request the work is vectorised and nothing is rebuilt: model_fn prepares the Arrow CSV
options, compiles the fitted preprocessor into the same numpy operations (used only after they
reproduced its output exactly on a probe; otherwise the preprocessor itself runs) and keeps a
single-threaded copy of a multi-threaded estimator for requests under SERIAL_MAX_ROWS rows; CSV
payloads are parsed by Arrow's CSV reader. benchmarks/inference_latency.py measures all this, and
shows that each of the two fast paths is needed for its goals (``--without``).

Self-contained on purpose (train.py copies this one file into every model.tar.gz): Python 3.9+,
scikit-learn 1.2, pandas 1.1+, pyarrow (in the container: it parses the CSV payloads).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import sys
from typing import Any, Dict, List, Optional, Sequence

import joblib
import numpy as np
import pandas as pd

import pyarrow as pa
import pyarrow.csv as pcsv

try:
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        """Stand-in for sagemaker_inference.errors.GenericInferenceToolkitError (same attributes)."""

        def __init__(self, status_code, message=None, phrase=None):
            self.status_code = status_code
            self.message = message or "Invalid Request"
            self.phrase = phrase or self.message
            super().__init__(status_code, self.message, self.phrase)


CSV = "text/csv"
JSON = "application/json"
# Below this many rows a request is predicted by a copy of the estimator with n_jobs=1. A random
# forest trained with n_jobs=-1 predicts through a thread pool: its start-up and the GIL around each
# tree's Python work cost more than the threads gain until batches are large. On 2 vCPUs (the
# default ml.m5.large endpoint and transform instances) threads are ~5x slower for 1 row, ~1.5x
# for 1,000 rows, and break even between 10,000 and 20,000 rows.
SERIAL_MAX_ROWS = 10_000
# Cells read as missing; the same list as preprocess.py (kept in step by a test).
NULL_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "NULL", "null", "None", "#N/A", "<NA>"]
_NULLS = frozenset(NULL_VALUES)


class InferenceRequestError(_ToolkitError, ValueError):
    """A client error: 400 unless a subclass says otherwise."""

    status = 400

    def __init__(self, message: str):
        super().__init__(self.status, message, message)
        self.status_code = self.status
        self.message = message

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


class UnsupportedContentTypeError(InferenceRequestError):
    status = 415


class NotAcceptableError(InferenceRequestError):
    status = 406


class Request:
    """What input_fn returns: the decoded request, parsed against the model's schema in predict_fn."""

    __slots__ = ("kind", "body")

    def __init__(self, kind: str, body: Any):
        self.kind, self.body = kind, body


class _Rejected:
    """A client error handed from input_fn to output_fn under the Flask server (see module doc)."""

    def __init__(self, error: InferenceRequestError):
        self.error = error


def _flask_request_active() -> bool:
    flask = sys.modules.get("flask")
    try:
        return bool(flask is not None and flask.has_request_context())
    except Exception:  # pragma: no cover - defensive: never let the check itself fail a request
        return False


def _flask_error_response(error: InferenceRequestError):
    import flask

    body = json.dumps({"error": type(error).__name__, "error-message": error.message})
    return flask.Response(body, status=error.status_code, mimetype=JSON)


# ------------------------------------------------------------------------------------ model_fn


def model_fn(model_dir: str) -> Dict[str, Any]:
    """Load the estimator and the preprocessing artifact from the unpacked model.tar.gz."""
    model = joblib.load(os.path.join(model_dir, "model.joblib"))
    payload = joblib.load(os.path.join(model_dir, "preprocessor.joblib"))
    features = list(payload["feature_columns"])
    types = payload["feature_types"]
    numeric = [f for f in features if types[f] == "numeric"]
    bundle = {
        "model": model,
        "preprocessor": payload["preprocessor"],
        "features": features,
        "numeric": numeric,
        "categorical": [f for f in features if types[f] != "numeric"],
        "numeric_set": frozenset(numeric),
        "classes": np.asarray(model.classes_),
        "has_proba": hasattr(model, "predict_proba"),
        "header": ",".join(features),
    }
    bundle["arrow_types"] = {f: (pa.float32() if types[f] == "numeric" else pa.string()) for f in features}
    # Built once: a request only picks the variant that skips a header line.
    bundle["arrow_read"] = [pcsv.ReadOptions(column_names=features, skip_rows=skip, use_threads=False) for skip in (0, 1)]
    bundle["arrow_convert"] = pcsv.ConvertOptions(
        column_types=bundle["arrow_types"], null_values=NULL_VALUES, strings_can_be_null=True
    )
    bundle["csv_quote"] = any(re.search(r'[",\r\n]', str(c)) for c in bundle["classes"].tolist())
    bundle["serial_model"] = _serial_copy(model)
    bundle["transform"] = _compile_transform(bundle)
    return bundle


def _serial_copy(model):
    """The estimator with n_jobs=1 when it was trained multi-threaded; it shares the fitted trees."""
    if getattr(model, "n_jobs", None) in (None, 1):
        return model
    serial = copy.copy(model)
    serial.n_jobs = 1
    return serial


class _FastTransform:
    """preprocess.py's fitted ColumnTransformer redone with numpy on the parsed columns.

    The same operations as scikit-learn's transform, in the same order and dtypes (float32 numbers:
    imputed, then ``-= mean_`` and ``/= scale_`` in place; one 0/1 column per frequent level, the
    infrequent column last), without its per-call validation and pandas plumbing, which cost ~3 ms
    per request whatever its size. Built by _compile_transform only after it reproduced the
    transformer's output exactly on a probe of every level, missing and unseen values.
    """

    def __init__(self, width: int, numeric: Any, categorical: List[Any]):
        self.width, self.numeric, self.categorical = width, numeric, categorical

    def __call__(self, columns: Dict[str, Any], n: int) -> Optional[np.ndarray]:
        out = np.zeros((n, self.width), dtype=np.float32)
        if self.numeric is not None:
            names, offset, fill, mean, scale = self.numeric
            block = np.empty((n, len(names)), dtype=np.float32)
            for j, name in enumerate(names):
                block[:, j] = columns[name]
            missing = np.isnan(block)
            if missing.any():
                np.copyto(block, fill, where=missing)
            if np.isinf(block).any():
                return None  # scikit-learn rejects it; let it, with its own error
            if mean is not None:
                block -= mean
            if scale is not None:
                block /= scale
            out[:, offset:offset + len(names)] = block
        rows = np.arange(n)
        for name, codes, missing_code, unknown_code in self.categorical:
            get = codes.get
            index = np.fromiter((get(v, unknown_code) if v == v else missing_code for v in columns[name]),
                                dtype=np.intp, count=n)
            hit = index >= 0
            out[rows[hit], index[hit]] = 1
        return out


def _reference_transform(preprocessor, frame: pd.DataFrame) -> np.ndarray:
    X = preprocessor.transform(frame)
    if isinstance(X, pd.DataFrame):  # the preprocessor emits pandas (float32 + uint8 blocks)
        X = X.to_numpy(dtype=np.float32)
    return X


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _compile_transform(bundle: Dict[str, Any]) -> Optional[_FastTransform]:
    """A _FastTransform equal to the fitted preprocessor, or None (then the preprocessor itself runs)."""
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        pre = bundle["preprocessor"]
        if not isinstance(pre, ColumnTransformer) or getattr(pre, "sparse_output_", True):
            return None
        numeric, categorical, offset = None, [], 0
        for name, step, columns in pre.transformers_:
            if isinstance(step, str) and step == "drop":
                continue
            if not isinstance(step, Pipeline) or len(step.steps) != 2 or len(columns) == 0:
                return None
            imputer, second = step.steps[0][1], step.steps[1][1]
            if type(imputer) is not SimpleImputer or imputer.add_indicator or not _is_nan(imputer.missing_values):
                return None
            columns = list(columns)
            if type(second) is StandardScaler and numeric is None and set(columns) <= set(bundle["numeric"]):
                fill = np.asarray(imputer.statistics_, dtype=np.float64)
                if fill.shape != (len(columns),) or np.isnan(fill).any():
                    return None
                mean = second.mean_ if second.with_mean else None
                scale = second.scale_ if second.with_std else None
                numeric = (columns, offset, fill.astype(np.float32), mean, scale)
                offset += len(columns)
            elif (type(second) is OneHotEncoder and imputer.strategy == "constant" and second.drop_idx_ is None
                  and second.handle_unknown in ("ignore", "infrequent_if_exist")
                  and set(columns) <= set(bundle["categorical"])):
                infrequent = getattr(second, "infrequent_categories_", None) or [None] * len(columns)
                for j, feature in enumerate(columns):
                    levels = second.categories_[j].tolist()
                    rare = set() if infrequent[j] is None else set(infrequent[j].tolist())
                    frequent = [level for level in levels if level not in rare]
                    codes = {level: offset + i for i, level in enumerate(frequent)}
                    width = len(frequent)
                    unknown = -1
                    if rare:
                        codes.update((level, offset + width) for level in rare)
                        if second.handle_unknown == "infrequent_if_exist":
                            unknown = offset + width
                        width += 1
                    missing = codes.get(imputer.statistics_[j], unknown)
                    categorical.append((feature, codes, missing, unknown))
                    offset += width
            else:
                return None
        plan = _FastTransform(offset, numeric, categorical)
        # Accept the plan only if it reproduces the preprocessor exactly: every level of every
        # categorical feature, a missing and an unseen value, and numbers with gaps.
        n = max([len(codes) + 2 for _, codes, _, _ in categorical] + [8])
        probe: Dict[str, Any] = {}
        for k, feature in enumerate(bundle["features"]):
            if feature in bundle["numeric"]:
                values = np.array([np.nan, 0.0, 1.5, -3.25, 12345.678, np.nan, 1e-3, -7.0], dtype=np.float32)
                probe[feature] = np.roll(np.resize(values, n), k)
            else:
                levels = next((list(codes) for name, codes, _, _ in categorical if name == feature), [])
                values = np.empty(n, dtype=object)
                values[:] = (levels + [np.nan, "\x00unseen level"] * n)[:n]
                probe[feature] = values
        expected = _reference_transform(pre, pd.DataFrame(probe, columns=bundle["features"]))
        got = plan(probe, n)
        if got is None or expected.dtype != got.dtype or expected.shape != got.shape or not np.array_equal(expected, got):
            return None
        return plan
    except Exception:  # any surprise: the preprocessor itself serves every request
        return None


# ------------------------------------------------------------------------------------ input_fn


def _media_type(value: Optional[str]) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def input_fn(request_body, content_type):
    """Check the content type and decode the request envelope (415 / 400 errors).

    SageMaker passes the model (and so the feature names and types) only to predict_fn, so the
    model-specific checks and the typed parse (column count, numbers) happen there, in one pass.
    """
    try:
        media = _media_type(content_type)
        if media == CSV:
            data = request_body.encode("utf-8") if isinstance(request_body, str) else bytes(request_body)
            if not data.strip():
                raise InferenceRequestError("empty text/csv payload")
            return Request("csv", data)
        if media == JSON:
            try:
                obj = json.loads(request_body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InferenceRequestError(f"malformed application/json payload: {exc}") from None
            return Request("json", obj)
        raise UnsupportedContentTypeError(
            f"unsupported content type {content_type!r}; send {CSV} (raw rows, no header) or {JSON}"
        )
    except InferenceRequestError as exc:
        if _flask_request_active():
            return _Rejected(exc)
        raise


def _parse_csv(data: bytes, bundle: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Columns by feature name: float32 numbers and str categories, NaN for missing values."""
    features = bundle["features"]
    first_line = data.lstrip().split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    skip = 1 if first_line == bundle["header"] else 0
    try:
        # A BufferReader, not io.BytesIO: Arrow then reads the bytes directly instead of calling
        # back into Python for them.
        table = pcsv.read_csv(
            pa.BufferReader(data), read_options=bundle["arrow_read"][skip], convert_options=bundle["arrow_convert"]
        )
    except pa.ArrowInvalid as exc:
        raise InferenceRequestError(_explain_arrow_error(str(exc), features)) from None
    if table.num_rows == 0:
        raise InferenceRequestError("no rows in the text/csv payload")
    columns = {}
    for name in features:
        col = table.column(name)
        values = col.to_numpy()
        if name not in bundle["arrow_types"] or not pa.types.is_floating(bundle["arrow_types"][name]):
            values = values.astype(object, copy=False)
            if col.null_count:
                values[np.equal(values, None)] = np.nan
        columns[name] = values
    return columns


def _explain_arrow_error(message: str, features: Sequence[str]) -> str:
    message = " ".join(message.split())
    m = re.search(r"Expected (\d+) columns, got (\d+): ?(.*)", message)
    if m:
        row = m.group(3)
        return f"expected {m.group(1)} columns, got {m.group(2)} (row: {row[:100]!r})"
    m = re.search(r"In CSV column #(\d+): .*?invalid value '(.*)'", message)
    if m:
        index = int(m.group(1))
        name = features[index] if index < len(features) else f"#{index + 1}"
        return f"column '{name}' (#{index + 1}) expects a number, got {m.group(2)!r}"
    return f"malformed text/csv payload: {message}"


def _parse_json(obj: Any, bundle: Dict[str, Any]) -> Dict[str, np.ndarray]:
    features = bundle["features"]
    instances = obj
    if isinstance(obj, dict):
        if "instances" in obj:
            instances = obj["instances"]
        else:
            instances = [obj]  # one object keyed by feature name
    if not isinstance(instances, list) or not instances:
        raise InferenceRequestError('application/json payload must be {"instances": [...]} or a non-empty list')
    if all(isinstance(item, dict) for item in instances):
        unknown = sorted({key for item in instances for key in item} - set(features))
        if unknown:
            raise InferenceRequestError(f"unknown feature name(s) {', '.join(unknown[:5])}; expected {', '.join(features)}")
        frame = pd.DataFrame.from_records(instances, columns=features)
    else:
        if not any(isinstance(item, (list, dict)) for item in instances):
            instances = [instances]  # one bare row
        if not all(isinstance(item, list) for item in instances):
            raise InferenceRequestError("application/json instances must all be lists (rows) or all objects (keyed rows)")
        lengths = np.fromiter((len(item) for item in instances), dtype=np.int64, count=len(instances))
        bad = np.flatnonzero(lengths != len(features))
        if bad.size:
            raise InferenceRequestError(
                f"expected {len(features)} columns, got {int(lengths[bad[0]])} (instance {int(bad[0]) + 1})"
            )
        array = np.empty((len(instances), len(features)), dtype=object)
        try:
            array[:] = instances
        except ValueError:
            raise InferenceRequestError("application/json instances must hold scalar values") from None
        frame = pd.DataFrame(array, columns=features)
    return _coerce(frame, bundle)


def _coerce(frame: pd.DataFrame, bundle: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Object columns -> float32 numerics and string categories, with NaN for every missing value."""
    columns = {}
    for name in bundle["features"]:
        raw = frame[name].astype(object)
        if name not in bundle["numeric_set"]:  # categories are trimmed in training (preprocess.py) too
            raw = raw.map(lambda v: v.strip() if isinstance(v, str) else v)
        missing = raw.isna().to_numpy() | raw.isin(_NULLS).to_numpy()
        if name in bundle["numeric_set"]:
            values = pd.to_numeric(raw.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
            bad = np.isnan(values) & ~missing
            if bad.any():
                raise InferenceRequestError(f"column '{name}' expects a number, got {raw[bad].iloc[0]!r}")
            with np.errstate(over="ignore"):  # beyond float32: infinite, rejected with a 400 before predicting
                columns[name] = values.astype(np.float32)
        else:
            values = raw.to_numpy(dtype=object).copy()
            present = ~missing
            if present.any():
                values[present] = raw[present].astype(str).to_numpy(dtype=object)
            values[missing] = np.nan
            columns[name] = values
    return columns


# ---------------------------------------------------------------------------------- predict_fn


def _reject_infinite(columns: Dict[str, Any], model: Dict[str, Any]) -> None:
    """400 for infinite numbers: scikit-learn would fail on them with a server error."""
    for name in model["numeric"]:
        values = np.asarray(columns[name], dtype=np.float32)
        infinite = np.isinf(values)
        if infinite.any():
            row = int(np.argmax(infinite)) + 1
            raise InferenceRequestError(
                f"column {name!r} has an infinite or too large value in row {row}; send finite numbers (empty for missing)"
            )


def predict_fn(input_data, model):
    """Preprocess the raw rows and predict: labels, plus class probabilities where available."""
    if isinstance(input_data, _Rejected):
        return input_data
    try:
        if isinstance(input_data, Request):
            parse = _parse_csv if input_data.kind == "csv" else _parse_json
            columns = parse(input_data.body, model)
        elif isinstance(input_data, pd.DataFrame):
            columns = _coerce(input_data, model)
        else:
            raise InferenceRequestError(f"unexpected input of type {type(input_data).__name__}")  # pragma: no cover
        _reject_infinite(columns, model)
        n = len(columns[model["features"][0]])
        transform = model.get("transform")
        with np.errstate(over="ignore", invalid="ignore"):
            X = transform(columns, n) if transform is not None else None
            if X is None:
                X = _reference_transform(model["preprocessor"], pd.DataFrame(columns, columns=model["features"]))
        if not np.isfinite(X).all():
            row = int(np.argmax(~np.isfinite(X).all(axis=1))) + 1
            raise InferenceRequestError(f"row {row} has a number too large for the model (float32 overflow after scaling)")
    except InferenceRequestError as exc:
        if _flask_request_active():
            return _Rejected(exc)
        raise
    estimator = model["serial_model"] if n < SERIAL_MAX_ROWS and "serial_model" in model else model["model"]
    if model["has_proba"]:
        probabilities = estimator.predict_proba(X)
        labels = model["classes"].take(np.argmax(probabilities, axis=1))
    else:
        probabilities, labels = None, estimator.predict(X)
    return {"labels": labels, "probabilities": probabilities, "classes": model["classes"],
            "csv_quote": model["csv_quote"]}


# ----------------------------------------------------------------------------------- output_fn


def _choose_accept(accept: Optional[str]) -> str:
    for part in (accept or "").split(","):
        media = _media_type(part)
        if media in ("", "*/*", "application/*", JSON):
            return JSON
        if media in (CSV, "text/*"):
            return CSV
    raise NotAcceptableError(f"unsupported accept type {accept!r}; ask for {JSON} or {CSV}")


def output_fn(prediction, accept):
    """Serialise predictions as (body, content type)."""
    if isinstance(prediction, _Rejected):
        return _flask_error_response(prediction.error)
    try:
        media = _choose_accept(accept)
    except NotAcceptableError as exc:
        if _flask_request_active():
            return _flask_error_response(exc)
        raise
    labels = prediction["labels"]
    if media == CSV:
        if prediction.get("csv_quote"):
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows([label] for label in labels.tolist())
            return buffer.getvalue(), CSV
        return "\n".join(map(str, labels.tolist())) + "\n", CSV
    body: Dict[str, List[Any]] = {"predictions": labels.tolist(), "classes": prediction["classes"].tolist()}
    if prediction["probabilities"] is not None:
        body["probabilities"] = np.round(prediction["probabilities"], 6).tolist()
    return json.dumps(body), JSON


__all__ = ["model_fn", "input_fn", "predict_fn", "output_fn", "InferenceRequestError",
           "UnsupportedContentTypeError", "NotAcceptableError", "NULL_VALUES", "Request"]
