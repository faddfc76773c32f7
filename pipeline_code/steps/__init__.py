"""The pipeline's step scripts.

Each file is an entry point that SageMaker runs on its own in the scikit-learn 1.2-1 containers
(Python 3.9): ``preprocess.py`` and ``evaluate.py`` as processing jobs, ``train.py`` as the
training job and ``inference.py`` as the serving handlers. They import nothing from each other or
from the rest of the repository; this package file only lets tests and the local runner import them.
"""
