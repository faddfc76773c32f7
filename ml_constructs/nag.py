"""Acknowledge one cdk-nag finding on the one construct it concerns.

cdk-nag 3 reports granular findings such as
``AwsSolutions-IAM5[Resource::<DataBucketB1A7365C.Arn>/*]``; the helpers here
build those ids from the same tokens the policy was built from, so an
acknowledgment follows the resource it is about and nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

WILDCARD_RULE = "AwsSolutions-IAM5"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``rule`` (optionally with its ``[finding]`` suffix) on ``construct`` only, for the one pack the
    rule belongs to (``AwsSolutions-IAM5`` -> ``AwsSolutions``, ``NIST.800.53.R5-LambdaDLQ`` -> ``NIST.800.53.R5``):
    cdk-nag 3 matches an acknowledgement per pack, and keeps a prefixed one in its report as an audit trail."""
    pack = rule.split("-", 1)[0]
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"{pack}::{rule}", reason=reason))


def acknowledge_wildcards(
    grantee: iam.IGrantable, *, resources: list[str] = (), actions: list[str] = (), reason: str
) -> None:
    """Acknowledge the IAM5 findings for ``resources``/``actions`` on ``grantee``'s policy."""
    principal = grantee.grant_principal
    if not Construct.is_construct(principal):
        return  # e.g. a service or account principal: no policy of ours to annotate
    stack = cdk.Stack.of(principal)
    findings = [f"Resource::{_render(stack.resolve(r))}" for r in resources if "*" in _render(stack.resolve(r))]
    findings += [f"Action::{a}" for a in actions if "*" in a]
    for finding in findings:
        acknowledge(principal, f"{WILDCARD_RULE}[{finding}]", reason)


def _render(value: Any) -> str:
    """Render a resolved CloudFormation value the way cdk-nag names it in findings."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::Join":
            return arg[0].join(_render(part) for part in arg[1])
        if fn == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([^}]+)\}", r"<\1>", arg)
    return str(value)


# The packs `make review` and the tests run next to AwsSolutions; rule names are the same in each.
COMPLIANCE_PACKS = ("NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321")
# checkov's check for the same property as a pack rule: one reason serves both tools.
CHECKOV_CHECKS = {"LambdaDLQ": "CKV_AWS_116", "LambdaConcurrency": "CKV_AWS_115", "LambdaInsideVPC": "CKV_AWS_117"}


def acknowledge_in_packs(construct: IConstruct, rule: str, reason: str, *, packs: tuple[str, ...] = COMPLIANCE_PACKS) -> None:
    """Acknowledge ``rule`` (e.g. ``LambdaDLQ``) on ``construct`` in each of ``packs`` that checks it, one
    prefixed acknowledgement per pack (``NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ``), and skip checkov's check of
    the same property on its CloudFormation resource with the same reason."""
    for pack in packs:
        acknowledge(construct, f"{pack}-{rule}", reason)
    if rule in CHECKOV_CHECKS:
        skip_checkov(construct, CHECKOV_CHECKS[rule], reason)


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Skip checkov's ``check_id`` on ``construct``'s CloudFormation resource only, with ``reason`` (resource
    metadata ``checkov.skip``, which checkov reads from the template)."""
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    skips = [s for s in (resource.get_metadata("checkov") or {}).get("skip", []) if s["id"] != check_id]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check_id, "comment": reason}]})


def acknowledge_inline_policies(scope: IConstruct, reason: str) -> None:
    """Acknowledge the compliance packs' IAMNoInlinePolicy finding on each non-empty ``iam.Policy`` under
    ``scope`` (CDK's ``DefaultPolicy`` of each role: empty ones are not synthesized, so not acknowledged)."""
    for node in scope.node.find_all():
        if isinstance(node, iam.Policy) and not node.document.is_empty:
            acknowledge_in_packs(node, "IAMNoInlinePolicy", reason)
