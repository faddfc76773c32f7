"""Tear an environment down: its stacks in dependency order, and, when asked, what SageMaker left in the VPC.

Run by an operator with credentials::

    python -m ops.destroy --env dev [--remove-sagemaker-leftovers]    # or: make destroy ENV=dev [CLEAN_VPC=1]

1. Asks for the environment name again (``--confirm NAME`` answers for scripts); anything else stops
   before any AWS call.
2. Deletes ``MlPlatform-<env>-Monitoring``, ``-Serving``, ``-Studio``, ``-ModelBuild``, ``-Foundation``
   and ``-Network`` in that order (each consumer before what it consumes), skipping stacks that do not
   exist, waiting for each deletion, and stopping at the first that fails with the resources that failed.
3. With ``--remove-sagemaker-leftovers``, before the Network stack: deletes the mount targets that the
   Studio domain's home EFS (SageMaker tags it ``ManagedByAmazonSageMakerResource``) keeps in the VPC, waits
   for them to go, then empties and deletes SageMaker's ``security-group-for-inbound-nfs-<domain>`` /
   ``-outbound-nfs-`` groups. Without it, a retained home EFS keeps the workload subnets in use and the
   Network stack cannot be deleted (the message says so).
4. Lists what stays: every resource the templates retain (buckets, keys, log groups, the model registry)
   with its physical id, and the home EFS file systems (deleting the users' files is a separate, deliberate
   ``aws efs delete-file-system``).

Exit codes: 0 everything deleted, 1 not confirmed, 2 a deletion failed or an AWS call failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import ConfigError, load_config

# Each stack before the stacks it reads from (the reverse of PlatformStage's creation order).
DESTROY_ORDER = ("Monitoring", "Serving", "Studio", "ModelBuild", "Foundation", "Network")
RETAINED_POLICIES = ("Retain", "RetainExceptOnCreate", "Snapshot")
SAGEMAKER_EFS_TAG = "ManagedByAmazonSageMakerResource"
SAGEMAKER_NFS_GROUPS = ("security-group-for-inbound-nfs-*", "security-group-for-outbound-nfs-*")
POLL_SECONDS = 15
MAX_POLLS = 240  # an hour per stack: the Studio cleanup alone may take 55 minutes

EXIT_OK, EXIT_NOT_CONFIRMED, EXIT_FAILED = 0, 1, 2

ClientFactory = Callable[[str], Any]


class DestroyError(Exception):
    """A deletion failed or could not be checked; the message says which and why."""


@dataclass
class Retained:
    """What stays after the teardown, for the closing list."""

    resources: list[tuple[str, str, str]] = field(default_factory=list)  # (stack, type, physical id)
    file_systems: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"  {stack}: {rtype} {physical}" for stack, rtype, physical in self.resources]
        lines += [f"  Studio home EFS (users' files): {fs}" for fs in self.file_systems]
        return "Retained (delete by hand when no longer needed):\n" + "\n".join(lines) if lines else "Nothing retained."


def stack_names(env: str) -> list[str]:
    return [f"MlPlatform-{env}-{stack_id}" for stack_id in DESTROY_ORDER]


# --------------------------------------------------------------------------------------------------- stacks


def describe(cfn: Any, stack: str) -> dict | None:
    """The stack, or None when it does not exist (or is already deleted)."""
    try:
        (found,) = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err):
            return None
        raise
    return None if found["StackStatus"] == "DELETE_COMPLETE" else found


def retained_resources(cfn: Any, stack: str) -> list[tuple[str, str, str]]:
    """(stack, type, physical id) of each resource the stack's template keeps on delete."""
    body = cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    kept = {lid: r["Type"] for lid, r in template.get("Resources", {}).items() if r.get("DeletionPolicy") in RETAINED_POLICIES}
    found = []
    for page in _pages(cfn.list_stack_resources, "StackResourceSummaries", StackName=stack):
        for resource in page:
            if resource["LogicalResourceId"] in kept and resource.get("PhysicalResourceId"):
                found.append((stack, kept[resource["LogicalResourceId"]], resource["PhysicalResourceId"]))
    return found


