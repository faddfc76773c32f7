"""The step scripts stay runnable in the SageMaker containers: Python 3.9 syntax, only the container's
packages and the stepkit.py shipped beside them; the serving handlers stand alone."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from .conftest import ROOT

STEPS = ROOT / "pipeline_code" / "steps"
SCRIPTS = ["preprocess.py", "train.py", "evaluate.py", "inference.py", "stepkit.py"]
# train.py copies inference.py alone into model.tar.gz: it must not need stepkit.py.
STANDALONE = {"inference.py", "stepkit.py"}
# What the scikit-learn 1.2-1 containers provide besides the standard library.
# boto3 (botocore) comes with the containers' SageMaker toolkits; stepkit imports it only when an AWS error is handled.
CONTAINER_PACKAGES = {"numpy", "pandas", "sklearn", "joblib", "pyarrow", "scipy", "sagemaker_inference", "flask", "boto3", "botocore"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_python_39_syntax(script):
    source = (STEPS / script).read_text(encoding="utf-8")
    ast.parse(source, filename=script, feature_version=(3, 9))
    assert "from __future__ import annotations" in source


@pytest.mark.parametrize("script", SCRIPTS)
def test_imports_only_stdlib_and_container_packages(script):
    tree = ast.parse((STEPS / script).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{script} has a relative import"
            imported.add(node.module.split(".")[0])
    shipped = set() if script in STANDALONE else {"stepkit"}
    foreign = imported - CONTAINER_PACKAGES - shipped - set(sys.stdlib_module_names)
    assert not foreign, f"{script} imports {sorted(foreign)}"


def test_sample_data_regenerates_byte_identically(tmp_path):
    out = tmp_path / "sample.csv"
    subprocess.run([sys.executable, str(ROOT / "pipeline_code" / "data" / "make_sample.py"), "--out", str(out)],
                   check=True, capture_output=True, timeout=60)
    assert out.read_bytes() == (ROOT / "pipeline_code" / "data" / "sample.csv").read_bytes()
