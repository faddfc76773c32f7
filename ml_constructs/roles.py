"""IAM role for one duty, with the grant methods other constructs call."""

from __future__ import annotations

from typing import Any, NamedTuple

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import Construct

from ml_constructs.nag import acknowledge_wildcards

SAGEMAKER = "sagemaker.amazonaws.com"


class ApiCall(NamedTuple):
    """One authorization a role's duty needs: what the tests check the role's policies allow.

    :param action: the IAM action (``service:Action``).
    :param resource: an example ARN of what the call touches; ``{name}`` placeholders stand for the
        environment's names (``{prefix}``, ``{data_bucket}``, ``{models_key}``, ...) and are filled in
        from the synthesized stacks.
    :param context: the condition keys the request carries (values may use placeholders too).
    :param feature: the platform feature the call belongs to (``mlflow``, ``serving``, ``async``,
        ``batch``, ``multi_model``, ``drift_check``, ``model_monitor``, ``tuning``). Default: always made.
    """

    action: str
    resource: str
    context: dict[str, Any] | None = None
    feature: str | None = None

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
# Jobs denied without a volume key. Not CreateHyperParameterTuningJob: the service authorization
# reference lists sagemaker:VolumeKmsKey for it but no document says which of its request fields
# (TrainingJobDefinition.ResourceConfig or the newer HyperParameterTuningResourceConfig the SDK
# writes) fills it; if the one the pipeline uses does not, a Null deny would refuse every tuning run.
# Tuning volumes are held to the key by the pipeline definition instead (tests check every tuning step).
VOLUME_KEY_REQUIRED_ACTIONS = [
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
# What Studio's Pipelines pages read to show a pipeline, its runs, their steps, graph and parameters.
PIPELINE_BROWSE_ACTIONS = [
    "sagemaker:DescribePipelineDefinitionForExecution",
    "sagemaker:ListPipelineExecutions",
    "sagemaker:ListPipelineParametersForExecution",
]
# A pipeline with an experiment config (every definition the SDK builds has one) records each
# execution as a trial of the experiment named after the pipeline, and each step's job as a trial
# component associated with that trial (and with the lineage entities SageMaker tracks for it).
EXPERIMENT_TRACKING_ACTIONS = [
    "sagemaker:AddAssociation",
    "sagemaker:AssociateTrialComponent",
    "sagemaker:CreateExperiment",
    "sagemaker:CreateTrial",
    "sagemaker:CreateTrialComponent",
    "sagemaker:DescribeExperiment",
    "sagemaker:DescribeTrial",
    "sagemaker:DescribeTrialComponent",
]
# SageMaker's own CloudWatch namespaces: jobs and endpoint instances publish their instance and
# algorithm metrics with the execution role (/aws/sagemaker/TrainingJobs, ProcessingJobs,
# TransformJobs, Endpoints, and Model Monitor's .../data-metrics).
SAGEMAKER_METRIC_NAMESPACES = "/aws/sagemaker/*"


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

    def imported_into(self, scope: Construct, id_: str) -> RoleGrants:
        """This role as seen from another stack: grants made there become a managed policy of that stack.

        Granting to the role itself from a stack the role's own stack must not depend on would
        put the statement (and a reference back) into the role's stack: a cycle. And an inline
        policy per granting stack would count against the role's 10,240 characters of inline
        policies, which CDK's overflow splitting cannot see across stacks.
        """
        return RoleGrants(scope, id_, role_name=self.role.role_name)

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
        a processing or training job without a volume KMS key, and a job that turns inter-container
        traffic encryption off.
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
            "DenyJobsWithoutVolumeKey": (VOLUME_KEY_REQUIRED_ACTIONS, {"Null": {"sagemaker:VolumeKmsKey": "true"}}),
            "DenyJobsWithoutTrafficEncryption": (
                ENCRYPTED_JOB_ACTIONS,
                {"Bool": {"sagemaker:InterContainerTrafficEncryption": "false"}},
            ),
        }
        for sid, (actions, conditions) in encryption.items():
            self.role.add_to_principal_policy(
                iam.PolicyStatement(sid=sid, effect=iam.Effect.DENY, actions=actions, resources=arns, conditions=conditions)
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

    def allow_put_metrics(self, *, namespaces: list[str]) -> None:
        """Let this role publish CloudWatch metrics, only in ``namespaces`` (``*`` patterns allowed)."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": sorted(namespaces)}},
            )
        )
        acknowledge_wildcards(
            self,
            resources=["*"],
            reason=f"cloudwatch:PutMetricData has no resource-level permissions; the cloudwatch:namespace condition "
            f"limits it to {', '.join(sorted(namespaces))}.",
        )

    def allow_track_pipeline_experiments(self) -> None:
        """Let this role record pipeline executions of the environment (``<prefix>-*``) as SageMaker Experiments.

        The experiment is named after the pipeline; trials (execution ids), trial components (named after
        the jobs) and lineage entities are named by SageMaker.
        """
        experiments = self._sagemaker_arn(f"experiment/{self.resource_prefix}-*")
        generated = [self._sagemaker_arn(f"{kind}/*") for kind in ("action", "artifact", "context", "experiment-trial", "experiment-trial-component")]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=EXPERIMENT_TRACKING_ACTIONS, resources=[experiments, *generated])
        )
        acknowledge_wildcards(
            self,
            resources=[experiments, *generated],
            reason=f"Experiments are this environment's pipelines ({self.resource_prefix}-*); SageMaker names their "
            "trials after execution ids and trial components and lineage entities after the jobs it launches.",
        )

    def allow_browse_pipelines_and_logs(self, *, log_group_prefix: str) -> None:
        """Let this role follow the environment's pipelines and list the registry in Studio, and read the
        logs of SageMaker's jobs and endpoints (log groups starting with ``log_group_prefix``)."""
        resources = [
            self._sagemaker_arn(f"pipeline/{self.resource_prefix}-*"),
            self._sagemaker_arn(f"pipeline/{self.resource_prefix}-*/execution/*"),
        ]
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=PIPELINE_BROWSE_ACTIONS, resources=resources))
        # List calls support no resource-level permissions (ListModelPackages names a package only optionally).
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:DescribeLogGroups",
                    "sagemaker:ListModelPackageGroups",
                    "sagemaker:ListModelPackages",
                    "sagemaker:ListPipelines",
                ],
                resources=["*"],
            )
        )
        groups = self._log_group_arn(log_group_prefix)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"],
                resources=[groups, f"{groups}:log-stream:*"],
            )
        )
        acknowledge_wildcards(
            self,
            resources=[*resources, "*", groups, f"{groups}:log-stream:*"],
            reason="Studio lists pipelines, registry groups and log groups with calls that have no resource-level "
            f"permissions; pipeline reads are held to {self.resource_prefix}-* and log reads to SageMaker's log groups.",
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
        arn = self._log_group_arn(log_group_prefix)
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

    def _log_group_arn(self, prefix: str) -> str:
        return cdk.Arn.format(
            cdk.ArnComponents(
                service="logs", resource="log-group", resource_name=f"{prefix}*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
            ),
            cdk.Stack.of(self),
        )

    def _sagemaker_arn(self, resource: str) -> str:
        kind, _, name = resource.partition("/")
        return cdk.Arn.format(
            cdk.ArnComponents(service="sagemaker", resource=kind, resource_name=name), cdk.Stack.of(self)
        )


@jsii.implements(iam.IPrincipal)
class RoleGrants(Construct):
    """A role of another stack, as a grantee whose grants go into one customer managed policy here.

    It stands in for the role wherever an ``IGrantable`` is expected; ``role_arn``/``role_name`` name
    the role itself. The policy is created with the first grant and attached to the role by name.

    :param role_name: the role's name (usually a cross-stack reference).
    """

    def __init__(self, scope: Construct, id_: str, *, role_name: str) -> None:
        super().__init__(scope, id_)
        self.role = iam.Role.from_role_name(self, "Role", role_name)
        self.role_arn = self.role.role_arn
        self.role_name = self.role.role_name
        self.policy: iam.ManagedPolicy | None = None

    @property
    def grant_principal(self) -> iam.IPrincipal:
        return self

    @property
    def assume_role_action(self) -> str:
        return self.role.assume_role_action

    @property
    def policy_fragment(self) -> iam.PrincipalPolicyFragment:
        return self.role.policy_fragment

    @property
    def principal_account(self) -> str | None:
        return self.role.principal_account

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        if self.policy is None:
            description = f"Grants of {cdk.Stack.of(self).stack_name} to {self.node.id}"
            self.policy = iam.ManagedPolicy(self, "Grants", description=description, roles=[self.role])
        self.policy.add_statements(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self.policy)

    def add_to_policy(self, statement: iam.PolicyStatement) -> bool:
        return self.add_to_principal_policy(statement).statement_added