def delete_stack(cfn: Any, stack: str, *, sleep: Callable[[float], None]) -> None:
    """Delete ``stack`` and wait until it is gone; raise naming the resources that could not be deleted."""
    cfn.delete_stack(StackName=stack)
    for _ in range(MAX_POLLS):
        current = describe(cfn, stack)
        if current is None:
            return
        if current["StackStatus"] == "DELETE_FAILED":
            failed = [
                f"{r['LogicalResourceId']} ({r['ResourceType']}): {r.get('ResourceStatusReason', 'no reason given')}"
                for page in _pages(cfn.list_stack_resources, "StackResourceSummaries", StackName=stack)
                for r in page
                if r["ResourceStatus"] == "DELETE_FAILED"
            ]
            raise DestroyError(f"{stack} could not be deleted: " + ("; ".join(failed) or current.get("StackStatusReason", "")))
        sleep(POLL_SECONDS)
    raise DestroyError(f"{stack} is still being deleted after {MAX_POLLS * POLL_SECONDS // 60} minutes")


# --------------------------------------------------------------------------------------------------- VPC leftovers


def home_file_systems(efs: Any) -> list[tuple[str, str]]:
    """``(file system id, domain id)`` of the EFS file systems SageMaker created for Studio domains (tagged with the
    domain's ARN)."""
    return [
        (fs["FileSystemId"], tag["Value"].rsplit("/", 1)[-1])
        for page in _pages(efs.describe_file_systems, "FileSystems", token="Marker", next_token="NextMarker")
        for fs in page
        for tag in fs.get("Tags", [])
        if tag["Key"] == SAGEMAKER_EFS_TAG
    ]


def _domain_exists(sagemaker: Any, domain_id: str) -> bool:
    try:
        sagemaker.describe_domain(DomainId=domain_id)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFound":
            return False
        raise
    return True


def remove_sagemaker_leftovers(efs: Any, ec2: Any, sagemaker: Any, vpc_id: str, *, sleep: Callable[[float], None]) -> list[str]:
    """Delete the home EFS mount targets and SageMaker's NFS security groups in ``vpc_id`` that belong to Studio
    domains which no longer exist (this environment's is deleted with its stack before the network); those of
    live domains, another team's in a shared VPC, are left alone. Return what was removed."""
    removed = []
    exists: dict[str, bool] = {}

    def gone(domain_id: str) -> bool:
        if domain_id not in exists:
            exists[domain_id] = _domain_exists(sagemaker, domain_id)
        return not exists[domain_id]

    targets = [
        target
        for fs, domain_id in home_file_systems(efs)
        if gone(domain_id)
        for target in efs.describe_mount_targets(FileSystemId=fs)["MountTargets"]
        if target["VpcId"] == vpc_id
    ]
    for target in targets:
        efs.delete_mount_target(MountTargetId=target["MountTargetId"])
        removed.append(f"EFS mount target {target['MountTargetId']} ({target['FileSystemId']}, {target['SubnetId']})")
    for target in targets:  # their network interfaces hold the security groups and subnets until they are gone
        for _ in range(MAX_POLLS):
            remaining = efs.describe_mount_targets(FileSystemId=target["FileSystemId"])["MountTargets"]
            if all(t["MountTargetId"] != target["MountTargetId"] for t in remaining):
                break
            sleep(POLL_SECONDS)
        else:
            raise DestroyError(f"EFS mount target {target['MountTargetId']} is still being deleted")
    groups = [
        group
        for group in ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": list(SAGEMAKER_NFS_GROUPS)}]
        )["SecurityGroups"]
        if gone(group["GroupName"].split("-nfs-", 1)[1])  # security-group-for-<in|out>bound-nfs-<domain id>
    ]
    # The inbound and outbound NFS groups reference each other: empty both before deleting either.
    for group in groups:
        if group.get("IpPermissions"):
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
        if group.get("IpPermissionsEgress"):
            ec2.revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])
    for group in groups:
        ec2.delete_security_group(GroupId=group["GroupId"])
        removed.append(f"security group {group['GroupId']} ({group['GroupName']})")
    return removed


def wait_for_lambda_interfaces(ec2: Any, group_id: str, *, sleep: Callable[[float], None], out: Callable[[str], None]) -> None:
    """Wait until no Lambda network interface uses the workload group.

    The Studio cleanup functions run in the VPC; Lambda releases their network interfaces some minutes after
    the functions are deleted, and until then the group and subnets cannot be deleted.
    """
    filters = [{"Name": "group-id", "Values": [group_id]}, {"Name": "interface-type", "Values": ["lambda"]}]
    for poll in range(MAX_POLLS):
        interfaces = ec2.describe_network_interfaces(Filters=filters)["NetworkInterfaces"]
        if not interfaces:
            return
        if poll == 0:
            out(f"waiting for Lambda to release {len(interfaces)} network interface(s) of the deleted cleanup functions ...")
        sleep(POLL_SECONDS)
    raise DestroyError(f"Lambda network interfaces still use security group {group_id} after {MAX_POLLS * POLL_SECONDS // 60} minutes")


