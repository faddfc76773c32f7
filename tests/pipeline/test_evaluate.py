"""EvaluateModel: evaluation.json layout and values, binary and multi-class, undefined ROC AUC."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.tree import DecisionTreeClassifier

from pipeline_code.steps import evaluate

from .conftest import run_main


def _package(model, features, target: str, target_type: str, root: Path) -> Path:
    """model.tar.gz as TrainModel + SageMaker produce it, in root/model."""
    staging = root / "staging"
    staging.mkdir(parents=True)
    joblib.dump(model, staging / "model.joblib")
    joblib.dump({"output_feature_names": list(features), "target_column": target, "target_type": target_type},
                staging / "preprocessor.joblib")
    (root / "model").mkdir()
    with tarfile.open(root / "model" / "model.tar.gz", "w:gz") as tar:
        for path in staging.iterdir():
            tar.add(path, arcname=path.name)
    return root / "model"


def _evaluate(tmp_path: Path, model, test: pd.DataFrame, target: str = "label", target_type: str = "string"):
    model_dir = _package(model, [c for c in test.columns if c != target], target, target_type, tmp_path)
    (tmp_path / "test").mkdir()
    test.to_csv(tmp_path / "test" / "test.csv", index=False)
    run = run_main(evaluate.main, ["--model-dir", str(model_dir), "--test-dir", str(tmp_path / "test"),
                                   "--output-dir", str(tmp_path / "evaluation"), "--target-column", target])
    assert run.code == 0, run.err
    return json.loads((tmp_path / "evaluation" / "evaluation.json").read_text()), run.out


def test_binary_known_case(tmp_path):
    # A stump that splits at f0 = 1.5: predicts a below, b above.
    model = DecisionTreeClassifier(max_depth=1).fit([[0.0], [1.0], [2.0], [3.0]], ["a", "a", "b", "b"])
    test = pd.DataFrame({"f0": [0.0, 1.0, 2.0, 3.0, 0.5, 2.5], "label": ["a", "b", "b", "b", "a", "a"]})
    report, out = _evaluate(tmp_path, model, test)
    metrics = report["metrics"]
    assert list(metrics) == ["accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix"]
    assert all(set(metrics[k]) == {"value"} for k in ("accuracy", "precision", "recall", "f1", "roc_auc"))
    # Predictions a a b b a b against a b b b a a: 4 of 6 right; for the positive class b, TP 2, FP 1, FN 1.
    assert metrics["accuracy"]["value"] == pytest.approx(4 / 6)
    assert metrics["precision"]["value"] == pytest.approx(2 / 3)
    assert metrics["recall"]["value"] == pytest.approx(2 / 3)
    assert metrics["f1"]["value"] == pytest.approx(2 / 3)
    assert metrics["roc_auc"]["value"] == pytest.approx(6 / 9)  # ties count half
    assert metrics["confusion_matrix"] == {"a": {"a": 2, "b": 1}, "b": {"a": 1, "b": 2}}
    assert report["evaluation"]["positive_label"] == "b" and report["evaluation"]["average"] == "binary"
    # ...and the same as scikit-learn says directly.
    y, pred = test["label"].to_numpy(), model.predict(test[["f0"]].to_numpy(np.float32))
    assert metrics["precision"]["value"] == pytest.approx(precision_score(y, pred, pos_label="b"))
    assert metrics["roc_auc"]["value"] == pytest.approx(roc_auc_score(y == "b", model.predict_proba(test[["f0"]].to_numpy())[:, 1]))
    assert "accuracy: 0.6667" in out and "roc_auc: 0.6667" in out


def test_multiclass_macro_averages_and_one_vs_rest_auc(tmp_path):
    rng = np.random.RandomState(0)
    y_train = rng.randint(0, 3, 300)
    X_train = np.c_[y_train + rng.normal(0, 0.8, 300), rng.normal(0, 1, 300)]
    model = LogisticRegression().fit(X_train, y_train)
    y_test = rng.randint(0, 3, 120)
    X_test = np.c_[y_test + rng.normal(0, 0.8, 120), rng.normal(0, 1, 120)].astype(np.float32)
    test = pd.DataFrame({"f0": X_test[:, 0], "f1": X_test[:, 1], "label": y_test})
    report, _ = _evaluate(tmp_path, model, test, target_type="int64")
    metrics = report["metrics"]
    pred, proba = model.predict(X_test), model.predict_proba(X_test)
    assert metrics["accuracy"]["value"] == pytest.approx(accuracy_score(y_test, pred))
    assert metrics["precision"]["value"] == pytest.approx(precision_score(y_test, pred, average="macro"))
    assert metrics["recall"]["value"] == pytest.approx(recall_score(y_test, pred, average="macro"))
    assert metrics["f1"]["value"] == pytest.approx(f1_score(y_test, pred, average="macro"))
    assert metrics["roc_auc"]["value"] == pytest.approx(roc_auc_score(y_test, proba, multi_class="ovr", average="macro"))
    matrix = metrics["confusion_matrix"]
    assert set(matrix) == {"0", "1", "2"} and all(set(row) == {"0", "1", "2"} for row in matrix.values())
    assert sum(sum(row.values()) for row in matrix.values()) == 120
    assert matrix["1"]["2"] == int(((y_test == 1) & (pred == 2)).sum())
    assert report["evaluation"]["average"] == "macro"


def test_roc_auc_omitted_for_a_single_class_test_set(tmp_path):
    model = DecisionTreeClassifier(max_depth=1).fit([[0.0], [1.0], [2.0], [3.0]], ["a", "a", "b", "b"])
    test = pd.DataFrame({"f0": [0.0, 2.0, 3.0], "label": ["b", "b", "b"]})
    report, out = _evaluate(tmp_path, model, test)
    assert "roc_auc" not in report["metrics"]
    assert report["evaluation"]["roc_auc_omitted"] == "test labels have a single class"
    assert report["metrics"]["accuracy"]["value"] == pytest.approx(2 / 3)
    assert report["metrics"]["confusion_matrix"] == {"a": {"a": 0, "b": 0}, "b": {"a": 1, "b": 2}}
    assert "roc_auc: omitted" in out


def test_roc_auc_omitted_when_a_model_class_is_missing_from_multiclass_test(tmp_path):
    model = DecisionTreeClassifier().fit([[0.0], [1.0], [2.0]], ["x", "y", "z"])
    test = pd.DataFrame({"f0": [0.0, 1.0, 0.0], "label": ["x", "y", "x"]})
    report, _ = _evaluate(tmp_path, model, test)
    assert "roc_auc" not in report["metrics"]
    assert report["metrics"]["accuracy"]["value"] == 1.0


def test_evaluates_the_local_run_model(local_pipeline):
    report = json.loads((local_pipeline.work / "evaluation" / "output" / "evaluation.json").read_text())
    assert set(report["metrics"]) == {"accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix"}
    assert report["evaluation"]["rows"] == 225
    assert 0.75 < report["metrics"]["accuracy"]["value"] < 0.97


def test_missing_model_archive_is_a_clear_error(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "test").mkdir()
    run = run_main(evaluate.main, ["--model-dir", str(tmp_path / "model"), "--test-dir", str(tmp_path / "test"),
                                   "--output-dir", str(tmp_path / "evaluation"), "--target-column", "label"])
    assert run.code == 2 and "model.tar.gz not found" in run.err
    assert not (tmp_path / "evaluation").exists()
