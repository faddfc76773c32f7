"""inference.py's fast paths give the answers of the general ones they short-cut.

* CSV payloads, plain and unusual, answer what the model answers on the same rows (Arrow parses them).
* model_fn compiles the fitted preprocessor to numpy (``_FastTransform``), used only when it
  reproduces ``preprocessor.transform`` exactly; otherwise the preprocessor itself runs.
* Requests under SERIAL_MAX_ROWS rows are predicted by an n_jobs=1 copy of the estimator.

The models are the local run's (the bundled sample, real step scripts) and a small one trained
here by the real scripts on a frame with a high-cardinality column, so that the one-hot encoder
has an "infrequent" column and a feature without a "missing" level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from pipeline_code.steps import inference, train

from .conftest import SAMPLE, SAMPLE_TARGET, make_frame, preprocess_frame, run_main, train_env

NULLS = inference.NULL_VALUES

# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def bundle(local_pipeline):
    assert local_pipeline.code == 0, local_pipeline.out + local_pipeline.err
    return inference.model_fn(str(local_pipeline.model_dir))


@pytest.fixture(scope="module")
def sample_dir(local_pipeline) -> Path:
    assert local_pipeline.code == 0, local_pipeline.out + local_pipeline.err
    return local_pipeline.model_dir


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The sample's raw feature cells as strings ('' = empty cell), without the target."""
    return pd.read_csv(SAMPLE, dtype=str, keep_default_na=False).drop(columns=SAMPLE_TARGET)


@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory) -> Path:
    """A model trained by the real scripts on data with > MAX_CATEGORIES levels in one column."""
    root = tmp_path_factory.mktemp("wide-model")
    frame = make_frame(rows=600, seed=3)
    rng = np.random.RandomState(5)
    city = rng.choice([f"c{k:02d}" for k in range(60)], len(frame)).astype(object)
    city[:30] = [f"rare{k}" for k in range(30)]  # seen once each: infrequent
    frame.insert(4, "city", city)
    frame.insert(5, "tier", rng.choice(["gold", "silver"], len(frame)))  # never missing: no "missing" level
    output_dir = preprocess_frame(frame, root)
    run = run_main(train.main, ["--target-column", "label", "--n-estimators", "5", "--checkpoint-dir", str(root / "ckpt")],
                   env=train_env(output_dir, root / "model"))
    assert run.code == 0, run.err
    return root / "model"


@pytest.fixture(scope="module")
def wide_bundle(wide_dir):
    return inference.model_fn(str(wide_dir))


@pytest.fixture(params=["sample", "wide"])
def any_bundle(request, bundle, wide_bundle):
    return bundle if request.param == "sample" else wide_bundle


class _ArrowSpy:
    """Stands in for pyarrow.csv in inference.py, counting read_csv calls."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def read_csv(self, *args, **kwargs):
        self.calls += 1
        return self.real.read_csv(*args, **kwargs)


# ------------------------------------------------------------------------------------- helpers


def _lines(rows: Sequence[Sequence[str]], end: str = "\n") -> bytes:
    return ("\n".join(",".join(row) for row in rows) + end).encode("utf-8")


def _rows(frame: pd.DataFrame) -> List[List[str]]:
    return frame.values.tolist()


def _outcome(bundle, body, content_type="text/csv", accept="application/json"):
    """The handlers' answer, or the client error they raise (status and message)."""
    try:
        prediction = inference.predict_fn(inference.input_fn(body, content_type), bundle)
        return ("ok",) + tuple(inference.output_fn(prediction, accept))
    except inference.InferenceRequestError as exc:
        return ("error", exc.status_code, exc.message)


def _expected_labels(bundle, features: pd.DataFrame) -> np.ndarray:
    """Labels from the fitted preprocessor and the model, without the handlers' parsing or fast paths."""
    frame = features.mask(features.isin(NULLS))
    for name in bundle["numeric"]:
        frame[name] = frame[name].astype(np.float32)
    X = bundle["preprocessor"].transform(frame).to_numpy(np.float32)
    return bundle["model"].predict(X)


# ------------------------------------------------------------------------ CSV payloads vs the model


def _na_token_rows(raw: pd.DataFrame) -> List[List[str]]:
    rows = _rows(raw.iloc[:len(NULLS)])
    for k, token in enumerate(NULLS):  # every token in a numeric and in a categorical cell
        rows[k][1] = token  # income
        rows[k][6] = token  # region
        rows[k][(k % 4) + 2] = NULLS[-1 - k]  # and another numeric cell
        rows[k][(k % 3) + 7] = NULLS[k - 1]  # and another categorical one
    return rows