# --------------------------------------------------------------------------------------------------- teardown


def destroy(env: str, clients: ClientFactory, *, remove_leftovers: bool, sleep: Callable[[float], None] = time.sleep,
            out: Callable[[str], None] = print) -> Retained:  # fmt: skip
    """Delete the environment's stacks in order; return what stays."""
    cfn = clients("cloudformation")
    retained = Retained()
    for stack in stack_names(env):
        current = describe(cfn, stack)
        if current is None:
            out(f"{stack}: not deployed, skipped")
            continue
        kept = retained_resources(cfn, stack)
        if stack.endswith("-Network"):
            outputs = {o["OutputKey"]: o["OutputValue"] for o in current.get("Outputs", [])}
            vpc_id, group_id = outputs.get("VpcId"), outputs.get("WorkloadSecurityGroupId")
            if group_id:
                wait_for_lambda_interfaces(clients("ec2"), group_id, sleep=sleep, out=lambda line: out(f"{stack}: {line}"))
            if remove_leftovers and vpc_id:
                for what in remove_sagemaker_leftovers(clients("efs"), clients("ec2"), clients("sagemaker"), vpc_id, sleep=sleep):
                    out(f"{stack}: removed {what}")
        out(f"{stack}: deleting ...")
        try:
            delete_stack(cfn, stack, sleep=sleep)
        except DestroyError as exc:
            hint = (
                "; the Studio domain's retained home EFS still has mount targets and NFS security groups in the "
                "VPC: run again with --remove-sagemaker-leftovers (make destroy ENV=... CLEAN_VPC=1)"
                if stack.endswith("-Network") and not remove_leftovers else ""
            )  # fmt: skip
            raise DestroyError(f"{exc}{hint}") from None
        out(f"{stack}: deleted")
        retained.resources += kept
    retained.file_systems = [fs for fs, _ in home_file_systems(clients("efs"))]
    return retained


def _pages(call: Callable[..., dict], key: str, *, token: str = "NextToken", next_token: str | None = None, **kwargs):
    while True:
        page = call(**kwargs)
        yield page.get(key, [])
        marker = page.get(next_token or token)
        if not marker:
            return
        kwargs[token] = marker


# --------------------------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops.destroy", description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="environment to tear down (config/environments/<env>.yaml or 'sandbox')")
    parser.add_argument("--confirm", help="the environment name again (default: asked interactively)")
    parser.add_argument("--remove-sagemaker-leftovers", action="store_true",
                        help="delete the home EFS mount targets and SageMaker's NFS security groups in the VPC")  # fmt: skip
    parser.add_argument("--region", help="AWS region (default: the environment's configured region)")
    parser.add_argument("--profile", help="AWS named profile (default: the default credential chain)")
    return parser


def main(argv: list[str] | None = None, *, client_factory: Callable[[str, str | None, str | None], Any] | None = None,
         ask: Callable[[str], str] = input) -> int:  # fmt: skip
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.env)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    answer = args.confirm if args.confirm is not None else ask(
        f"This deletes every stack of environment '{config.name}' ({', '.join(stack_names(config.name))}).\n"
        "Type the environment name to continue: "
    )
    if answer.strip() != config.name:
        print(f"Not confirmed (got {answer.strip()!r}, expected {config.name!r}): nothing deleted.", file=sys.stderr)
        return EXIT_NOT_CONFIRMED
    region = args.region or config.region
    factory = client_factory or _boto3_client
    try:
        retained = destroy(config.name, lambda service: factory(service, region, args.profile),
                           remove_leftovers=args.remove_sagemaker_leftovers)  # fmt: skip
    except (DestroyError, ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(retained.report())
    return EXIT_OK


def _boto3_client(service: str, region: str | None, profile: str | None) -> Any:
    import boto3

    return boto3.Session(profile_name=profile, region_name=region).client(service)


if __name__ == "__main__":
    sys.exit(main())
