"""DriftCheck: data and prediction drift of an endpoint's captured traffic against the training baseline.

A processing job that needs no SageMaker Model Monitor: it reads the endpoint's data-capture
files (SageMaker's layout ``<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``, one captured invocation
per line) from ``--capture-dir`` or, listing only the window's hour folders, straight from S3
(``--capture-s3-uri``, the capture destination), keeps the events whose ``inferenceTime`` falls in
``[--window-start, --window-end)`` (default: the hour before now), decodes the request rows
(CSV or JSON, plain or base64) and the predicted labels, compares them with ``baseline.json``
(written by preprocess.py; a local file, an S3 object, or the drift-check baseline registered with
``--model-package-arn``) and writes ``drift-report.json`` and ``drift-report.html`` to
``--output-dir``; unless ``--no-publish-metrics``, it also publishes CloudWatch metrics.

Scores (the baseline is a profile, not the training rows, so everything is computed from it):

* numeric features: PSI over the baseline's 10 histogram bins (the first and last bins open-ended)
  plus a bin for missing values; the KS distance at the points where the baseline CDF is known
  (training min and max, the 9 inner bin edges, the 7 quantiles); the Wasserstein-1 distance
  between the capture's quantile function and the baseline's, interpolated linearly through those
  points (reported in feature units and in baseline standard deviations).
* categorical features: PSI and Jensen-Shannon distance (base 2) over the baseline's levels, one
  "other" bucket (levels the baseline does not list) and a missing bucket.
* predictions: PSI and Jensen-Shannon distance of the predicted labels against the training
  labels' distribution.

A feature has drifted when its PSI exceeds ``--psi-threshold`` or (numeric) its KS distance
exceeds ``--ks-threshold``; the predictions when their PSI exceeds ``--psi-threshold``.
Malformed capture lines and payloads are counted and skipped, never fatal. A missing or invalid
baseline ends the job with exit code 2 and one ``ERROR:`` line.

The package, by concern: ``capture`` (reading the capture window, from a directory or S3),
``baseline`` (the profile, from a file, S3 or the model package), ``scores``, ``report`` (JSON and
HTML), ``metrics`` (CloudWatch), ``aws`` (URIs, region, clients), ``cli`` (arguments, one run, exit
codes). It ships as a tarball with ``stepkit.py`` beside it and runs as ``python3 -m drift_check``
(``drift_pipeline.py``); from the repository, ``python -m pipeline_code.steps.drift_check``.
Python 3.9+, numpy, scipy; boto3 (imported only when needed) to read S3, describe the model package
and publish metrics.
"""

from __future__ import annotations

from .cli import (
    DEFAULT_KS_THRESHOLD,
    DEFAULT_NAMESPACE,
    DEFAULT_PSI_THRESHOLD,
    main,
    parse_args,
)

__all__ = ["DEFAULT_KS_THRESHOLD", "DEFAULT_NAMESPACE", "DEFAULT_PSI_THRESHOLD", "main", "parse_args"]
