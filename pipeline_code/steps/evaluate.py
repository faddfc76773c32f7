#!/usr/bin/env python3
"""EvaluateModel: SageMaker processing step that scores the trained model on the test split.

Unpacks ``model.tar.gz`` from ``--model-dir`` (as the TrainModel step produced it), predicts the
transformed ``test.csv`` from ``--test-dir`` and writes ``evaluation.json`` to ``--output-dir``::

    {"metrics": {"accuracy": {"value": 0.87}, "precision": {"value": ...}, "recall": {"value": ...},
                 "f1": {"value": ...}, "roc_auc": {"value": ...},
                 "confusion_matrix": {"<actual label>": {"<predicted label>": count, ...}, ...}},
     "evaluation": {...details: rows, labels, averaging, positive label...}}

Binary problems: precision, recall and F1 of the positive class, which is the model's second
class in sorted order (``classes_[1]``: 1 for 0/1, "yes" for no/yes); ROC AUC from its
probability. Multi-class: macro averages, and one-vs-rest macro ROC AUC from ``predict_proba``.
``roc_auc`` is left out where it is undefined: fewer than two classes in the test labels, a
model class absent from them (multi-class), test labels the model never saw, or a model without
``predict_proba``.

Ships with ``stepkit.py`` beside it (the processing job's code tarball): Python 3.9+,
scikit-learn 1.2, pyarrow 14+.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import joblib
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score
from stepkit import StepError, atomic_write, csv_files, exit_on_error, one_line, read_split

DEFAULT_MODEL_DIR = "/opt/ml/processing/model"
DEFAULT_TEST_DIR = "/opt/ml/processing/test"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/evaluation"


class EvaluateError(StepError):
    """A problem with the inputs or arguments; reported as one line, exit code 2."""


def extract_model(model_dir: Path, into: Path) -> Path:
    """The directory holding model.joblib: model.tar.gz unpacked safely, or model_dir itself."""
    archive = model_dir / "model.tar.gz"
    if not archive.is_file():
        if (model_dir / "model.joblib").is_file():
            return model_dir
        raise EvaluateError(f"model.tar.gz not found in {model_dir}")
    root = into.resolve()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = []
            for member in tar.getmembers():
                target = (root / member.name).resolve()
                if root not in target.parents and target != root:
                    raise EvaluateError(f"{archive} has an entry outside the archive root: {member.name}")
                if member.isfile() or member.isdir():
                    members.append(member)
            if hasattr(tarfile, "data_filter"):  # Python 3.9.17+/3.11.4+: refuse links and special files
                tar.extractall(root, members=members, filter="data")
            else:
                tar.extractall(root, members=members)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EvaluateError(f"cannot unpack {archive}: {one_line(exc)}") from None
    for candidate in [root] + sorted(p.parent for p in root.rglob("model.joblib")):
        if (candidate / "model.joblib").is_file():
            return candidate
    raise EvaluateError(f"{archive} contains no model.joblib")


def load_model(directory: Path):
    model = joblib.load(directory / "model.joblib")
    payload_path = directory / "preprocessor.joblib"
    if not payload_path.is_file():
        raise EvaluateError("preprocessor.joblib missing next to model.joblib in the model archive")
    return model, joblib.load(payload_path)


def _py(value):
    return value.item() if isinstance(value, np.generic) else value


def compute_metrics(model, X: np.ndarray, y_true: np.ndarray) -> Tuple[Dict[str, object], Dict[str, object]]:
    """The ``metrics`` section of evaluation.json and a few details about how it was computed."""
    y_pred = model.predict(X)
    classes = list(model.classes_)
    binary = len(classes) == 2
    details: Dict[str, object] = {"rows": int(len(y_true)), "model_classes": [_py(c) for c in classes]}
    if binary:
        positive = classes[1]
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, average="binary", pos_label=positive, zero_division=0
        )
        details.update(average="binary", positive_label=_py(positive))
    else:
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
        details.update(average="macro")
    metrics: Dict[str, object] = {
        "accuracy": {"value": float(accuracy_score(y_true, y_pred))},
        "precision": {"value": float(precision)},
        "recall": {"value": float(recall)},
        "f1": {"value": float(f1)},
    }

    present = set(np.unique(y_true).tolist())
    reason = None
    if not hasattr(model, "predict_proba"):
        reason = "model has no predict_proba"
    elif len(present) < 2:
        reason = "test labels have a single class"
    elif not present <= set(classes):
        reason = "test labels include classes the model never saw"
    elif not binary and present != set(classes):
        reason = "some model classes are absent from the test labels"
    if reason is None:
        proba = model.predict_proba(X)
        if binary:
            auc = roc_auc_score(y_true == classes[1], proba[:, 1])
        else:
            auc = roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes)
        metrics["roc_auc"] = {"value": float(auc)}
    else:
        details["roc_auc_omitted"] = reason

    labels = sorted(present | set(np.unique(y_pred).tolist()), key=lambda v: (str(type(v)), v))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    metrics["confusion_matrix"] = {
        str(actual): {str(predicted): int(matrix[i, j]) for j, predicted in enumerate(labels)}
        for i, actual in enumerate(labels)
    }
    return metrics, details


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR, help=f"directory with model.tar.gz (default: {DEFAULT_MODEL_DIR})")
    parser.add_argument("--test-dir", default=DEFAULT_TEST_DIR, help=f"directory with test.csv (default: {DEFAULT_TEST_DIR})")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help=f"where evaluation.json goes (default: {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--target-column", required=True, help="name of the label column")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="evaluate-model-") as tmp:
        model, payload = load_model(extract_model(Path(args.model_dir), Path(tmp)))
    X, y = read_split(csv_files(Path(args.test_dir), "test"), payload, args.target_column)
    metrics, details = compute_metrics(model, X, y)
    report = {"metrics": metrics, "evaluation": details}

    atomic_write(Path(args.output_dir) / "evaluation.json", json.dumps(report, indent=2) + "\n")

    print(f"[evaluate] {details['rows']} test rows ({details['average']} averaging)", flush=True)
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        if name in metrics:
            print(f"{name}: {metrics[name]['value']:.4f}", flush=True)  # type: ignore[index]
    if "roc_auc_omitted" in details:
        print(f"roc_auc: omitted ({details['roc_auc_omitted']})", flush=True)
    print("confusion_matrix (rows: actual, columns: predicted): " + json.dumps(metrics["confusion_matrix"]), flush=True)
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return exit_on_error(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
