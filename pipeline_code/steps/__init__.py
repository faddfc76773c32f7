"""The code the pipelines' jobs run: step scripts, the drift check package and their shared helpers.

What belongs here: code that runs inside the SageMaker scikit-learn 1.2-1 containers (Python 3.9,
the standard library and the container's packages), never CDK, the SDK or the rest of the
repository. ``preprocess.py`` and ``evaluate.py`` run as processing jobs, ``train.py`` as the
training job, ``drift_check/`` as the drift-check processing job, ``inference.py`` as the serving
handlers; ``stepkit.py`` is what they share. Each job's code ships as one tarball with the helper
beside the entry point (``ml_constructs.step_code``), and the entry points import ``stepkit`` by its
top-level name, as SageMaker runs them: from their code directory, which is first on ``sys.path``.
Importing this package (tests, the local runner) puts this directory on ``sys.path`` for the same effect.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.append(_HERE)
