"""Fixtures for the step-script tests: small data sets, in-process runs, one local pipeline run."""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import pandas as pd
import pytest

from pipeline_code import local_run
from pipeline_code.steps import preprocess
from tests.conftest import once_per_run

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipeline_code" / "data" / "sample.csv"
SAMPLE_TARGET = "churn_risk"
# The pipeline builder's metric definitions for the training job.
TRAIN_ACCURACY_RE = r"Train Accuracy: ([0-9\.]+)"
VALIDATION_ACCURACY_RE = r"Validation Accuracy: ([0-9\.]+)"


def pytest_collection_modifyitems(items):
    """scikit-learn 1.2 calls a pandas 2.x API deprecated since; the container's pandas 1.x has no such warning."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:is_sparse is deprecated:DeprecationWarning"))


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_main(main: Callable[..., int], argv: Sequence[str], **kwargs) -> Run:
    """Call a script's main() in-process, capturing what it prints."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv), **kwargs)
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 1
    return Run(code, out.getvalue(), err.getvalue())


def make_frame(rows: int = 400, classes: Sequence = ("no", "yes"), seed: int = 0) -> pd.DataFrame:
    """A small learnable data set: 2 numeric and 2 categorical features, a few missing cells."""
    rng = np.random.RandomState(seed)
    k = len(classes)
    label_index = rng.randint(0, k, rows)
    x1 = label_index * 2.0 + rng.normal(0, 0.6, rows)
    x2 = rng.normal(0, 1, rows)
    color = np.where(rng.random_sample(rows) < 0.7, np.array(["red", "green", "blue", "black"])[label_index % 4], "grey")
    size = rng.choice(["S", "M", "L"], rows)
    frame = pd.DataFrame({"x1": np.round(x1, 3), "x2": np.round(x2, 3), "color": color, "size": size,
                          "label": np.asarray(classes, dtype=object)[label_index]})
    frame.loc[rng.random_sample(rows) < 0.05, "x2"] = np.nan
    frame.loc[rng.random_sample(rows) < 0.05, "size"] = None
    return frame


def preprocess_frame(frame: pd.DataFrame, root: Path, target: str = "label", extra: Sequence[str] = ()) -> Path:
    """Write ``frame`` as CSV under root/input and preprocess it into root/output."""
    input_dir, output_dir = root / "input", root / "output"
    input_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(input_dir / "data.csv", index=False)
    run = run_main(preprocess.main, ["--input-dir", str(input_dir), "--output-dir", str(output_dir),
                                     "--target-column", target, *extra])
    assert run.code == 0, run.err
    return output_dir


def train_env(output_dir: Path, model_dir: Path) -> Dict[str, str]:
    return {
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHANNEL_TRAIN": str(output_dir / "train"),
        "SM_CHANNEL_VALIDATION": str(output_dir / "validation"),
        "SM_CHANNEL_PREPROCESSOR": str(output_dir / "artifacts"),
    }


@pytest.fixture(scope="session")
def sample_output(tmp_path_factory) -> Path:
    """The bundled sample, preprocessed once."""
    root = tmp_path_factory.mktemp("sample")
    (root / "input").mkdir()
    (root / "input" / "sample.csv").write_bytes(SAMPLE.read_bytes())
    run = run_main(preprocess.main, ["--input-dir", str(root / "input"), "--output-dir", str(root / "output"),
                                     "--target-column", SAMPLE_TARGET])
    assert run.code == 0, run.err
    return root / "output"


@dataclass
class LocalRun:
    code: int
    out: str
    err: str
    work: Path

    @property
    def model_dir(self) -> Path:
        return self.work / "training" / "model"


@pytest.fixture(scope="session")
def local_pipeline(tmp_path_factory) -> LocalRun:
    """One end-to-end local run on the sample (real scripts as subprocesses), shared by the tests."""
    def run_into(work: Path) -> None:
        run = run_main(local_run.main, ["--work-dir", str(work)])
        (work / "run.json").write_text(json.dumps({"code": run.code, "out": run.out, "err": run.err}), encoding="utf-8")

    work, _ = once_per_run(tmp_path_factory, "local-run", run_into)
    run = json.loads((work / "run.json").read_text(encoding="utf-8"))
    return LocalRun(run["code"], run["out"], run["err"], work)


def subprocess_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env.update(extra or {})
    return env