def _number_rows(raw: pd.DataFrame) -> List[List[str]]:
    numbers = ["-3", "-0", "0", "1e3", "1E3", "-2.5e-3", "4.2E+01", "007", "123456789.123456789", "3.4e37",
               "1e-46", "-12.75e0", "0.1000000000000000055511151231257827", "99999999999999999999", "1e-0", "00.00"]
    rows = _rows(raw.iloc[:len(numbers)])
    for k, number in enumerate(numbers):
        for j in range(6):  # all numeric columns, shifted so each column sees every form
            rows[k][j] = numbers[(k + j) % len(numbers)]
    return rows


def _category_rows(raw: pd.DataFrame) -> List[List[str]]:
    values = ["north", "atlantis", "missing", "7", "café", "north east", "North", "na", "'south'", "#west",
              "a;b", "x\ty", "-1e5", "NaN_but_not", "日本"]
    rows = _rows(raw.iloc[:len(values)])
    for k, value in enumerate(values):
        rows[k][6] = value
        rows[k][9] = values[-1 - k]
    rows[0][7] = "gold"  # unseen plan
    return rows


def _all_missing_rows(raw: pd.DataFrame) -> List[List[str]]:
    return [[""] * raw.shape[1], _rows(raw.iloc[:1])[0], ["NA"] * raw.shape[1]]


CSV_CASES = {
    "sample rows with empty cells": lambda raw: _rows(raw.iloc[:16]),
    "missing cells and every NA token": _na_token_rows,
    "negative, exponent and long numbers": _number_rows,
    "categorical values": _category_rows,
    "all-missing rows": _all_missing_rows,
    "one row": lambda raw: _rows(raw.iloc[3:4]),
}


@pytest.mark.parametrize("end", ["\n", ""], ids=["trailing-newline", "no-trailing-newline"])
@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_payloads_predict_what_the_model_predicts_on_their_rows(bundle, raw, case, end):
    """Every NA token, number form and category reaches the model as the fitted preprocessor reads the rows."""
    rows = CSV_CASES[case](raw)
    served = _outcome(bundle, _lines(rows, end))
    assert served[0] == "ok", served
    assert json.loads(served[1])["predictions"] == list(_expected_labels(bundle, pd.DataFrame(rows, columns=raw.columns)))


@pytest.mark.parametrize("rows", [1, 5, 16])
def test_header_line_equal_to_the_feature_names(bundle, raw, rows):
    features = raw.iloc[20:20 + rows]
    headed = (",".join(bundle["features"]) + "\n").encode() + _lines(_rows(features))
    with_header = _outcome(bundle, headed)
    assert with_header[0] == "ok" and with_header == _outcome(bundle, _lines(_rows(features)))
    assert json.loads(with_header[1])["predictions"] == list(_expected_labels(bundle, features))


def test_header_alone_is_400(bundle):
    assert _outcome(bundle, (",".join(bundle["features"]) + "\n").encode()) == ("error", 400, "no rows in the text/csv payload")


# ------------------------------------------------------------------------------ unusual payloads


def _edit(raw, cell_edits=(), rows=3):
    out = _rows(raw.iloc[:rows])
    for i, j, value in cell_edits:
        out[i][j] = value
    return out


