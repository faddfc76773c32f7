#!/usr/bin/env python3
"""The SageMaker ML platform: one ``PlatformStage`` for the environment chosen with ``-c env=NAME``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks

from config import ConfigError, load_config
from config.loader import DEFAULT_CONFIG_DIR
from ops.approved_model import context_key, missing_for_account, read_recorded
from pipeline_code.definitions.cache import DEFINITION_CACHE_CONTEXT
from stacks.platform_stage import PlatformStage
from stacks.serving_stack import ApprovedPackage

ROOT = Path(__file__).resolve().parent
# Context key: true (cdk.json's setting) adds the NIST 800-53 R5, HIPAA Security and PCI DSS 3.2.1 packs to
# AwsSolutions on every synth; false keeps AwsSolutions only.
COMPLIANCE_PACKS_CONTEXT = "ml-platform:compliance-packs"


def make_app(*, outdir: str, context: dict | None = None) -> cdk.App:
    """The CDK app as every synth here creates it (CLI, tests, benchmarks)."""
    app = cdk.App(
        outdir=outdir,
        context=context,
        # CDK's built-in CloudFormation validation repeats what cfn-lint checks in the test suite
        # (and `make lint`) and costs two seconds of every synth; cdk-nag stays on.
        builtin_cloud_formation_validation=False,
        # Stack traces name jsii's random temp folder: without them two synths are byte-identical.
        stack_traces=False,
    )
    app.node.set_context("aws:cdk:disable-creation-stack-traces", True)
    # Building the pipeline definition imports the SageMaker SDK (2 s); reuse it while its inputs hold.
    if os.environ.get("ML_PLATFORM_DEFINITION_CACHE", "1") != "0":
        cache_dir = Path(os.environ.get("ML_PLATFORM_CACHE_DIR", ROOT / ".cache")) / "pipeline-definitions"
        app.node.set_context(DEFINITION_CACHE_CONTEXT, str(cache_dir))
    return app


def build_app(app: cdk.App, *, config_dir: Path = DEFAULT_CONFIG_DIR) -> PlatformStage:
    """Add the environment selected with ``-c env=NAME`` to ``app``, checked by cdk-nag.

    The model package to serve comes from context (``ops.approved_model`` records it in
    ``cdk.context.json``), never from an AWS call.
    """
    config = load_config(app.node.try_get_context("env"), config_dir=config_dir)
    key = context_key(config.name)
    try:
        recorded = read_recorded({key: app.node.try_get_context(key)}, config.name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    package = ApprovedPackage.from_record(recorded) if recorded else None
    if package and config.region and package.region != config.region:
        raise ConfigError(
            f"context key '{key}': package {package.arn} is in region {package.region}, "
            f"environment '{config.name}' in {config.region}; allowed: a package of the environment's region"
        )
    if recorded and config.serving.enabled:
        _check_serves_from_account(recorded, config, key)
    # What the user must know about this environment (no endpoints yet, ...) is annotated in the stage.
    stage = PlatformStage(app, f"MlPlatform-{config.name}", config=config, approved_package=package)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    if app.node.try_get_context(COMPLIANCE_PACKS_CONTEXT) in (True, "true"):
        cdk.Validations.of(app).add_plugins(
            NIST80053R5Checks(verbose=True), HIPAASecurityChecks(verbose=True), PCIDSS321Checks(verbose=True)
        )
    return stage


def _check_serves_from_account(recorded: dict, config, key: str) -> None:
    """A package of another account is served only with what the stack must grant on the producer's side."""
    producer = recorded["arn"].split(":")[4]
    missing = missing_for_account(recorded, config.account)
    if missing:
        raise ConfigError(
            f"context key '{key}': package {recorded['arn']} belongs to account {producer}, environment "
            f"'{config.name}' to {config.account}, and the record lacks {', '.join(missing)} (where its archive is and "
            f"which key encrypts it); allowed: a record of `make approved-model ENV={config.name}`, which reads them"
        )
    if producer != (config.account or producer) and config.monitoring.model_monitor.enabled:
        raise ConfigError(
            f"context key '{key}': package {recorded['arn']} belongs to account {producer}, and "
            "monitoring.model_monitor.enabled is true: Model Monitor's baseline lives in that account's reports "
            "bucket, which is not shared; allowed: the platform's drift check (monitoring.model_monitor.enabled: "
            "false) for packages of another account"
        )


def cdk_json_context(*, recorded: bool = True) -> dict:
    """The context the CDK CLI would pass, for runs without it (tests, benchmarks, ``python app.py``):
    ``cdk.json``'s feature flags plus, with ``recorded``, the values in ``cdk.context.json``."""
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    recorded_file = ROOT / "cdk.context.json"
    if recorded and recorded_file.is_file():
        context.update(json.loads(recorded_file.read_text(encoding="utf-8")))
    return context


def run(build: Callable[[cdk.App], object]) -> None:
    """Build an app with ``build`` and synthesize it, as the CLI runs ``python app.py``: a configuration error or a
    cdk-nag finding ends the process with one message and no template."""
    # The CLI passes cdk.json's context itself; a plain `python app.py` reads it here.
    context = None if "CDK_CONTEXT_JSON" in os.environ else cdk_json_context()
    app = make_app(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"), context=context)
    try:
        build(app)
    except ConfigError as exc:
        sys.exit(f"error: {exc}")
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        # cdk-nag has already printed each finding with its construct path.
        sys.exit(f"error: cdk-nag found unacknowledged findings (listed above; report: {app.outdir}/validation-report.json)")


def main() -> None:
    run(build_app)


if __name__ == "__main__":
    main()
