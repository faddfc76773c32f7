"""Run the ML pipeline's real step scripts locally, in pipeline order, without AWS.

    python -m pipeline_code.local_run [--data PATH] [--target-column NAME]
                                      [--accuracy-threshold 0.7] [--work-dir DIR]

PreprocessData -> TrainModel -> EvaluateModel -> CheckAccuracy, each step a subprocess running the
same script file SageMaker runs, with the container paths and ``SM_*`` variables mapped into the
work directory (laid out like the containers: processing/input/data, processing/output,
training/model, training/checkpoints, evaluation/model/model.tar.gz, evaluation/output). The
model directory is packed into model.tar.gz as SageMaker does before evaluation. Exit code 0 when
the model passes the accuracy gate, 1 when it does not, 2 when a step fails.

With no arguments it uses pipeline_code/data/sample.csv and its target column ``churn_risk``.
Without ``--work-dir`` the work happens in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
STEPS = HERE / "steps"
SAMPLE_DATA = HERE / "data" / "sample.csv"
SAMPLE_TARGET = "churn_risk"
# The training job's metric definitions (name -> regex), as the pipeline builder declares them.
METRIC_DEFINITIONS = {
    "train:accuracy": r"Train Accuracy: ([0-9\.]+)",
    "validation:accuracy": r"Validation Accuracy: ([0-9\.]+)",
}
TOTAL_STEPS = 4


class StepFailed(Exception):
    pass


def run_step(number: int, name: str, script: str, args: Sequence[str], env: Dict[str, str]) -> str:
    """Run one step script as its own process, streaming its output; return the output."""
    print(f"[{number}/{TOTAL_STEPS}] {name} ...", flush=True)
    started = time.perf_counter()
    command = [sys.executable, str(STEPS / script), *args]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: List[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        print(f"      {line.rstrip()}", flush=True)
    code = process.wait()
    if code != 0:
        raise StepFailed(f"{name} failed (exit code {code}); see its output above")
    print(f"      {name} done in {time.perf_counter() - started:.1f}s", flush=True)
    return "".join(lines)


def package_model(model_dir: Path, archive: Path) -> None:
    """model.tar.gz as SageMaker makes it: the model directory's contents at the archive root."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline_code.local_run", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="CSV/parquet file or directory of them (default: the bundled sample)")
    parser.add_argument("--target-column", help=f"label column (default with the sample: {SAMPLE_TARGET})")
    parser.add_argument("--accuracy-threshold", type=float, default=0.7, help="minimum test accuracy (default: 0.7)")
    parser.add_argument("--work-dir", type=Path, help="keep all step inputs and outputs here (default: a temporary dir)")
    parser.add_argument("--algorithm", default="random-forest", help="training algorithm (default: random-forest)")
    parser.add_argument("--n-estimators", type=int, default=200, help="ensemble size (default: 200)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the split and the model (default: 42)")
    args = parser.parse_args(argv)
    if args.data is None:
        args.data = SAMPLE_DATA
        args.target_column = args.target_column or SAMPLE_TARGET
    elif not args.target_column:
        parser.error("--target-column is required with --data")
    if not args.data.exists():
        parser.error(f"--data {args.data} does not exist")
    return args


def run_pipeline(args: argparse.Namespace, work: Path) -> int:
    for sub in ("processing", "training", "evaluation"):  # a fresh run: no stale outputs or checkpoints
        shutil.rmtree(work / sub, ignore_errors=True)
    input_dir = work / "processing" / "input" / "data"
    output_dir = work / "processing" / "output"
    model_dir = work / "training" / "model"
    checkpoint_dir = work / "training" / "checkpoints"
    evaluation_model_dir = work / "evaluation" / "model"
    evaluation_dir = work / "evaluation" / "output"
    if args.data.is_dir():
        shutil.copytree(args.data, input_dir)
    else:
        input_dir.mkdir(parents=True)
        shutil.copy2(args.data, input_dir / args.data.name)
    target = args.target_column
    print(f"Local pipeline run: data={args.data} target={target} work-dir={work}", flush=True)

    run_step(1, "PreprocessData", "preprocess.py", [
        "--input-dir", str(input_dir), "--output-dir", str(output_dir),
        "--target-column", target, "--seed", str(args.seed),
    ], {})
    training_output = run_step(2, "TrainModel", "train.py", [
        "--target-column", target, "--algorithm", args.algorithm, "--n-estimators", str(args.n_estimators),
        "--seed", str(args.seed), "--checkpoint-dir", str(checkpoint_dir),
    ], {
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHANNEL_TRAIN": str(output_dir / "train"),
        "SM_CHANNEL_VALIDATION": str(output_dir / "validation"),
        "SM_CHANNEL_PREPROCESSOR": str(output_dir / "artifacts"),
    })
    for metric, pattern in METRIC_DEFINITIONS.items():
        found = re.findall(pattern, training_output)
        if not found:
            raise StepFailed(f"TrainModel printed no '{metric}' metric (regex {pattern})")
        print(f"      metric {metric} = {float(found[-1]):.4f}", flush=True)
    package_model(model_dir, evaluation_model_dir / "model.tar.gz")
    run_step(3, "EvaluateModel", "evaluate.py", [
        "--model-dir", str(evaluation_model_dir), "--test-dir", str(output_dir / "test"),
        "--output-dir", str(evaluation_dir), "--target-column", target,
    ], {})

    print(f"[{TOTAL_STEPS}/{TOTAL_STEPS}] CheckAccuracy ...", flush=True)
    report = json.loads((evaluation_dir / "evaluation.json").read_text(encoding="utf-8"))
    metrics = report["metrics"]
    print("Evaluation metrics (test split):")
    for name, entry in metrics.items():
        if name != "confusion_matrix":
            print(f"      {name:<9} {entry['value']:.4f}")
    print(f"      confusion matrix (actual -> predicted): {json.dumps(metrics['confusion_matrix'])}", flush=True)
    accuracy = metrics["accuracy"]["value"]
    if accuracy < args.accuracy_threshold:
        print(f"FAILED: test accuracy {accuracy:.4f} is below the threshold {args.accuracy_threshold:.4f}; "
              "the pipeline would stop here and not register the model", file=sys.stderr, flush=True)
        return 1
    print(f"PASSED: test accuracy {accuracy:.4f} >= threshold {args.accuracy_threshold:.4f}", flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    temporary = args.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="pipeline-local-run-")) if temporary else args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        code = run_pipeline(args, work)
    except StepFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr, flush=True)
        code = 2
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    if not temporary:
        print(f"Kept in {work}: the model (training/model, evaluation/model/model.tar.gz) and the evaluation "
              "(evaluation/output/evaluation.json)", flush=True)
    print(f"Local run finished in {time.perf_counter() - started:.1f}s (exit code {code})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
