#!/usr/bin/env python3
"""The SageMaker ML platform: one ``PlatformStage`` for the environment chosen with ``-c env=NAME``."""

import json
import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from config import ConfigError, load_config
from stacks.platform_stage import PlatformStage


def build_app(app: cdk.App) -> PlatformStage:
    """Add the selected environment's stage, checked by cdk-nag, to ``app``."""
    config = load_config(app.node.try_get_context("env"))
    stage = PlatformStage(app, f"MlPlatform-{config.name}", config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return stage


def cdk_json_context() -> dict:
    """The feature flags in ``cdk.json``, for runs without the CDK CLI (tests, benchmarks, ``python app.py``)."""
    with open(Path(__file__).with_name("cdk.json"), encoding="utf-8") as f:
        return json.load(f)["context"]


def main() -> None:
    # The CLI passes cdk.json's context itself; a plain `python app.py` reads it here.
    context = None if "CDK_CONTEXT_JSON" in os.environ else cdk_json_context()
    app = cdk.App(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"), context=context)
    try:
        build_app(app)
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
