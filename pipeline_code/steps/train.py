#!/usr/bin/env python3
"""TrainModel: SageMaker training step (scikit-learn script mode) with spot-safe checkpoints.

Reads the transformed ``train`` and ``validation`` CSVs written by preprocess.py, fits a classifier
and writes ``model.joblib`` (the bare scikit-learn estimator) plus a copy of ``preprocessor.joblib``
and the serving handlers (``code/inference.py``) into ``SM_MODEL_DIR``, so that model.tar.gz alone
is enough for serving. Prints exactly::

    Train Accuracy: 0.9123
    Validation Accuracy: 0.8765

Hyperparameters arrive as command-line arguments (``--n-estimators 200``; underscore spellings are
accepted too). Paths come from the SageMaker environment: ``SM_MODEL_DIR``, ``SM_CHANNEL_TRAIN``,
``SM_CHANNEL_VALIDATION`` and ``SM_CHANNEL_PREPROCESSOR`` (the directory with preprocessor.joblib).

Checkpoints (``--checkpoint-dir``, default /opt/ml/checkpoints, which SageMaker syncs with S3 for
managed spot training): ensembles grow in chunks with ``warm_start`` and are checkpointed after
each chunk (write to a temporary file, then rename; a manifest written last names the valid
files). A restarted job whose checkpoint matches its data and hyperparameters resumes from it and
ends with exactly the model an uninterrupted run would have produced.

Test hook: with ``PIPELINE_TEST_EXIT_AFTER_CHECKPOINTS=N`` in the environment the script stops
abruptly (exit code 143, as on SIGTERM) right after writing its N-th checkpoint, to simulate a spot
interruption. Never set it in a real job.

Ships with ``stepkit.py`` (and ``inference.py``) in the training source tarball: Python 3.9+,
scikit-learn 1.2, pyarrow 14+.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import joblib
import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from stepkit import StepError, atomic_write, csv_files, exit_on_error, read_split

ALGORITHMS = ("random-forest", "gradient-boosting", "logistic-regression")
ENSEMBLES = ("random-forest", "gradient-boosting")
CHECKPOINT_CHUNKS = 10  # an ensemble is grown (and checkpointed) in about this many chunks
TEST_HOOK_ENV = "PIPELINE_TEST_EXIT_AFTER_CHECKPOINTS"
INTERRUPTED_EXIT_CODE = 143
MANIFEST = "manifest.json"


class TrainError(StepError):
    """A problem with the inputs or arguments; reported as one line, exit code 2."""


# ----------------------------------------------------------------------------------------- data


def load_preprocessor(directory: Path) -> Tuple[Path, dict]:
    path = directory / "preprocessor.joblib"
    if not path.is_file():
        raise TrainError(f"preprocessor.joblib not found in {directory} (SM_CHANNEL_PREPROCESSOR)")
    payload = joblib.load(path)
    missing = [k for k in ("output_feature_names", "target_column", "target_type") if k not in payload]
    if not isinstance(payload, dict) or missing:
        raise TrainError(f"{path} is not a preprocessor artifact written by preprocess.py (missing {', '.join(missing)})")
    return path, payload


def read_training_split(files: Sequence[Path], payload: dict, target: str) -> Tuple[np.ndarray, np.ndarray]:
    """Transformed features (float32, in the preprocessor's column order) and labels."""
    if payload["target_column"] != target:
        raise TrainError(f"--target-column is '{target}' but the data was preprocessed for '{payload['target_column']}'")
    X, y = read_split(files, payload, target)
    if np.isnan(X).any():
        raise TrainError(f"missing feature values in {', '.join(str(p) for p in files)}: not the output of preprocess.py")
    return X, y


# ---------------------------------------------------------------------------------------- model


def make_model(args: argparse.Namespace):
    trees = dict(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        min_samples_split=args.min_samples_split,
        min_samples_leaf=args.min_samples_leaf,
        random_state=args.seed,
    )
    if args.algorithm == "random-forest":
        return RandomForestClassifier(**trees, n_jobs=-1)
    if args.algorithm == "gradient-boosting":
        return GradientBoostingClassifier(**trees)
    return LogisticRegression(max_iter=2000, random_state=args.seed)


class Checkpoints:
    """Chunked checkpoints of a growing ensemble in one directory, described by manifest.json.

    Random forest: the first file holds the forest after the first chunk, each later file only the
    trees that chunk added (so checkpoint cost stays linear). Gradient boosting: the latest file
    holds the whole model (its trees are small).
    """

    def __init__(self, directory: Optional[Path], fingerprint: str, algorithm: str, exit_after: int = 0):
        # One sub-directory per data + hyperparameters: the parallel jobs of a tuning run may share
        # one checkpoint location, and must never read or overwrite each other's files.
        if directory is not None:
            directory = directory / fingerprint[:16]
            directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.fingerprint, self.algorithm = directory, fingerprint, algorithm
        self.exit_after, self.written = exit_after, 0
        self.files: List[str] = []

    def resume(self):
        """The checkpointed model if a matching checkpoint exists, else None."""
        if self.directory is None or not (self.directory / MANIFEST).is_file():
            return None
        try:
            manifest = json.loads((self.directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"[train] ignoring unreadable checkpoint manifest: {exc}", flush=True)
            return None
        if manifest.get("fingerprint") != self.fingerprint:
            print("[train] ignoring checkpoint from different data or hyperparameters; starting afresh", flush=True)
            return None
        files = manifest["files"]
        try:
            model = joblib.load(self.directory / files[0])
            if self.algorithm == "random-forest":
                for name in files[1:]:
                    model.estimators_.extend(joblib.load(self.directory / name))
                model.n_estimators = len(model.estimators_)
        except Exception as exc:  # a partial S3 sync, a truncated file: start afresh rather than fail
            print(f"[train] ignoring unreadable checkpoint ({type(exc).__name__}: {exc}); starting afresh", flush=True)
            return None
        self.files = list(files)
        return model

    def save(self, model, previous: int, done: int) -> None:
        if self.directory is None:
            return
        if self.algorithm == "random-forest":
            name = f"forest-{done:06d}.joblib"
            part = model if not self.files else model.estimators_[previous:done]
            files = self.files + [name]
        else:
            name = f"model-{done:06d}.joblib"
            part, files = model, [name]
        atomic_write(self.directory / name, lambda fh: joblib.dump(part, fh))
        manifest = {"format_version": 1, "fingerprint": self.fingerprint, "algorithm": self.algorithm,
                    "n_estimators_done": done, "files": files}
        atomic_write(self.directory / MANIFEST, lambda fh: fh.write(json.dumps(manifest, indent=2).encode("utf-8")))
        for stale in set(self.files) - set(files):
            (self.directory / stale).unlink()
        self.files = files
        self.written += 1
        print(f"[train] checkpoint: {done} estimators -> {self.directory / name}", flush=True)
        if self.exit_after and self.written >= self.exit_after:
            print(f"[train] test hook {TEST_HOOK_ENV}={self.exit_after}: stopping as if interrupted", flush=True)
            sys.stderr.flush()
            os._exit(INTERRUPTED_EXIT_CODE)


def fingerprint(args: argparse.Namespace, files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    config = {k: getattr(args, k) for k in ("algorithm", "n_estimators", "max_depth", "min_samples_split",
                                            "min_samples_leaf", "seed", "target_column")}
    digest.update(json.dumps(config, sort_keys=True).encode("utf-8"))
    for path in files:
        digest.update(path.name.encode("utf-8"))
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fit(args: argparse.Namespace, X: np.ndarray, y: np.ndarray, checkpoints: Checkpoints):
    if args.algorithm not in ENSEMBLES:
        return make_model(args).fit(X, y)
    model = checkpoints.resume()
    done = 0 if model is None else (len(model.estimators_))
    if model is None:
        model = make_model(args)
    else:
        print(f"[train] resuming from checkpoint with {done} of {args.n_estimators} estimators", flush=True)
    chunk = max(1, -(-args.n_estimators // CHECKPOINT_CHUNKS))
    while done < args.n_estimators:
        step = min(chunk, args.n_estimators - done)
        model.set_params(n_estimators=done + step, warm_start=True)
        model.fit(X, y)
        checkpoints.save(model, done, done + step)
        done += step
    model.set_params(warm_start=False)
    return model


# ----------------------------------------------------------------------------------------- main


def _optional_int(value: str) -> Optional[int]:
    if str(value).strip().lower() in ("none", "null", "", "0"):
        return None
    return int(value)


def parse_args(argv: Optional[Sequence[str]], env: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--n-estimators", "--n_estimators", type=int, default=200, help="trees (ensembles only; default: 200)")
    add("--max-depth", "--max_depth", type=_optional_int, default=15, help="tree depth, 'none' for unlimited (default: 15)")
    add("--min-samples-split", "--min_samples_split", type=int, default=4, help="(default: 4)")
    add("--min-samples-leaf", "--min_samples_leaf", type=int, default=1, help="(default: 1)")
    add("--algorithm", choices=ALGORITHMS, default="random-forest", help="(default: random-forest)")
    add("--target-column", "--target_column", required=True, help="name of the label column")
    add("--seed", type=int, default=42, help="(default: 42)")
    add("--checkpoint-dir", "--checkpoint_dir", default="/opt/ml/checkpoints", help="(default: /opt/ml/checkpoints)")
    add("--model-dir", "--model_dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"), help="(default: $SM_MODEL_DIR)")
    add("--train", default=env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"), help="(default: $SM_CHANNEL_TRAIN)")
    add("--validation", default=env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"),
        help="(default: $SM_CHANNEL_VALIDATION)")
    add("--preprocessor", default=env.get("SM_CHANNEL_PREPROCESSOR", "/opt/ml/input/data/preprocessor"),
        help="directory with preprocessor.joblib (default: $SM_CHANNEL_PREPROCESSOR)")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"[train] ignoring unknown argument(s): {' '.join(unknown)}", flush=True)
    if args.n_estimators < 1 or args.min_samples_split < 2 or args.min_samples_leaf < 1:
        parser.error("need --n-estimators >= 1, --min-samples-split >= 2 and --min-samples-leaf >= 1")
    return args


def run(args: argparse.Namespace, env: Mapping[str, str]) -> Dict[str, float]:
    started = time.perf_counter()
    preprocessor_path, payload = load_preprocessor(Path(args.preprocessor))
    train_files = csv_files(Path(args.train), "train channel")
    validation_files = csv_files(Path(args.validation), "validation channel")
    X_train, y_train = read_training_split(train_files, payload, args.target_column)
    X_val, y_val = read_training_split(validation_files, payload, args.target_column)
    print(f"[train] {args.algorithm}: {X_train.shape[0]} training rows x {X_train.shape[1]} features, "
          f"{X_val.shape[0]} validation rows, {len(np.unique(y_train))} classes", flush=True)

    checkpoint_dir: Optional[Path] = Path(args.checkpoint_dir)
    try:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"[train] checkpoints disabled: cannot create {checkpoint_dir}: {exc}", flush=True)
        checkpoint_dir = None
    exit_after = int(env.get(TEST_HOOK_ENV, "0") or 0)
    checkpoints = Checkpoints(checkpoint_dir, fingerprint(args, train_files), args.algorithm, exit_after)
    model = fit(args, X_train, y_train, checkpoints)

    train_accuracy = float(model.score(X_train, y_train))
    validation_accuracy = float(model.score(X_val, y_val))
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(model_dir / "model.joblib", lambda fh: joblib.dump(model, fh))
    shutil.copyfile(preprocessor_path, model_dir / "preprocessor.joblib")
    _bundle_serving_code(model_dir)
    print(f"[train] wrote {model_dir / 'model.joblib'} and preprocessor.joblib in {time.perf_counter() - started:.1f}s",
          flush=True)
    print(f"Train Accuracy: {train_accuracy:.4f}", flush=True)
    print(f"Validation Accuracy: {validation_accuracy:.4f}", flush=True)
    return {"train_accuracy": train_accuracy, "validation_accuracy": validation_accuracy}


def _bundle_serving_code(model_dir: Path) -> None:
    """Put the serving handlers into ``<model_dir>/code``, so model.tar.gz carries its own code.

    The registered model then runs with SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code: every
    package version keeps the code it was trained with, and serving needs no other S3 object.
    """
    handlers = Path(__file__).with_name("inference.py")
    if not handlers.is_file():
        raise TrainError(f"the serving handlers {handlers.name} are missing next to {Path(__file__).name}")
    code_dir = model_dir / "code"
    code_dir.mkdir(exist_ok=True)
    shutil.copyfile(handlers, code_dir / "inference.py")


def main(argv: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None) -> int:
    env = os.environ if env is None else env
    args = parse_args(argv, env)
    output_dir = env.get("SM_OUTPUT_DIR")  # SageMaker shows /opt/ml/output/failure as the failure reason
    return exit_on_error(lambda: run(args, env), failure_file=os.path.join(output_dir, "failure") if output_dir else None)


if __name__ == "__main__":
    sys.exit(main())