def _fallbacks(raw: pd.DataFrame) -> Dict[str, bytes]:
    plain = _rows(raw.iloc[:3])
    return {
        "quoted category": _lines(_edit(raw, [(0, 6, '"north"'), (1, 7, '"premium"')])),
        "quoted number": _lines(_edit(raw, [(0, 1, '"52000.5"'), (2, 0, '" 44"')])),
        "quoted comma": _lines(_edit(raw, [(1, 6, '"north,east"')])),
        "quoted empty cell": _lines(_edit(raw, [(0, 6, '""'), (1, 1, '""')])),
        "CRLF line endings": _lines(plain, "\r\n").replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n"),
        "CR line endings": _lines(plain, "\r").replace(b"\n", b"\r"),
        "space before a number": _lines(_edit(raw, [(0, 0, " 44")])),
        "space after a number": _lines(_edit(raw, [(1, 3, "12.5 ")])),
        "tab around a number": _lines(_edit(raw, [(1, 3, "\t12.5")])),
        "space around a category": _lines(_edit(raw, [(0, 6, "north "), (2, 8, " monthly")])),
        "space around an NA token": _lines(_edit(raw, [(0, 1, " NA"), (1, 6, "NA ")])),
        "byte-order mark": b"\xef\xbb\xbf" + _lines(plain),
        "blank line in between": _lines(plain[:1]) + b"\n" + _lines(plain[1:]),
        "blank line at the end": _lines(plain) + b"\n",
        "blank line at the start": b"\n" + _lines(plain),
        "numbers with a sign, a bare point or in capitals": _lines(_edit(raw, [(0, 0, "+5"), (0, 1, ".5"), (1, 2, "5."),
                                                                          (2, 3, "NAN"), (1, 4, "1e+5")])),
        "too few cells": _lines([row[:-1] for row in plain]),
        "too many cells": _lines([row + ["x"] for row in plain]),
        "one short row": _lines([plain[0], plain[1][:-2], plain[2]]),
        "trailing comma": _lines([row + [""] for row in plain]),
        "text in a numeric column": _lines(_edit(raw, [(1, 1, "lots")])),
        "hexadecimal number": _lines(_edit(raw, [(0, 0, "0x10")])),
        "header as the second line": _lines(plain[:1] + [list(raw.columns)] + plain[1:]),
        "invalid UTF-8": _lines(plain[:1]) + b"20,1,1,1,1,1,nor\xffth,basic,annual,card\n",
        "only commas": b",,,\n",
    }


FALLBACK_ERRORS = {
    "too few cells": "expected 10 columns, got 9 (row: ",
    "too many cells": "expected 10 columns, got 11 (row: ",
    "one short row": "expected 10 columns, got 8 (row: ",
    "trailing comma": "expected 10 columns, got 11 (row: ",
    "text in a numeric column": "column 'income' (#2) expects a number, got 'lots'",
    "hexadecimal number": "column 'age' (#1) expects a number, got '0x10'",
    "header as the second line": "column 'age' (#1) expects a number, got 'age'",
    "invalid UTF-8": "malformed text/csv payload",
    "only commas": "expected 10 columns, got 4 (row: ",
    # Arrow trims a number cell before converting it, but matches NA tokens untrimmed.
    "space around an NA token": "column 'income' (#2) expects a number, got 'NA'",
}


FALLBACK_CASES = [
    "quoted category", "quoted number", "quoted comma", "quoted empty cell", "CRLF line endings", "CR line endings",
    "space before a number", "space after a number", "tab around a number", "space around a category",
    "space around an NA token", "byte-order mark", "blank line in between", "blank line at the end",
    "blank line at the start", "numbers with a sign, a bare point or in capitals", "too few cells", "too many cells",
    "one short row", "trailing comma", "text in a numeric column", "hexadecimal number", "header as the second line",
    "invalid UTF-8", "only commas",
]


@pytest.mark.parametrize("case", FALLBACK_CASES)
def test_unusual_payloads_answer_or_name_the_problem(bundle, raw, case):
    cases = _fallbacks(raw)
    assert sorted(cases) == sorted(FALLBACK_CASES)
    served = _outcome(bundle, cases[case])
    if case in FALLBACK_ERRORS:
        assert served[:2] == ("error", 400) and served[2].startswith(FALLBACK_ERRORS[case]), served
    else:
        assert served[0] == "ok", served


def test_quoted_and_crlf_payloads_mean_the_plain_rows(bundle, raw):
    """Arrow unquotes and takes CRLF: those payloads predict what the plain rows predict."""
    plain = _outcome(bundle, _lines(_rows(raw.iloc[:3])))
    fallbacks = _fallbacks(raw)
    for case in ("quoted category", "CRLF line endings", "CR line endings", "byte-order mark", "blank line in between"):
        if case == "quoted category":
            expected = _outcome(bundle, _lines(_edit(raw, [(0, 6, "north"), (1, 7, "premium")])))
        else:
            expected = plain
        assert _outcome(bundle, fallbacks[case]) == expected, case


# --------------------------------------------------------------------- compiled preprocessing


