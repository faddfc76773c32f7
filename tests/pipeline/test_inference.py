"""Serving handlers: CSV and JSON round trips with the local run's model, and client errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline_code.steps import inference, preprocess

from .conftest import SAMPLE, SAMPLE_TARGET


@pytest.fixture(scope="module")
def bundle(local_pipeline):
    assert local_pipeline.code == 0, local_pipeline.out + local_pipeline.err
    return inference.model_fn(str(local_pipeline.model_dir))


@pytest.fixture(scope="module")
def raw():
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    return frame.drop(columns=SAMPLE_TARGET), frame[SAMPLE_TARGET]


def _csv(features: pd.DataFrame) -> str:
    return features.to_csv(header=False, index=False, lineterminator="\n")


def _invoke(bundle, body, content_type, accept):
    return inference.output_fn(inference.predict_fn(inference.input_fn(body, content_type), bundle), accept)


def _expected_labels(bundle, features: pd.DataFrame) -> np.ndarray:
    """What preprocessing + model give for the same rows, without the handlers' parsing."""
    frame = features.replace("", np.nan).copy()
    for name in bundle["numeric"]:
        frame[name] = frame[name].astype(np.float32)
    X = bundle["preprocessor"].transform(frame).to_numpy(np.float32)
    return bundle["model"].predict(X)


def test_csv_round_trip(bundle, raw):
    features, labels = raw
    body, content_type = _invoke(bundle, _csv(features.iloc[:300]), "text/csv", "text/csv")
    assert content_type == "text/csv"
    predicted = body.splitlines()
    assert len(predicted) == 300 and set(predicted) <= {"low", "medium", "high"}
    assert predicted == list(_expected_labels(bundle, features.iloc[:300]))
    assert np.mean(np.array(predicted) == labels.iloc[:300].to_numpy()) > 0.8


def test_csv_accepts_bytes_charset_and_a_header_row(bundle, raw):
    features, _ = raw
    with_header = features.iloc[:5].to_csv(index=False, lineterminator="\n").encode("utf-8")
    body, _ = _invoke(bundle, with_header, "text/csv; charset=utf-8", "text/csv")
    assert body.splitlines() == _invoke(bundle, _csv(features.iloc[:5]), "text/csv", "text/csv")[0].splitlines()


