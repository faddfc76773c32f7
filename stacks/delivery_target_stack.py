"""What the delivery pipeline needs inside each environment's account, as one extra stack of its stage.

The pipeline deploys it with the environment's other stacks (``MlPlatform-<env>-Delivery``), so the
platform's own stacks stay exactly what ``make deploy ENV=<env>`` deploys:

- a rule forwarding the environment's model approvals and rejections to the tooling account's
  default event bus, where a rule starts the pipeline;
- a read-only role the pipeline's synth step assumes to record the newest approved package;
- a role the post-deploy smoke checks assume (describe and invoke endpoints, start model builds).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from ml_constructs.nag import acknowledge_wildcards

MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
# Registering or editing a package leaves it PendingManualApproval or unchanged: only decisions redeploy.
APPROVAL_DECISIONS = ("Approved", "Rejected")


def approval_event_pattern(*, group_names: list[str], accounts: list[str] | None = None) -> events.EventPattern:
    """Approval decisions on the model package groups ``group_names`` (from ``accounts``, when given)."""
    return events.EventPattern(
        source=["aws.sagemaker"],
        detail_type=[MODEL_PACKAGE_STATE_CHANGE],
        account=accounts,
        detail={"ModelPackageGroupName": group_names, "ModelApprovalStatus": list(APPROVAL_DECISIONS)},
    )


def registry_reader_role_name(resource_prefix: str) -> str:
    return f"{resource_prefix}-delivery-registry-reader"


def smoke_check_role_name(resource_prefix: str) -> str:
    return f"{resource_prefix}-delivery-smoke-check"


class DeliveryTargetStack(cdk.Stack):
    """The pipeline's hooks in one environment's account.

    :param tooling_account: account hosting the pipeline and the approval event bus.
    :param tooling_region: its region.
    :param trusted_role_prefix: name prefix of the pipeline's roles in the tooling account (its stack
        name); only those may assume the roles here.
    :param resource_prefix: ``mlp-<env>``; the roles are named from it so the pipeline can find them.
    :param model_package_group_name: the environment's model package group.
    :param model_build_pipeline_name: the environment's model-build pipeline.
    :param serving_stack_name: the name of the environment's serving stack, whose outputs name the endpoints.
    :param realtime_endpoint_name: the real-time endpoint the smoke check invokes. Default: none (no invocation).
    :param forward_approvals: forward approval decisions to the tooling account's bus. Default: ``True``;
        ``False`` when the environment shares the tooling account and region (the pipeline's rule sees them there).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        tooling_account: str,
        tooling_region: str,
        trusted_role_prefix: str,
        resource_prefix: str,
        model_package_group_name: str,
        model_build_pipeline_name: str,
        serving_stack_name: str,
        realtime_endpoint_name: str | None = None,
        forward_approvals: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.approval_rule: events.Rule | None = None
        if forward_approvals:
            tooling_bus = events.EventBus.from_event_bus_arn(
                self, "ToolingBus", f"arn:{self.partition}:events:{tooling_region}:{tooling_account}:event-bus/default"
            )
            # EventBridge assumes it for this account's rule only (no confused deputy).
            forwarder = iam.Role(
                self,
                "ForwardApprovalsRole",
                assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                    {"StringEquals": {"aws:SourceAccount": self.account}}
                ),
                description="EventBridge puts approval decisions on the tooling account's bus",
            )
            self.approval_rule = events.Rule(
                self,
                "ForwardApprovals",
                description=f"Approval decisions on {model_package_group_name} start the delivery pipeline in {tooling_account}",
                event_pattern=approval_event_pattern(group_names=[model_package_group_name]),
                targets=[targets.EventBus(tooling_bus, role=forwarder)],
            )

        trust = iam.AccountPrincipal(tooling_account).with_conditions(
            {"ArnLike": {"aws:PrincipalArn": f"arn:{self.partition}:iam::{tooling_account}:role/{trusted_role_prefix}-*"}}
        )
        serving_stack_arn = self.format_arn(service="cloudformation", resource="stack", resource_name=f"{serving_stack_name}/*")

        self.registry_reader_role = iam.Role(
            self,
            "RegistryReaderRole",
            role_name=registry_reader_role_name(resource_prefix),
            assumed_by=trust,
            description="Read-only: the delivery pipeline's synth step records the newest approved model package",
            max_session_duration=cdk.Duration.hours(1),
        )
        packages = [
            self._sagemaker_arn(f"model-package-group/{model_package_group_name}"),
            self._sagemaker_arn(f"model-package/{model_package_group_name}/*"),
        ]
        self.registry_reader_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"],
                resources=packages,
            )
        )
        # Whether the environment serves a model decides between "deploy without serving" and "stop".
        self.registry_reader_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[serving_stack_arn])
        )
        acknowledge_wildcards(
            self.registry_reader_role,
            resources=[*packages, serving_stack_arn],
            reason="Model package versions are numbered by SageMaker at registration and a stack ARN ends in an id "
            "CloudFormation assigns: the group and stack-name prefixes are the narrowest ARNs available.",
        )

        self.smoke_check_role = iam.Role(
            self,
            "SmokeCheckRole",
            role_name=smoke_check_role_name(resource_prefix),
            assumed_by=trust,
            description="The delivery pipeline's post-deploy checks: endpoints InService, a model build, one request",
            max_session_duration=cdk.Duration.hours(1),
        )
        endpoints = self._sagemaker_arn("endpoint/*")
        pipeline = self._sagemaker_arn(f"pipeline/{model_build_pipeline_name.lower()}")
        statements = [
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[serving_stack_arn]),
            iam.PolicyStatement(actions=["sagemaker:DescribeEndpoint"], resources=[endpoints]),
            iam.PolicyStatement(
                actions=["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
                resources=[pipeline],
            ),
        ]
        if realtime_endpoint_name:
            statements.append(
                iam.PolicyStatement(
                    actions=["sagemaker:InvokeEndpoint"], resources=[self._sagemaker_arn(f"endpoint/{realtime_endpoint_name.lower()}")]
                )
            )
        for statement in statements:
            self.smoke_check_role.add_to_principal_policy(statement)
        acknowledge_wildcards(
            self.smoke_check_role,
            resources=[serving_stack_arn, endpoints],
            reason="Endpoint names come from the serving stack's outputs at check time (configurable per endpoint) and "
            "DescribeEndpoint only reads status; a stack ARN ends in an id CloudFormation assigns.",
        )

    def _sagemaker_arn(self, resource: str) -> str:
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{resource}"
