#!/usr/bin/env python3
"""The delivery pipeline (``make synth-delivery``): one self-mutating CDK pipeline in the tooling account
deploying every environment of ``config/delivery.yaml``, in order (README "Delivery")."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from app import run
from config import ConfigError
from config.delivery import DEFAULT_DELIVERY_FILE, load_delivery
from config.loader import DEFAULT_CONFIG_DIR
from ops.approved_model import context_key, read_recorded
from ops.record_approved import read_withdrawn, withdrawn_key
from stacks.delivery_stack import DeliveryStack, DeliveryTarget
from stacks.serving_stack import ApprovedPackage

PIPELINE_STACK = "MlPlatformDelivery"


def build_delivery(app: cdk.App, *, delivery_file: Path = DEFAULT_DELIVERY_FILE, config_dir: Path = DEFAULT_CONFIG_DIR) -> DeliveryStack:
    """Add the pipeline stack to ``app``, checked by cdk-nag (the stack and every stack of every stage).

    What each environment serves comes from context (``make record-approved`` writes it), never from an AWS call.
    """
    plan = load_delivery(delivery_file, config_dir=config_dir)
    targets = []
    for config in plan.environments:
        key = context_key(config.name)
        try:
            recorded = read_recorded({key: app.node.try_get_context(key)}, config.name)
            withdrawn = read_withdrawn({withdrawn_key(config.name): app.node.try_get_context(withdrawn_key(config.name))}, config.name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        package = ApprovedPackage.from_record(recorded) if recorded else None
        if package and package.region != config.region:
            raise ConfigError(
                f"context key '{key}': package {package.arn} is in region {package.region}, "
                f"environment '{config.name}' in {config.region}; allowed: a package of the environment's region"
            )
        targets.append(DeliveryTarget(config=config, package=package, withdrawn=withdrawn))
    stack = DeliveryStack(
        app,
        PIPELINE_STACK,
        plan=plan,
        targets=targets,
        env=cdk.Environment(account=plan.tooling.account, region=plan.tooling.region),
        description="ML platform delivery: the self-mutating pipeline promoting the platform through the environments",
    )
    for target, stage in zip(targets, stack.stages):
        print(f"delivery: {target.config.name}: " + (f"serving {target.package.arn}" if target.package else f"no endpoints ({stage.serving_skipped})"), file=sys.stderr)
        if target.withdrawn:
            print(f"delivery: {target.config.name}: the stage stops: {target.withdrawn}", file=sys.stderr)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return stack


def main() -> None:
    run(build_delivery)


if __name__ == "__main__":
    main()