def _random_columns(bundle, n: int, seed: int) -> Dict[str, np.ndarray]:
    """Parsed-request columns: wide-ranging float32 numbers with NaN; known, rare, unseen and missing levels."""
    rng = np.random.RandomState(seed)
    pre = bundle["preprocessor"]
    encoder = pre.named_transformers_["cat"].steps[1][1]
    cat_columns = list(pre.transformers_[[t[0] for t in pre.transformers_].index("cat")][2])
    columns: Dict[str, np.ndarray] = {}
    for name in bundle["features"]:
        if name in bundle["numeric"]:
            scale = np.array([1e-30, 1e-3, 1.0, 10.0, 1e3, 1e5, 1e30])[rng.randint(0, 7, n)]
            values = (rng.standard_normal(n) * scale).astype(np.float32)
            values[rng.random_sample(n) < 0.15] = np.nan
            values[rng.random_sample(n) < 0.02] = -0.0
            columns[name] = values
        else:
            levels = encoder.categories_[cat_columns.index(name)].tolist()
            extra = ["missing", "never-seen", "", "North", "missing "]
            pool = np.array(levels + extra, dtype=object)
            values = pool[rng.randint(0, len(pool), n)]
            values[rng.random_sample(n) < 0.15] = np.nan
            columns[name] = values
    return columns


def test_compiled_transform_is_used(bundle, wide_bundle):
    for b in (bundle, wide_bundle):
        assert isinstance(b["transform"], inference._FastTransform)
    encoder = wide_bundle["preprocessor"].named_transformers_["cat"].steps[1][1]
    assert any(rare is not None for rare in encoder.infrequent_categories_), "the wide model should have rare levels"


@pytest.mark.parametrize("n, seed", [(1, 0), (1, 1), (2, 2), (7, 3), (2000, 4)])
def test_compiled_transform_equals_the_preprocessor(any_bundle, n, seed):
    columns = _random_columns(any_bundle, n, seed)
    expected = inference._reference_transform(any_bundle["preprocessor"],
                                              pd.DataFrame(columns, columns=any_bundle["features"]))
    got = any_bundle["transform"](columns, n)
    assert got.dtype == expected.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_compiled_and_original_preprocessing_answer_alike_through_the_handlers(bundle, raw):
    rows = raw.iloc[:300].copy()
    rows.iloc[:20, 6] = ["atlantis", "", "missing", "NA"] * 5
    rows.iloc[20:40, 1] = ["", "NA", "1e6", "-5"] * 5
    without = dict(bundle, transform=None)
    csv_body = _lines(_rows(rows))
    instances = [[None if v == "" else v for v in row] for row in _rows(rows)]
    for body, content_type in ((csv_body, "text/csv"), (json.dumps({"instances": instances}), "application/json")):
        compiled = _outcome(bundle, body, content_type)
        assert compiled[0] == "ok" and compiled == _outcome(without, body, content_type)
    assert json.loads(_outcome(bundle, csv_body)[1])["predictions"] == list(_expected_labels(bundle, rows))


def _corrupt_numeric(index):
    def corrupt(plan):
        names, offset, fill, mean, scale = plan.numeric
        parts = [names, offset, fill.copy(), None if mean is None else mean.copy(), None if scale is None else scale.copy()]
        if index == 1:
            parts[1] = offset + 1
        else:
            parts[index][0] = parts[index][0] * 1.001 + 0.5
        plan.numeric = tuple(parts)
    return corrupt


def _corrupt_categorical(what):
    def corrupt(plan):
        for k, (feature, codes, missing, unknown) in enumerate(plan.categorical):
            if what == "swap" and len(codes) >= 2:
                a, b = list(codes)[:2]
                codes = dict(codes, **{a: codes[b], b: codes[a]})
            elif what == "missing" and missing >= 0:
                missing = -1
            elif what == "unknown" and unknown >= 0:
                unknown = -1
            else:
                continue
            plan.categorical[k] = (feature, codes, missing, unknown)
            return
        raise AssertionError(f"nothing to corrupt for {what}")
    return corrupt


def _corrupt_width(plan):
    plan.width += 1


