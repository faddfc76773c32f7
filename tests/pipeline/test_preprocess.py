"""PreprocessData: outputs, stratified deterministic splits, train-only fitting, baseline, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from pipeline_code.steps import preprocess

from .conftest import SAMPLE, SAMPLE_TARGET, make_frame, preprocess_frame, run_main

OUTPUT_FILES = ("train/train.csv", "validation/validation.csv", "test/test.csv",
                "artifacts/preprocessor.joblib", "baseline/baseline.json", "baseline/train_features.csv")


def _run(input_dir: Path, output_dir: Path, target: str = SAMPLE_TARGET, *extra: str):
    return run_main(preprocess.main, ["--input-dir", str(input_dir), "--output-dir", str(output_dir),
                                      "--target-column", target, *extra])


def _sample_split_indices(seed: int = 42):
    """Row indices of each split of the sample, as preprocess.py computes them."""
    raw = pd.read_csv(SAMPLE)
    codes = pd.factorize(raw[SAMPLE_TARGET])[0]  # class codes in order of first appearance, like Arrow's
    return raw, preprocess.split_indices(codes, 0.15, 0.15, seed)


def test_outputs_and_shapes(sample_output):
    for name in OUTPUT_FILES:
        assert (sample_output / name).is_file(), name
    assert sorted(p.name for p in sample_output.iterdir()) == ["artifacts", "baseline", "test", "train", "validation"]
    payload = joblib.load(sample_output / "artifacts" / "preprocessor.joblib")
    raw = pd.read_csv(SAMPLE)
    splits = {s: pd.read_csv(sample_output / s / f"{s}.csv") for s in ("train", "validation", "test")}
    assert sum(len(f) for f in splits.values()) == len(raw)
    assert [len(splits[s]) / len(raw) for s in ("validation", "test")] == pytest.approx([0.15, 0.15], abs=0.005)
    for frame in splits.values():
        assert list(frame.columns) == payload["output_feature_names"] + [SAMPLE_TARGET]
        features = frame.drop(columns=SAMPLE_TARGET)
        assert all(np.issubdtype(t, np.number) for t in features.dtypes)
        assert not features.isna().any().any()
        assert set(frame[SAMPLE_TARGET]) <= set(raw[SAMPLE_TARGET])  # original label values, unchanged
    assert payload["feature_columns"] == [c for c in raw.columns if c != SAMPLE_TARGET]
    assert payload["feature_types"] == {"age": "numeric", "income": "numeric", "tenure_months": "numeric",
                                        "monthly_spend": "numeric", "support_calls": "numeric",
                                        "satisfaction": "numeric", "region": "categorical", "plan": "categorical",
                                        "contract": "categorical", "payment_method": "categorical"}
    assert payload["target_type"] == "string" and payload["classes"] == ["high", "low", "medium"]


def test_splits_are_stratified(sample_output):
    overall = pd.read_csv(SAMPLE)[SAMPLE_TARGET].value_counts(normalize=True)
    for split in ("train", "validation", "test"):
        shares = pd.read_csv(sample_output / split / f"{split}.csv")[SAMPLE_TARGET].value_counts(normalize=True)
        assert shares.reindex(overall.index).to_numpy() == pytest.approx(overall.to_numpy(), abs=0.01), split


def test_two_runs_are_byte_identical(sample_output, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sample.csv").write_bytes(SAMPLE.read_bytes())
    assert _run(tmp_path / "in", tmp_path / "out").code == 0
    for name in OUTPUT_FILES:
        assert (tmp_path / "out" / name).read_bytes() == (sample_output / name).read_bytes(), name


def test_another_seed_gives_another_split(sample_output, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sample.csv").write_bytes(SAMPLE.read_bytes())
    assert _run(tmp_path / "in", tmp_path / "out", SAMPLE_TARGET, "--seed", "7").code == 0
    assert (tmp_path / "out" / "test" / "test.csv").read_bytes() != (sample_output / "test" / "test.csv").read_bytes()


def test_transformer_is_fitted_on_the_training_split_only(tmp_path):
    raw, splits = _sample_split_indices()
    train_rows = raw.iloc[splits["train"]]
    # A level that only test rows have: it must not become a column, and must not break the transform.
    raw.loc[raw.index[splits["test"][:3]], "region"] = "atlantis"
    (tmp_path / "in").mkdir()
    raw.to_csv(tmp_path / "in" / "data.csv", index=False)
    assert _run(tmp_path / "in", tmp_path / "out").code == 0

    payload = joblib.load(tmp_path / "out" / "artifacts" / "preprocessor.joblib")
    ct = payload["preprocessor"]
    numeric = payload["numeric_columns"]
    imputer = ct.named_transformers_["num"].named_steps["impute"]
    scaler = ct.named_transformers_["num"].named_steps["scale"]
    medians = train_rows[numeric].astype("float32").median()
    assert imputer.statistics_ == pytest.approx(medians.to_numpy(), rel=1e-6)
    filled = train_rows[numeric].astype("float32").fillna(medians.astype("float32"))
    assert scaler.mean_ == pytest.approx(filled.mean().to_numpy(), rel=1e-5)
    assert scaler.scale_ == pytest.approx(filled.std(ddof=0).to_numpy(), rel=1e-4)
    encoder = ct.named_transformers_["cat"].named_steps["onehot"]
    region_levels = list(encoder.categories_[payload["categorical_columns"].index("region")])
    assert "atlantis" not in region_levels
    assert set(region_levels) == set(train_rows["region"].fillna("missing"))

    # Transformed training columns are standardised exactly; the other splits only roughly.
    train = pd.read_csv(tmp_path / "out" / "train" / "train.csv")
    assert train[[f"num__{c}" for c in numeric]].mean().abs().max() < 1e-5
    test = pd.read_csv(tmp_path / "out" / "test" / "test.csv")
    assert test[[f"num__{c}" for c in numeric]].mean().abs().max() > 1e-3
    region_columns = [c for c in test.columns if c.startswith("cat__region_")]
    assert (test[region_columns].sum(axis=1) == 0).sum() >= 3  # the unseen level: all zeros


def test_baseline_profiles_the_raw_training_features(sample_output):
    baseline = json.loads((sample_output / "baseline" / "baseline.json").read_text())
    raw, splits = _sample_split_indices()
    train_rows = raw.iloc[splits["train"]]
    assert baseline["row_count"] == len(train_rows)
    assert set(baseline["features"]) == set(raw.columns) - {SAMPLE_TARGET}

    age = baseline["features"]["age"]
    values = train_rows["age"].dropna()
    assert age["type"] == "numeric" and age["count"] == len(train_rows)
    assert age["missing_count"] == train_rows["age"].isna().sum()
    assert age["missing_fraction"] == pytest.approx(train_rows["age"].isna().mean())
    assert [age["mean"], age["std"], age["min"], age["max"]] == pytest.approx(
        [values.mean(), values.std(ddof=0), values.min(), values.max()], rel=1e-6)
    assert age["quantiles"]["p50"] == pytest.approx(values.median())
    assert list(age["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    assert list(age["quantiles"].values()) == sorted(age["quantiles"].values())
    assert len(age["histogram"]["bin_edges"]) == len(age["histogram"]["counts"]) + 1
    assert sum(age["histogram"]["counts"]) == len(values)

    region = baseline["features"]["region"]
    counts = train_rows["region"].value_counts()
    assert region["type"] == "categorical"
    assert region["missing_fraction"] == pytest.approx(train_rows["region"].isna().mean())
    assert region["counts"] == counts.to_dict()
    assert region["frequencies"] == pytest.approx((counts / counts.sum()).to_dict())
    assert region["distinct"] == len(counts) and region["other_levels"] == 0

    assert baseline["target"]["counts"] == train_rows[SAMPLE_TARGET].value_counts().to_dict()


def test_features_file_holds_the_raw_training_features_without_the_target(sample_output):
    """baseline/train_features.csv: what a CSV request carries (raw features, serving order), plus a header."""
    path = sample_output / "baseline" / "train_features.csv"
    payload = joblib.load(sample_output / "artifacts" / "preprocessor.joblib")
    raw, splits = _sample_split_indices()
    train_rows = raw.iloc[splits["train"]].drop(columns=SAMPLE_TARGET).reset_index(drop=True)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(f'"{name}"' for name in payload["feature_columns"])
    assert SAMPLE_TARGET not in lines[0]
    features = pd.read_csv(path, keep_default_na=False, na_values=[""])
    assert list(features.columns) == payload["feature_columns"] == list(train_rows.columns)
    assert len(features) == len(train_rows) == len(pd.read_csv(sample_output / "train" / "train.csv"))
    for name in payload["numeric_columns"]:  # float32 values, in the training split's row order
        assert features[name].to_numpy() == pytest.approx(train_rows[name].astype("float32").to_numpy(), nan_ok=True), name
    for name in payload["categorical_columns"]:  # text as read; missing cells stay empty
        pd.testing.assert_series_equal(features[name], train_rows[name], check_names=False)
    assert features.isna().sum().to_dict() == train_rows.isna().sum().to_dict()


def test_features_file_keeps_text_with_commas_quotes_and_missing_cells(tmp_path):
    frame = make_frame(rows=300)
    frame["note"] = np.where(frame.index % 3 == 0, 'a, "b"', "plain")
    frame.loc[frame.index % 7 == 0, "note"] = None
    output = preprocess_frame(frame, tmp_path)
    features = pd.read_csv(output / "baseline" / "train_features.csv", keep_default_na=False, na_values=[""])
    assert list(features.columns) == ["x1", "x2", "color", "size", "note"]
    assert set(features["note"].dropna()) == {'a, "b"', "plain"}
    assert features["note"].isna().any() and features["x2"].isna().any()
    expected = frame.drop(columns="label").iloc[_train_indices(frame)].reset_index(drop=True)
    assert features["note"].isna().to_list() == expected["note"].isna().to_list()


def _train_indices(frame: pd.DataFrame, target: str = "label"):
    codes = pd.factorize(frame[target])[0]
    return preprocess.split_indices(codes, 0.15, 0.15, 42)["train"]


def test_reads_every_csv_and_parquet_file_recursively(sample_output, tmp_path):
    raw = pd.read_csv(SAMPLE)
    (tmp_path / "in" / "a").mkdir(parents=True)
    (tmp_path / "in" / "b").mkdir()
    raw.iloc[:800].to_csv(tmp_path / "in" / "a" / "part-1.csv", index=False)
    raw.iloc[800:].to_parquet(tmp_path / "in" / "b" / "part-2.parquet", index=False)
    (tmp_path / "in" / "b" / "notes.txt").write_text("not data")
    run = _run(tmp_path / "in", tmp_path / "out")
    assert run.code == 0, run.err
    assert "from 2 file(s)" in run.out
    for name in (*OUTPUT_FILES[:4], "baseline/train_features.csv"):  # same rows in the same order: the same outputs
        assert (tmp_path / "out" / name).read_bytes() == (sample_output / name).read_bytes(), name
    baseline = json.loads((tmp_path / "out" / "baseline" / "baseline.json").read_text())
    assert baseline["dataset"]["input_files"] == ["a/part-1.csv", "b/part-2.parquet"]


@pytest.mark.parametrize("case", ["empty-then-numbers", "integers-then-text"])
def test_types_that_change_after_the_first_block_are_read_whole(tmp_path, monkeypatch, case):
    monkeypatch.setattr(preprocess, "CSV_BLOCK_SIZE", 4096)  # many small blocks; types come from the first
    frame = make_frame(rows=2000)
    if case == "empty-then-numbers":
        frame["late"] = np.where(frame.index >= 1900, 1.5, np.nan)
        expected = "numeric"
    else:
        frame["late"] = [str(i % 7) if i < 1000 else "W" for i in range(2000)]
        expected = "categorical"
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "data.csv", index=False)
    run = _run(tmp_path / "in", tmp_path / "out", "label")
    assert run.code == 0, run.err
    payload = joblib.load(tmp_path / "out" / "artifacts" / "preprocessor.joblib")
    assert payload["feature_types"]["late"] == expected
    assert sum(len(pd.read_csv(tmp_path / "out" / s / f"{s}.csv")) for s in ("train", "validation", "test")) == 2000


def test_numeric_labels_keep_their_values(tmp_path):
    frame = make_frame(rows=300, classes=(0, 1, 2))
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "data.csv", index=False)
    assert _run(tmp_path / "in", tmp_path / "out", "label").code == 0
    text = (tmp_path / "out" / "test" / "test.csv").read_text().splitlines()
    assert {line.rsplit(",", 1)[1] for line in text[1:]} == {"0", "1", "2"}
    assert joblib.load(tmp_path / "out" / "artifacts" / "preprocessor.joblib")["target_type"] == "int64"


# ------------------------------------------------------------------------------------- bad input


def _assert_failed_cleanly(run, output_dir: Path, *needles: str) -> None:
    assert run.code == 2, run.out + run.err
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), run.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not output_dir.exists() or not any(output_dir.iterdir()), list(output_dir.rglob("*"))


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    input_dir = tmp_path / "in"
    input_dir.mkdir(exist_ok=True)
    (input_dir / name).write_text(text)
    return input_dir


def test_missing_target_column(tmp_path):
    input_dir = _write(tmp_path, SAMPLE.read_text())
    run = _run(input_dir, tmp_path / "out", "churn")
    _assert_failed_cleanly(run, tmp_path / "out", "target column 'churn' not found", "churn_risk")


def test_no_input_files(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no data here")
    _assert_failed_cleanly(_run(tmp_path / "in", tmp_path / "out"), tmp_path / "out", "no .csv or .parquet files")


def test_header_only_and_empty_files(tmp_path):
    input_dir = _write(tmp_path, "age,region,churn_risk\n", "header.csv")
    (input_dir / "empty.csv").write_text("")
    _assert_failed_cleanly(_run(input_dir, tmp_path / "out"), tmp_path / "out", "no data rows")


def test_entirely_empty_column(tmp_path):
    frame = make_frame(rows=200)
    frame["notes"] = None
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "data.csv", index=False)
    _assert_failed_cleanly(_run(tmp_path / "in", tmp_path / "out", "label"), tmp_path / "out",
                           "column 'notes' is entirely empty")


def test_numeric_column_with_garbage_is_rejected(tmp_path):
    frame = make_frame(rows=200)
    frame["x1"] = frame["x1"].astype(str)
    frame.loc[17, "x1"] = "12,5kg"
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "data.csv", index=False)
    _assert_failed_cleanly(_run(tmp_path / "in", tmp_path / "out", "label"), tmp_path / "out",
                           "column 'x1' looks numeric", "'12,5kg'")


def test_text_column_with_some_numbers_stays_categorical(tmp_path):
    frame = make_frame(rows=200)
    frame["size"] = frame["size"].where(frame.index % 3 != 0, "42")  # a third numbers: still categories
    (tmp_path / "in").mkdir()
    frame.to_csv(tmp_path / "in" / "data.csv", index=False)
    assert _run(tmp_path / "in", tmp_path / "out", "label").code == 0


def test_malformed_csv_names_the_file(tmp_path):
    input_dir = _write(tmp_path, "a,b,label\n1,2,x\n3,4\n5,6,y\n", "broken.csv")
    _assert_failed_cleanly(_run(input_dir, tmp_path / "out", "label"), tmp_path / "out", "broken.csv", "Expected 3 columns")


def test_files_with_different_columns(tmp_path):
    input_dir = _write(tmp_path, "a,b,label\n1,2,x\n3,4,y\n", "one.csv")
    (input_dir / "two.csv").write_text("a,c,label\n1,2,x\n")
    _assert_failed_cleanly(_run(input_dir, tmp_path / "out", "label"), tmp_path / "out", "two.csv", "missing b", "extra c")


def test_a_failed_run_leaves_an_existing_output_dir_untouched(tmp_path):
    input_dir = _write(tmp_path, "a,b,label\n1,2,x\n")
    (tmp_path / "out").mkdir()
    run = _run(input_dir, tmp_path / "out", "nope")
    _assert_failed_cleanly(run, tmp_path / "out", "'nope'")
    assert (tmp_path / "out").is_dir()


def test_single_class_target(tmp_path):
    input_dir = _write(tmp_path, "a,label\n1,x\n2,x\n3,x\n")
    _assert_failed_cleanly(_run(input_dir, tmp_path / "out", "label"), tmp_path / "out", "single class")


def test_bad_fractions_are_a_usage_error(tmp_path):
    run = _run(tmp_path, tmp_path / "out", "label", "--validation-fraction", "0.6", "--test-fraction", "0.5")
    assert run.code == 2 and "sum to less than 1" in run.err


# --------------------------------------------------------------------------- input a new user brings


def test_stray_spaces_around_categories_and_labels_are_trimmed(tmp_path):
    """' yes' and 'yes ' are the class 'yes', ' red' the category 'red': not new classes or levels."""
    frame = make_frame(rows=300)
    colors = set(frame["color"])
    frame.loc[frame.index % 7 == 0, "label"] = " " + frame["label"] + " "
    frame.loc[frame.index % 5 == 0, "color"] = frame["color"] + "  "
    output = preprocess_frame(frame, tmp_path)
    payload = joblib.load(output / "artifacts" / "preprocessor.joblib")
    assert payload["classes"] == ["no", "yes"]
    levels = payload["preprocessor"].named_transformers_["cat"].named_steps["onehot"].categories_[0]
    assert set(levels) == colors
    assert set(pd.read_csv(output / "train" / "train.csv")["label"]) == {"no", "yes"}


def test_a_file_that_is_not_utf8_says_so(tmp_path):
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    (input_dir / "latin1.csv").write_bytes("city,label\nMünchen,a\nKöln,b\n".encode("latin-1") * 1)
    _assert_failed_cleanly(_run(input_dir, tmp_path / "out", "label"), tmp_path / "out", "latin1.csv is not UTF-8 text", "iconv")


@pytest.mark.parametrize(
    ("labels", "needles"),
    [
        ([0.5, 1.25, 2.75, 3.125] * 50, ("target column 'label' looks continuous", "0.5", "only classification is supported")),
        (list(range(200)), ("looks continuous (200 distinct numbers in 200 rows)", "only classification is supported")),
        (["a", "b"] * 100 + ["rare"], ("class 'rare' of target column 'label' has only one row", "only classification is supported")),
    ],
    ids=["fractions", "many-integers", "one-row-class"],
)
def test_a_target_that_is_no_class_label_names_the_problem(tmp_path, labels, needles):
    frame = pd.DataFrame({"x": np.arange(len(labels), dtype=float), "label": labels})
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    frame.to_csv(input_dir / "data.csv", index=False)
    _assert_failed_cleanly(_run(input_dir, tmp_path / "out", "label"), tmp_path / "out", *needles)
