"""TrainModel: metric lines, label kinds, algorithms, model directory, checkpoint/resume."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from pipeline_code.steps import train

from .conftest import (ROOT, SAMPLE_TARGET, TRAIN_ACCURACY_RE, VALIDATION_ACCURACY_RE, make_frame,
                       preprocess_frame, run_main, subprocess_env, train_env)

TRAIN_SCRIPT = ROOT / "pipeline_code" / "steps" / "train.py"


def _train(output_dir: Path, tmp_path: Path, target: str = "label", *args: str, name: str = "run"):
    model_dir = tmp_path / name / "model"
    run = run_main(train.main, ["--target-column", target, "--checkpoint-dir", str(tmp_path / name / "ckpt"), *args],
                   env=train_env(output_dir, model_dir))
    return run, model_dir


def _split(output_dir: Path, split: str, target: str):
    frame = pd.read_csv(output_dir / split / f"{split}.csv")
    return frame.drop(columns=target).to_numpy(np.float32), frame[target].to_numpy()


@pytest.fixture(scope="session")
def datasets(tmp_path_factory, sample_output):
    """Preprocessed data sets: string and numeric labels, binary and multi-class."""
    root = tmp_path_factory.mktemp("train-data")
    return {
        "multiclass-string": (sample_output, SAMPLE_TARGET),
        "binary-string": (preprocess_frame(make_frame(classes=("no", "yes")), root / "bs"), "label"),
        "binary-numeric": (preprocess_frame(make_frame(classes=(0, 1), seed=1), root / "bn"), "label"),
        "multiclass-numeric": (preprocess_frame(make_frame(classes=(1, 2, 3, 4), seed=2), root / "mn"), "label"),
    }


def test_prints_metric_lines_the_builder_regexes_parse(sample_output, tmp_path):
    run, model_dir = _train(sample_output, tmp_path, SAMPLE_TARGET, "--n-estimators", "30")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len([line for line in lines if re.fullmatch(r"Train Accuracy: \d\.\d{4}", line)]) == 1
    assert len([line for line in lines if re.fullmatch(r"Validation Accuracy: \d\.\d{4}", line)]) == 1
    train_accuracy = float(re.search(TRAIN_ACCURACY_RE, run.out).group(1))
    validation_accuracy = float(re.search(VALIDATION_ACCURACY_RE, run.out).group(1))
    model = joblib.load(model_dir / "model.joblib")
    assert train_accuracy == round(model.score(*_split(sample_output, "train", SAMPLE_TARGET)), 4)
    assert validation_accuracy == round(model.score(*_split(sample_output, "validation", SAMPLE_TARGET)), 4)
    assert 0.7 < validation_accuracy <= train_accuracy <= 1.0


def test_model_dir_is_self_sufficient_for_serving(sample_output, tmp_path):
    run, model_dir = _train(sample_output, tmp_path, SAMPLE_TARGET, "--n-estimators", "5")
    assert run.code == 0, run.err
    assert sorted(p.name for p in model_dir.iterdir()) == ["code", "model.joblib", "preprocessor.joblib"]
    # The registered model serves with SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code.
    steps = Path(__file__).resolve().parents[2] / "pipeline_code" / "steps"
    assert [p.name for p in (model_dir / "code").iterdir()] == ["inference.py"]
    assert (model_dir / "code" / "inference.py").read_bytes() == (steps / "inference.py").read_bytes()
    assert (model_dir / "preprocessor.joblib").read_bytes() == (sample_output / "artifacts" / "preprocessor.joblib").read_bytes()
    model = joblib.load(model_dir / "model.joblib")
    assert type(model).__module__.startswith("sklearn.") and model.n_estimators == 5


@pytest.mark.parametrize("dataset", ["multiclass-string", "binary-string", "binary-numeric", "multiclass-numeric"])
def test_label_kinds(datasets, dataset, tmp_path):
    output_dir, target = datasets[dataset]
    run, model_dir = _train(output_dir, tmp_path, target, "--n-estimators", "20")
    assert run.code == 0, run.err
    model = joblib.load(model_dir / "model.joblib")
    _, labels = _split(output_dir, "train", target)
    assert list(model.classes_) == sorted(set(labels.tolist()))
    assert len(model.classes_) == (2 if dataset.startswith("binary") else (3 if dataset == "multiclass-string" else 4))
    if dataset.endswith("numeric"):
        assert np.issubdtype(model.classes_.dtype, np.integer)
    else:
        assert all(isinstance(c, str) for c in model.classes_)
    assert float(re.search(VALIDATION_ACCURACY_RE, run.out).group(1)) > 0.6


@pytest.mark.parametrize("algorithm, expected", [("gradient-boosting", "GradientBoostingClassifier"),
                                                 ("logistic-regression", "LogisticRegression")])
def test_other_algorithms(datasets, tmp_path, algorithm, expected):
    output_dir, target = datasets["multiclass-string"]
    run, model_dir = _train(output_dir, tmp_path, target, "--algorithm", algorithm, "--n-estimators", "10",
                            "--max-depth", "3")
    assert run.code == 0, run.err
    assert type(joblib.load(model_dir / "model.joblib")).__name__ == expected
    assert float(re.search(VALIDATION_ACCURACY_RE, run.out).group(1)) > 0.7


def test_underscore_hyperparameter_spellings(datasets, tmp_path):
    output_dir, target = datasets["binary-numeric"]
    run, model_dir = _train(output_dir, tmp_path, target, "--n_estimators", "7", "--max_depth", "none")
    assert run.code == 0, run.err
    model = joblib.load(model_dir / "model.joblib")
    assert model.n_estimators == 7 and model.max_depth is None


def _trees(model):
    estimators = np.ravel(model.estimators_)
    return [(t.tree_.children_left, t.tree_.feature, t.tree_.threshold, t.tree_.value) for t in estimators]


@pytest.mark.parametrize("algorithm", ["random-forest", "gradient-boosting"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(datasets, tmp_path, algorithm):
    output_dir, target = datasets["multiclass-string"]
    args = ["--target-column", target, "--algorithm", algorithm, "--n-estimators", "30", "--max-depth", "6"]
    reference, reference_dir = _train(output_dir, tmp_path, target, *args[2:], name="reference")
    assert reference.code == 0, reference.err

    checkpoint_dir, model_dir = tmp_path / "spot" / "ckpt", tmp_path / "spot" / "model"
    interrupted = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *args, "--checkpoint-dir", str(checkpoint_dir)],
        env=subprocess_env({**train_env(output_dir, model_dir), train.TEST_HOOK_ENV: "2"}),
        capture_output=True, text=True, timeout=120,
    )
    assert interrupted.returncode == train.INTERRUPTED_EXIT_CODE, interrupted.stderr
    assert "Train Accuracy" not in interrupted.stdout and not model_dir.exists()
    (job_dir,) = checkpoint_dir.iterdir()  # one sub-directory per data + hyperparameters
    manifest = json.loads((job_dir / "manifest.json").read_text())
    assert manifest["n_estimators_done"] == 6  # 2 chunks of 3 trees (30 trees in 10 chunks)
    assert job_dir.name == manifest["fingerprint"][:16]
    assert not [p for p in job_dir.iterdir() if p.name.endswith(".tmp")]

    resumed = run_main(train.main, [*args, "--checkpoint-dir", str(checkpoint_dir)], env=train_env(output_dir, model_dir))
    assert resumed.code == 0, resumed.err
    assert "resuming from checkpoint with 6 of 30 estimators" in resumed.out
    assert resumed.out.count("[train] checkpoint:") == 8

    expected = joblib.load(reference_dir / "model.joblib")
    actual = joblib.load(model_dir / "model.joblib")
    assert len(_trees(actual)) == len(_trees(expected)) == 30 * (1 if algorithm == "random-forest" else 3)
    for a, b in zip(_trees(actual), _trees(expected)):  # every tree identical, node for node
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    X, _ = _split(output_dir, "validation", target)
    np.testing.assert_array_equal(actual.predict(X), expected.predict(X))
    # (the forest sums tree votes in parallel threads, so probabilities may differ in the last bit)
    np.testing.assert_allclose(actual.predict_proba(X), expected.predict_proba(X), rtol=0, atol=1e-12)
    assert re.search(VALIDATION_ACCURACY_RE, resumed.out).group(1) == re.search(VALIDATION_ACCURACY_RE, reference.out).group(1)


def test_chunked_forest_equals_one_shot_fit(datasets, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    output_dir, target = datasets["binary-string"]
    run, model_dir = _train(output_dir, tmp_path, target, "--n-estimators", "25", "--max-depth", "5")
    assert run.code == 0, run.err
    one_shot = RandomForestClassifier(n_estimators=25, max_depth=5, min_samples_split=4, random_state=42)
    one_shot.fit(*_split(output_dir, "train", target))
    X, _ = _split(output_dir, "validation", target)
    chunked = joblib.load(model_dir / "model.joblib")
    for a, b in zip(_trees(chunked), _trees(one_shot)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(chunked.predict_proba(X), one_shot.predict_proba(X), rtol=0, atol=1e-12)


def test_jobs_with_other_hyperparameters_keep_separate_checkpoints(datasets, tmp_path):
    """Tuning jobs may share one checkpoint location: none may resume from, or overwrite, another's."""
    output_dir, target = datasets["binary-numeric"]
    first, _ = _train(output_dir, tmp_path, target, "--n-estimators", "10", name="same")
    assert first.code == 0
    (first_dir,) = (tmp_path / "same" / "ckpt").iterdir()
    first_files = {p.name: p.read_bytes() for p in first_dir.iterdir()}
    second, _ = _train(output_dir, tmp_path, target, "--n-estimators", "10", "--max-depth", "3", name="same")
    assert second.code == 0
    assert "resuming" not in second.out
    assert len(list((tmp_path / "same" / "ckpt").iterdir())) == 2
    assert {p.name: p.read_bytes() for p in first_dir.iterdir()} == first_files


