"""The local runner: the real scripts end to end, the accuracy gate, packaging."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile

from .conftest import ROOT, subprocess_env


def test_end_to_end_on_the_sample_passes_the_gate(local_pipeline):
    out = local_pipeline.out
    assert local_pipeline.code == 0, out + local_pipeline.err
    steps = [line.split(" ...")[0] for line in out.splitlines() if re.match(r"\[\d/4\] ", line)]
    assert steps == ["[1/4] PreprocessData", "[2/4] TrainModel", "[3/4] EvaluateModel", "[4/4] CheckAccuracy"]
    assert re.search(r"metric train:accuracy = 0\.\d{4}", out)
    assert re.search(r"metric validation:accuracy = 0\.\d{4}", out)
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert re.search(rf"^      {metric} +0\.\d{{4}}$", out, re.MULTILINE), metric
    assert "confusion matrix" in out
    assert re.search(r"PASSED: test accuracy 0\.\d{4} >= threshold 0\.7000", out)


def test_model_is_packaged_like_sagemaker(local_pipeline):
    archive = local_pipeline.work / "evaluation" / "model" / "model.tar.gz"
    with tarfile.open(archive, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["code", "code/inference.py", "model.joblib", "preprocessor.joblib"]


def test_too_high_threshold_fails_with_non_zero_exit(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_code.local_run", "--accuracy-threshold", "0.999", "--n-estimators", "5"],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"FAILED: test accuracy 0\.\d{4} is below the threshold 0\.9990", result.stderr)
    assert "[3/4] EvaluateModel" in result.stdout


def test_a_failing_step_stops_the_run(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_code.local_run", "--data", str(data), "--target-column", "label",
         "--work-dir", str(tmp_path / "work")],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "ERROR: target column 'label' not found" in result.stdout
    assert "FAILED: PreprocessData failed" in result.stderr
    assert "[2/4]" not in result.stdout


def test_make_local_run_can_keep_its_work_directory_for_a_serving_round_trip(local_pipeline):
    assert f"Kept in {local_pipeline.work}" in local_pipeline.out
    assert (local_pipeline.work / "evaluation" / "output" / "evaluation.json").is_file()
    dry_run = subprocess.run(["make", "-n", "local-run", "KEEP=.local-run"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "-m pipeline_code.local_run" in dry_run.stdout and "--work-dir .local-run" in dry_run.stdout, dry_run.stdout + dry_run.stderr
