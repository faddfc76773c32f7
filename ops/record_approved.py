"""Record the newest approved model package of every delivered environment, for the pipeline's synth step.

Run by the delivery pipeline before it synthesizes (``make record-approved``)::

    python -m ops.record_approved [--delivery-file config/delivery.yaml] [--context-file cdk.context.json]

For each environment of ``config/delivery.yaml`` it assumes that environment's read-only
``mlp-<env>-delivery-registry-reader`` role and applies :mod:`ops.approved_model`'s logic to the
group ``mlp-<env>-models``, then writes ``cdk.context.json`` so the synth that follows stays offline
and deterministic for what was recorded. It prints what it recorded. Per environment:

- an approved package: recorded (rejecting the served version thus records the previous approved one);
- no group yet, or no role yet (the first run, before the stage deployed its ``Delivery`` stack), or
  no approved package while nothing is served: nothing recorded, the stage deploys without serving;
- no approved package left while the environment serves one: the ``withdrawn`` key below is written;
  the stage then fails before deploying anything, with that message, and the endpoints keep serving.

Exit codes: 0 every environment handled, 2 an error (configuration, an AWS call failed, unreadable context file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from config import ConfigError
from config.delivery import DEFAULT_DELIVERY_FILE, load_delivery
from config.schema import PlatformConfig
from ops.approved_model import (
    DEFAULT_CONTEXT_FILE,
    EXIT_ERROR,
    EXIT_OK,
    GroupNotFoundError,
    context_key,
    data_quality_baseline,
    latest_approved,
    load_context,
    read_recorded,
    write_context,
)
from stacks.delivery_target_stack import registry_reader_role_name

WITHDRAWN_KEY_TEMPLATE = "ml-platform:{env}:approval-withdrawn"
# STS answers these when the role does not exist yet or does not trust the caller.
_NO_ROLE_CODES = frozenset({"AccessDenied", "AccessDeniedException"})

# (service, region, role ARN) -> a boto3 client acting as that role.
ClientFactory = Callable[[str, str, str], Any]


def withdrawn_key(env: str) -> str:
    """The context key whose message stops environment ``env``'s stage (see the module docstring)."""
    return WITHDRAWN_KEY_TEMPLATE.format(env=env)


def read_withdrawn(context: Mapping, env: str) -> str | None:
    """Environment ``env``'s stop message from CDK ``context``, or None."""
    value = context.get(withdrawn_key(env))
    if value is not None and not isinstance(value, str):
        raise ValueError(f"context key {withdrawn_key(env)!r}: got {value!r}; allowed: a message string, as written by `make record-approved`")
    return value


def reader_role_arn(config: PlatformConfig, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{config.account}:role/{registry_reader_role_name(config.resource_prefix)}"


def serving_stack_name(config: PlatformConfig) -> str:
    """The serving stack's name, as the pipeline's stage (and ``make deploy``) names it."""
    return f"MlPlatform-{config.name}-Serving"


def decide(config: PlatformConfig, client_factory: ClientFactory) -> tuple[dict | None, str | None, str]:
    """What to record for ``config``'s environment: ``(package, withdrawn message, what to print)``."""
    from botocore.exceptions import ClientError

    role = reader_role_arn(config)
    group = f"{config.resource_prefix}-models"
    try:
        sagemaker = client_factory("sagemaker", config.region, role)
        package = latest_approved(sagemaker, group)
    except GroupNotFoundError:
        return None, None, f"{config.name}: group {group} does not exist yet; deploying without serving"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NO_ROLE_CODES and exc.operation_name == "AssumeRole":
            return None, None, f"{config.name}: cannot assume {role} yet (the stage deploys it); deploying without serving"
        raise
    if package is not None:
        package = {**package, **data_quality_baseline(sagemaker, package["arn"])}
        return package, None, f"{config.name}: recorded {package['arn']} (version {package['version']}, created {package['creation_time']})"
    stack = serving_stack_name(config)
    if not _stack_exists(client_factory("cloudformation", config.region, role), stack):
        return None, None, f"{config.name}: no approved package in {group} and nothing served; deploying without serving"
    message = (
        f"environment {config.name}: no approved model package is left in {group} (the served one was rejected), "
        f"so nothing was deployed to {config.name} and its endpoints keep serving what stack {stack} deployed. "
        f"Approve a package in {group} (the approval starts the pipeline again), or set serving.enabled to false."
    )
    return None, message, f"{config.name}: STOP: {message}"


def _stack_exists(cloudformation: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return False
        raise
    return any(s.get("StackStatus") != "DELETE_COMPLETE" for s in stacks)


def apply(context: dict, env: str, package: dict | None, withdrawn: str | None) -> dict:
    """``context`` with ``env``'s package and stop message set or removed."""
    updated = {k: v for k, v in context.items() if k not in (context_key(env), withdrawn_key(env))}
    if package is not None:
        updated[context_key(env)] = read_recorded({context_key(env): package}, env)  # never write what synth would refuse
    if withdrawn is not None:
        updated[withdrawn_key(env)] = withdrawn
    return updated


def default_client_factory(service: str, region: str, role_arn: str) -> Any:
    """A client for ``service`` in ``region`` acting as ``role_arn`` (assumed with the caller's credentials)."""
    import boto3

    credentials = boto3.client("sts", region_name=region).assume_role(RoleArn=role_arn, RoleSessionName="ml-platform-delivery-synth")["Credentials"]
    return boto3.client(
        service,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def main(argv: list[str] | None = None, *, client_factory: ClientFactory | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    parser = argparse.ArgumentParser(prog="python -m ops.record_approved", description=__doc__.split("\n\n")[0])
    parser.add_argument("--delivery-file", type=Path, default=DEFAULT_DELIVERY_FILE, help="default: config/delivery.yaml")
    parser.add_argument("--context-file", type=Path, default=DEFAULT_CONTEXT_FILE, help="default: cdk.context.json")
    args = parser.parse_args(argv)
    try:
        plan = load_delivery(args.delivery_file)
        context = load_context(args.context_file)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for config in plan.environments:
        try:
            package, withdrawn, summary = decide(config, client_factory or default_client_factory)
        except (BotoCoreError, ClientError, ValueError) as exc:
            print(f"error: {config.name}: reading the approved packages failed: {exc}", file=sys.stderr)
            return EXIT_ERROR
        print(summary)
        context = apply(context, config.name, package, withdrawn)
    write_context(args.context_file, context)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