def test_checkpoint_with_a_foreign_fingerprint_is_ignored(datasets, tmp_path):
    output_dir, target = datasets["binary-numeric"]
    first, _ = _train(output_dir, tmp_path, target, "--n-estimators", "10", name="foreign")
    assert first.code == 0
    (job_dir,) = (tmp_path / "foreign" / "ckpt").iterdir()
    manifest = json.loads((job_dir / "manifest.json").read_text())
    (job_dir / "manifest.json").write_text(json.dumps({**manifest, "fingerprint": "0" * 64}))
    second, _ = _train(output_dir, tmp_path, target, "--n-estimators", "10", name="foreign")
    assert second.code == 0
    assert "ignoring checkpoint from different data or hyperparameters" in second.out


def test_unreadable_checkpoint_is_ignored(datasets, tmp_path):
    output_dir, target = datasets["binary-numeric"]
    first, _ = _train(output_dir, tmp_path, target, "--n-estimators", "10", name="broken")
    assert first.code == 0
    (job_dir,) = (tmp_path / "broken" / "ckpt").iterdir()
    (job_dir / "forest-000005.joblib").write_bytes(b"truncated")
    second, model_dir = _train(output_dir, tmp_path, target, "--n-estimators", "10", name="broken")
    assert second.code == 0, second.err
    assert "ignoring unreadable checkpoint" in second.out
    assert joblib.load(model_dir / "model.joblib").n_estimators == 10


def test_missing_channel_is_a_clear_error(datasets, tmp_path):
    output_dir, target = datasets["binary-numeric"]
    env = train_env(output_dir, tmp_path / "model")
    env["SM_CHANNEL_VALIDATION"] = str(tmp_path / "nowhere")
    run = run_main(train.main, ["--target-column", target, "--checkpoint-dir", str(tmp_path / "ckpt")], env=env)
    assert run.code == 2 and "validation channel directory" in run.err and str(tmp_path / "nowhere") in run.err


def test_wrong_target_column_is_a_clear_error(datasets, tmp_path):
    output_dir, _ = datasets["binary-numeric"]
    run, _ = _train(output_dir, tmp_path, "churn")
    assert run.code == 2 and "preprocessed for 'label'" in run.err