def test_json_instances_as_rows_and_as_objects(bundle, raw):
    features, _ = raw
    rows = features.iloc[:20]
    csv_labels = _invoke(bundle, _csv(rows), "text/csv", "text/csv")[0].splitlines()
    as_rows = [[None if v == "" else v for v in r] for r in rows.values.tolist()]
    # Numbers as JSON numbers, as a client would send them.
    for r in as_rows:
        for i, name in enumerate(bundle["features"]):
            if name in bundle["numeric"] and r[i] is not None:
                r[i] = float(r[i])
    as_objects = [{k: v for k, v in zip(bundle["features"], r) if v is not None} for r in as_rows]
    for payload in ({"instances": as_rows}, as_rows, {"instances": as_objects}):
        body, content_type = _invoke(bundle, json.dumps(payload), "application/json", "application/json")
        result = json.loads(body)
        assert content_type == "application/json"
        assert result["predictions"] == csv_labels
        assert result["classes"] == ["high", "low", "medium"]
        probabilities = np.array(result["probabilities"])
        assert probabilities.shape == (20, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
        assert [result["classes"][i] for i in probabilities.argmax(axis=1)] == csv_labels


def test_single_json_object_and_default_accept(bundle, raw):
    features, _ = raw
    row = dict(zip(bundle["features"], features.iloc[0].tolist()))
    body, content_type = _invoke(bundle, json.dumps(row), "application/json", "*/*")
    assert content_type == "application/json" and len(json.loads(body)["predictions"]) == 1


def test_unseen_category_and_missing_values_are_handled(bundle, raw):
    features, _ = raw
    rows = features.iloc[:3].copy()
    rows["region"] = ["atlantis", "", "north"]
    rows["income"] = ["", "NA", "52000"]
    body, _ = _invoke(bundle, _csv(rows), "text/csv", "application/json")
    assert len(json.loads(body)["predictions"]) == 3


def test_wrong_content_type_is_415(bundle):
    with pytest.raises(inference.InferenceRequestError) as info:
        inference.input_fn("1,2,3", "application/x-parquet")
    assert info.value.status_code == 415 and "application/x-parquet" in str(info.value)


@pytest.mark.parametrize("cut", [1, -1])
def test_wrong_column_count_is_400_naming_expected_and_got(bundle, raw, cut):
    features, _ = raw
    rows = features.iloc[:4, :cut] if cut == -1 else features.iloc[:4].assign(extra="x")
    n = len(bundle["features"])
    got = n - 1 if cut == -1 else n + 1
    with pytest.raises(inference.InferenceRequestError) as info:
        _invoke(bundle, _csv(rows), "text/csv", "text/csv")
    assert info.value.status_code == 400
    assert f"expected {n} columns, got {got}" in info.value.message


def test_wrong_column_count_in_json_is_400(bundle):
    with pytest.raises(inference.InferenceRequestError) as info:
        _invoke(bundle, json.dumps({"instances": [[1, 2, 3]]}), "application/json", "application/json")
    assert info.value.status_code == 400 and f"expected {len(bundle['features'])} columns, got 3" in info.value.message


@pytest.mark.parametrize("body, content_type, needle", [
    ("{not json", "application/json", "malformed application/json"),
    (json.dumps({"instances": []}), "application/json", "non-empty list"),
    (json.dumps({"instances": [{"age": 1, "colour": "red"}]}), "application/json", "unknown feature name(s) colour"),
    ("", "text/csv", "empty text/csv payload"),
])
def test_malformed_payloads_are_400(bundle, body, content_type, needle):
    with pytest.raises(inference.InferenceRequestError) as info:
        _invoke(bundle, body, content_type, "application/json")
    assert info.value.status_code == 400 and needle in info.value.message


def test_text_in_a_numeric_column_is_400(bundle, raw):
    features, _ = raw
    rows = features.iloc[:2].copy()
    rows["income"] = ["lots", "1"]
    with pytest.raises(inference.InferenceRequestError) as info:
        _invoke(bundle, _csv(rows), "text/csv", "text/csv")
    assert info.value.status_code == 400 and "column 'income'" in info.value.message and "'lots'" in info.value.message


def test_unsupported_accept_is_406(bundle, raw):
    features, _ = raw
    prediction = inference.predict_fn(inference.input_fn(_csv(features.iloc[:2]), "text/csv"), bundle)
    with pytest.raises(inference.InferenceRequestError) as info:
        inference.output_fn(prediction, "application/x-protobuf")
    assert info.value.status_code == 406


def test_errors_become_responses_under_the_flask_server(bundle, monkeypatch):
    """The container's gunicorn/Flask server turns raised errors into 500s: there they travel as values."""
    monkeypatch.setattr(inference, "_flask_request_active", lambda: True)
    monkeypatch.setattr(inference, "_flask_error_response", lambda error: ("response", error.status_code, error.message))
    assert _invoke(bundle, "1,2", "application/x-foo", "text/csv")[:2] == ("response", 415)
    response = _invoke(bundle, "1,2", "text/csv", "text/csv")
    assert response[:2] == ("response", 400) and "got 2" in response[2]


def test_error_class_carries_toolkit_attributes():
    error = inference.UnsupportedContentTypeError("nope")
    assert (error.status_code, error.message, error.phrase) == (415, "nope", "nope")
    assert isinstance(error, ValueError)


def test_null_values_match_preprocess():
    assert inference.NULL_VALUES == preprocess.NULL_VALUES


def test_categories_with_stray_spaces_predict_like_trimmed_ones(bundle, raw):
    """Training trims categories (preprocess.py); requests with the same stray spaces get the same answer."""
    features = raw[0].head(40)
    spaced = features.copy()
    for name in bundle["categorical"]:
        spaced[name] = " " + spaced[name] + "  "
    as_json = {"instances": spaced.to_dict(orient="records")}
    got, _ = _invoke(bundle, json.dumps(as_json), "application/json", "application/json")
    want, _ = _invoke(bundle, _csv(features), "text/csv", "application/json")
    assert json.loads(got)["predictions"] == json.loads(want)["predictions"]