CORRUPTIONS = {
    "imputation value": _corrupt_numeric(2),
    "mean": _corrupt_numeric(3),
    "scale": _corrupt_numeric(4),
    "numeric offset": _corrupt_numeric(1),
    "swapped levels": _corrupt_categorical("swap"),
    "missing level": _corrupt_categorical("missing"),
    "unseen level -> infrequent": _corrupt_categorical("unknown"),
    "width": _corrupt_width,
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupted_compiled_parameters_fall_back_to_the_preprocessor(wide_dir, wide_bundle, monkeypatch, case):
    real_init = inference._FastTransform.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        CORRUPTIONS[case](self)

    monkeypatch.setattr(inference._FastTransform, "__init__", init)
    loaded = inference.model_fn(str(wide_dir))
    assert loaded["transform"] is None
    monkeypatch.undo()
    columns = _random_columns(wide_bundle, 400, 9)
    frame = pd.DataFrame(columns, columns=wide_bundle["features"])
    reference = _outcome(dict(wide_bundle, transform=None), frame.to_json(orient="values"), "application/json")
    assert reference[0] == "ok"
    assert _outcome(loaded, frame.to_json(orient="values"), "application/json") == reference
    assert _outcome(wide_bundle, frame.to_json(orient="values"), "application/json") == reference


def test_compiled_output_that_differs_makes_model_fn_use_the_preprocessor(sample_dir, bundle, raw, monkeypatch):
    real_call = inference._FastTransform.__call__
    calls = []

    def off_by_a_bit(self, columns, n):
        calls.append(n)
        out = real_call(self, columns, n)
        if out is not None:
            out[:, 0] = np.nextafter(out[:, 0], np.float32(np.inf))
        return out

    monkeypatch.setattr(inference._FastTransform, "__call__", off_by_a_bit)
    loaded = inference.model_fn(str(sample_dir))
    assert calls and loaded["transform"] is None  # the probe ran and the plan was refused
    features = raw.iloc[:200]
    served = _outcome(loaded, _lines(_rows(features)), accept="text/csv")
    assert len(calls) == 1  # requests never reach the compiled code
    assert served[1].splitlines() == list(_expected_labels(bundle, features))
    monkeypatch.undo()
    assert served == _outcome(bundle, _lines(_rows(features)), accept="text/csv")


def test_compile_error_means_no_compiled_transform(sample_dir, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("surprise")

    with monkeypatch.context() as m:
        m.setattr(inference, "_reference_transform", boom)
        assert inference._compile_transform(inference.model_fn(str(sample_dir))) is None


def test_probe_result_of_none_is_refused(bundle, monkeypatch):
    monkeypatch.setattr(inference._FastTransform, "__call__", lambda self, columns, n: None)
    assert inference._compile_transform(dict(bundle)) is None


# -------------------------------------------------------------------------------- infinite values


def _inf_payloads(raw: pd.DataFrame) -> Dict[str, tuple]:
    rows = _rows(raw.iloc[:3])
    numeric_row = [None if v == "" else v for v in rows[0]]
    for j in range(6):
        numeric_row[j] = float(numeric_row[j])
    return {
        "csv inf": (_lines(_edit(raw, [(1, 1, "inf")])), "text/csv"),
        "csv -Infinity": (_lines(_edit(raw, [(0, 3, "-Infinity")])), "text/csv"),
        "csv 1e39 overflows float32": (_lines(_edit(raw, [(2, 0, "1e39")])), "text/csv"),
        "csv -3.5e38 with a missing cell": (_lines(_edit(raw, [(0, 5, "-3.5e38"), (0, 1, "")])), "text/csv"),
        # Finite on input; the largest float32 divided by a scale below 1 is not.
        "csv float32 max overflows when scaled": (_lines(_edit(raw, [(1, 5, "3.4028235e38")])), "text/csv"),
        "json 1e39": (json.dumps([[1e39] + numeric_row[1:]]), "application/json"),
        "json Infinity": (json.dumps({"instances": [dict(zip(raw.columns, [float("inf")] + numeric_row[1:]))]}),
                          "application/json"),
    }


def _error(bundle, body, content_type):
    with pytest.raises(Exception) as info:
        inference.predict_fn(inference.input_fn(body, content_type), bundle)
    return type(info.value), str(info.value)


INF_CASES = ["csv inf", "csv -Infinity", "csv 1e39 overflows float32", "csv -3.5e38 with a missing cell",
             "csv float32 max overflows when scaled", "json 1e39", "json Infinity"]


@pytest.mark.parametrize("case", INF_CASES)
def test_infinite_or_overflowing_values_are_client_errors_with_and_without_compiled_preprocessing(bundle, raw, case):
    cases = _inf_payloads(raw)
    assert sorted(cases) == sorted(INF_CASES)
    body, content_type = cases[case]
    with np.errstate(over="ignore"):
        compiled = _error(bundle, body, content_type)
        original = _error(dict(bundle, transform=None), body, content_type)
    assert compiled == original
    # A 400 naming the problem, not scikit-learn's "Input X contains infinity" as a server error.
    assert compiled[0] is inference.InferenceRequestError
    assert "infinite or too large value" in compiled[1] or "too large for the model" in compiled[1]
    with pytest.raises(inference.InferenceRequestError) as error:
        inference.predict_fn(inference.input_fn(body, content_type), bundle)
    assert error.value.status_code == 400


def test_compiled_transform_hands_infinity_back(bundle):
    columns = _random_columns(bundle, 5, 1)
    columns[bundle["numeric"][0]][3] = np.inf
    assert bundle["transform"](columns, 5) is None


# ------------------------------------------------------------------------- single-threaded copy


class _Spy:
    """Delegates to an estimator and logs which one predict_fn chose, and for how many rows."""

    def __init__(self, estimator, name: str, log: list, compute: bool = True):
        self.estimator, self.name, self.log, self.compute = estimator, name, log, compute

    def predict_proba(self, X):
        self.log.append((self.name, "predict_proba", len(X)))
        if self.compute:
            return self.estimator.predict_proba(X)
        return np.full((len(X), len(self.estimator.classes_)), 1.0 / len(self.estimator.classes_))

    def predict(self, X):
        self.log.append((self.name, "predict", len(X)))
        return self.estimator.predict(X) if self.compute else np.repeat(self.estimator.classes_[:1], len(X))


def _spied(bundle, log, compute=True, **extra):
    return dict(bundle, model=_Spy(bundle["model"], "original", log, compute),
                serial_model=_Spy(bundle["serial_model"], "serial", log, compute), **extra)


def test_model_fn_keeps_a_single_threaded_copy_sharing_the_trees(bundle):
    model, serial = bundle["model"], bundle["serial_model"]
    assert isinstance(model, RandomForestClassifier)
    assert model.n_jobs == -1  # as train.py fitted it: the original is left alone
    assert serial is not model and serial.n_jobs == 1
    assert serial.estimators_ is model.estimators_
    assert {k: v for k, v in serial.get_params().items() if k != "n_jobs"} == \
           {k: v for k, v in model.get_params().items() if k != "n_jobs"}


@pytest.mark.parametrize("estimator", [
    LogisticRegression(), RandomForestClassifier(n_jobs=1), RandomForestClassifier(n_jobs=None),
    GradientBoostingClassifier(),
], ids=["logistic-regression", "forest-n_jobs-1", "forest-n_jobs-None", "gradient-boosting"])
def test_serial_copy_is_the_model_itself_when_already_single_threaded(estimator):
    assert inference._serial_copy(estimator) is estimator


def test_serial_copy_of_a_threaded_model_leaves_it_threaded():
    model = RandomForestClassifier(n_jobs=4)
    serial = inference._serial_copy(model)
    assert serial is not model and (serial.n_jobs, model.n_jobs) == (1, 4)


@pytest.mark.parametrize("rows, expected", [(1, "serial"), (7, "serial"), (8, "original"), (9, "original")])
def test_requests_below_serial_max_rows_use_the_serial_copy(bundle, raw, monkeypatch, rows, expected):
    monkeypatch.setattr(inference, "SERIAL_MAX_ROWS", 8)
    log: list = []
    for has_proba, method in ((True, "predict_proba"), (False, "predict")):
        log.clear()
        result = inference.predict_fn(inference.input_fn(_lines(_rows(raw.iloc[:rows])), "text/csv"),
                                      _spied(bundle, log, has_proba=has_proba))
        assert log == [(expected, method, rows)]
        assert list(result["labels"]) == list(_expected_labels(bundle, raw.iloc[:rows]))


@pytest.mark.parametrize("offset, expected", [(-1, "serial"), (0, "original")])
def test_the_real_threshold(bundle, raw, offset, expected):
    n = inference.SERIAL_MAX_ROWS + offset
    frame = pd.concat([raw] * (n // len(raw) + 1), ignore_index=True).iloc[:n]
    log: list = []
    inference.predict_fn(frame, _spied(bundle, log, compute=False))
    assert log == [(expected, "predict_proba", n)]


def test_serial_and_threaded_estimators_give_the_same_labels(bundle, raw, monkeypatch):
    columns = inference._coerce(raw, bundle)
    X = bundle["transform"](columns, len(raw))
    serial, threaded = bundle["serial_model"].predict_proba(X), bundle["model"].predict_proba(X)
    # The threads add the trees' votes in another order: equal up to rounding, same labels.
    np.testing.assert_allclose(serial, threaded, rtol=0, atol=1e-12)
    assert np.array_equal(serial.argmax(axis=1), threaded.argmax(axis=1))
    body = _lines(_rows(raw.iloc[:500]))
    served = _outcome(bundle, body, accept="text/csv")
    monkeypatch.setattr(inference, "SERIAL_MAX_ROWS", 0)  # every request on the threaded original
    assert served == _outcome(bundle, body, accept="text/csv")
