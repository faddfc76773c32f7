"""IAM role for one duty, with the grant methods other constructs call."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import Construct

from ml_constructs.nag import acknowledge_wildcards

SAGEMAKER = "sagemaker.amazonaws.com"

# SageMaker creates these with a role; each must carry a VPC config (VPC-only jobs).
VPC_BOUND_CREATE_ACTIONS = [
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateModel",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTrainingJob",
]
ENCRYPTED_JOB_ACTIONS = [
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTrainingJob",
]
JOB_RESOURCE_TYPES = ["processing-job", "training-job", "hyper-parameter-tuning-job", "transform-job", "model"]
JOB_ACTIONS = VPC_BOUND_CREATE_ACTIONS + [
    "sagemaker:AddTags",
    "sagemaker:CreateTransformJob",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:DescribeModel",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:DescribeTransformJob",
    "sagemaker:ListTags",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:StopProcessingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:StopTransformJob",
]
PIPELINE_RUN_ACTIONS = [
    "sagemaker:DescribePipeline",
    "sagemaker:DescribePipelineExecution",
    "sagemaker:ListPipelineExecutionSteps",
    "sagemaker:StartPipelineExecution",
]


@jsii.implements(iam.IGrantable)
class DutyRole(Construct):
    """An IAM role assumed by AWS services for one duty, with no managed policies.

    :param service_principals: services allowed to assume the role (e.g. ``sagemaker.amazonaws.com``).
        When the service acts for a caller in this account, ``aws:SourceAccount`` pins it.
    :param description: the duty, shown in the IAM console.
    :param resource_prefix: prefix of the SageMaker resource names this role may act on.
    :param pin_source_account: add an ``aws:SourceAccount`` condition to the trust policy
        (confused-deputy protection). Default: ``False``; SageMaker does not send it for
        every call, EventBridge and Scheduler do.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        service_principals: list[str],
        description: str,
        resource_prefix: str,
        pin_source_account: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        conditions = {"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}} if pin_source_account else None
        principals = [iam.ServicePrincipal(s, conditions=conditions) for s in service_principals]
        self.role = iam.Role(
            self,
            "Resource",
            assumed_by=iam.CompositePrincipal(*principals) if len(principals) > 1 else principals[0],
            description=description,
        )
        if SAGEMAKER in service_principals:
            # Studio stamps sessions with the user profile name (ExecutionRoleIdentityConfig), so every
            # role SageMaker assumes from Studio must accept a source identity.
            self.role.assume_role_policy.add_statements(
                iam.PolicyStatement(actions=["sts:SetSourceIdentity"], principals=[iam.ServicePrincipal(SAGEMAKER)])
            )
        self.resource_prefix = resource_prefix
        self._pulls_images = False
        self.role_arn = self.role.role_arn

    @property
    def grant_principal(self) -> iam.IPrincipal:
        """The role, so a ``DutyRole`` can be passed wherever an ``IGrantable`` is expected."""
        return self.role.grant_principal

    def imported_into(self, scope: Construct, id_: str) -> iam.IRole:
        """This role as seen from another stack, by name: grants made there become that stack's policies.

        Granting to the role itself from a stack the role's own stack must not depend on would
        put the statement (and a reference back) into the role's stack: a cycle.
        """
        return iam.Role.from_role_name(scope, id_, self.role.role_name)

    def grant_pass_role(self, grantee: iam.IGrantable, *, to_service: str = SAGEMAKER) -> iam.Grant:
        """Let ``grantee`` pass this role, and only to ``to_service``."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["iam:PassRole"],
            resource_arns=[self.role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": to_service}},
        )

    def allow_run_sagemaker_jobs(self, *, subnet_ids: list[str], security_group_ids: list[str]) -> None:
        """Let this role start and watch SageMaker jobs and models, only inside the platform VPC.

        Creating a job or model without a VPC config, or with subnets or security
        groups other than ``subnet_ids`` / ``security_group_ids``, is denied, and so is
        a job without a volume KMS key or without inter-container traffic encryption.
        """
        arns = [self._sagemaker_arn(f"{kind}/*") for kind in JOB_RESOURCE_TYPES]
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=sorted(JOB_ACTIONS), resources=arns))
        acknowledge_wildcards(
            self,
            resources=arns,
            reason="SageMaker Pipelines names the jobs and models it launches itself (pipelines-<id>-...), so no "
            "name prefix can narrow them; Deny statements keep every job and model in the platform VPC.",
        )
        deny = {
            "DenyJobsOutsideAnyVpc": {"Null": {"sagemaker:VpcSubnets": "true"}},
            "DenyJobsInOtherSubnets": {"ForAnyValue:StringNotEquals": {"sagemaker:VpcSubnets": subnet_ids}},
            "DenyJobsInOtherSecurityGroups": {
                "ForAnyValue:StringNotEquals": {"sagemaker:VpcSecurityGroupIds": security_group_ids}
            },
        }
        for sid, conditions in deny.items():
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=sid, effect=iam.Effect.DENY, actions=VPC_BOUND_CREATE_ACTIONS, resources=arns, conditions=conditions
                )
            )
        # Jobs must also encrypt their volumes with a customer key and their inter-node traffic.
        encryption = {
            "DenyJobsWithoutVolumeKey": {"Null": {"sagemaker:VolumeKmsKey": "true"}},
            "DenyJobsWithoutTrafficEncryption": {"Bool": {"sagemaker:InterContainerTrafficEncryption": "false"}},
        }
        for sid, conditions in encryption.items():
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=sid, effect=iam.Effect.DENY, actions=ENCRYPTED_JOB_ACTIONS, resources=arns, conditions=conditions
                )
            )

    def allow_start_pipelines(self) -> None:
        """Let this role start and follow executions of the environment's pipelines (``<prefix>-*``)."""
        resources = [
            self._sagemaker_arn(f"pipeline/{self.resource_prefix}-*"),
            self._sagemaker_arn(f"pipeline/{self.resource_prefix}-*/execution/*"),
        ]
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=PIPELINE_RUN_ACTIONS, resources=resources))
        acknowledge_wildcards(
            self,
            resources=resources,
            reason=f"Only this environment's pipelines ({self.resource_prefix}-*) and their executions, "
            "whose ids SageMaker generates.",
        )

    def allow_review_model_packages(self, *, group_name: str) -> None:
        """Let this role list, inspect and approve or reject the packages of model package group ``group_name``."""
        self._allow_on_model_packages(
            group_name,
            ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages", "sagemaker:UpdateModelPackage"],
        )

    def allow_describe_model_packages(self, *, group_name: str) -> None:
        """Let this role read the packages of model package group ``group_name`` (no changes)."""
        self._allow_on_model_packages(group_name, ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"])

    def _allow_on_model_packages(self, group_name: str, actions: list[str]) -> None:
        resources = [
            self._sagemaker_arn(f"model-package-group/{group_name}"),
            self._sagemaker_arn(f"model-package/{group_name}/*"),
        ]
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources))
        acknowledge_wildcards(
            self,
            resources=resources,
            reason="Model package versions are numbered by SageMaker at registration; the group prefix is the "
            "narrowest ARN available.",
        )

    def allow_put_metrics(self, *, namespace: str) -> None:
        """Let this role publish CloudWatch metrics, only in ``namespace``."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
            )
        )
        acknowledge_wildcards(
            self,
            resources=["*"],
            reason=f"cloudwatch:PutMetricData has no resource-level permissions; the cloudwatch:namespace condition "
            f"limits it to {namespace}.",
        )

    def allow_pull_images(self, *, repository_arns: list[str]) -> None:
        """Let SageMaker pull container images from ``repository_arns`` with this role."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=sorted(repository_arns),
            )
        )
        if self._pulls_images:
            return
        self._pulls_images = True
        # An authorization token is account-wide: ECR has no resource to scope it to.
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        acknowledge_wildcards(
            self,
            resources=["*"],
            reason="ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are limited "
            "to the named repositories.",
        )

    def allow_write_logs(self, *, log_group_prefix: str) -> None:
        """Let this role write to CloudWatch log groups whose names start with ``log_group_prefix``."""
        arn = cdk.Arn.format(
            cdk.ArnComponents(
                service="logs",
                resource="log-group",
                resource_name=f"{log_group_prefix}*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            ),
            cdk.Stack.of(self),
        )
        resources = [arn, f"{arn}:log-stream:*"]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=resources,
            )
        )
        acknowledge_wildcards(
            self,
            resources=resources,
            reason=f"SageMaker names its log groups and streams per job or endpoint under {log_group_prefix}; "
            "the prefix is as narrow as AWS allows.",
        )

    def _sagemaker_arn(self, resource: str) -> str:
        kind, _, name = resource.partition("/")
        return cdk.Arn.format(
            cdk.ArnComponents(service="sagemaker", resource=kind, resource_name=name), cdk.Stack.of(self)
        )
