"""The delivery pipeline: CDK Pipelines promoting the platform through the environments' accounts.

Source -> Synth (the README's commands: set up, test, record the approved packages, synthesize)
-> UpdatePipeline (self-mutation) -> Assets -> one stage per environment, in the configured order:

    [NoApprovedModel] -> ConfirmPermissions -> [Approve] -> deploy the PlatformStage -> SmokeCheck

Each stage deploys the same ``PlatformStage`` that ``make deploy ENV=<env>`` deploys, plus the
environment's ``Delivery`` stack (approval forwarding, the roles the pipeline assumes). An approval
decision on any environment's model package group starts the pipeline through the tooling account's
default event bus.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as cpactions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import pipelines
from constructs import Construct

from config.delivery import DeliveryPlan
from config.schema import PlatformConfig
from ml_constructs.buckets import SecureBucket
from ml_constructs.nag import WILDCARD_RULE, _render, acknowledge
from ml_constructs.notifications import NotificationTopic
from stacks.delivery_target_stack import (
    MODEL_PACKAGE_STATE_CHANGE,
    DeliveryTargetStack,
    approval_event_pattern,
    registry_reader_role_name,
    smoke_check_role_name,
)
from stacks.platform_stage import PlatformStage
from stacks.serving_stack import ApprovedPackage

# The README's "Delivery" section lists these as the synth step's commands (a test holds them equal).
SYNTH_COMMANDS = (
    "make test",
    "make record-approved",
    "make synth-delivery",
)
# The CDK CLI the self-mutation and permission checks install: the version package.json pins.
CLI_VERSION = "2.1148.1"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
PYTHON_VERSION = "3.11"
SAMPLE_ROWS = "pipeline_code/data/sample.csv"

_ARTIFACTS = "the pipeline's own artifact bucket and key, which hold only this pipeline's artifacts"
# Wildcards in the policies CDK Pipelines writes for its own roles: (construct path, finding, why it is acceptable).
# A finding no row matches stays a cdk-nag error.
GENERATED_POLICY_FINDINGS = (
    (r".*", r"Action::kms:(GenerateDataKey|ReEncrypt)\*", f"CDK Pipelines' encrypt/decrypt grant on {_ARTIFACTS}."),
    (r".*", r"Action::s3:(Abort|DeleteObject|GetBucket|GetObject|List)\*", f"CDK Pipelines' read (or read-write) grant on {_ARTIFACTS}."),
    (r".*", r"Resource::<PipelineArtifactsBucket\w+\.Arn>/\*", f"Artifact object keys are generated per execution in {_ARTIFACTS}."),
    (r".*", r"Resource::arn:aws[\w-]*:logs:[\w-]+:\d{12}:log-group:/aws/codebuild/.+", "CodeBuild creates one log stream per build in the project's own log group; stream names are not known in advance."),
    (r".*", r"Resource::arn:aws[\w-]*:codebuild:[\w-]+:\d{12}:report-group/.+", "CodeBuild report groups are named per build after the project; the project prefix is the narrowest ARN."),
    (r".*/UpdatePipeline/SelfMutation/.*", r"Resource::arn:\*:iam::\d{12}:role/\*",
     "Self-mutation assumes the CDK bootstrap deploy and publishing roles, restricted by the condition on their aws-cdk:bootstrap-role tag."),
    (r".*/UpdatePipeline/SelfMutation/.*", r"Resource::\*",
     "The CDK CLI's deploy of the pipeline stack reads stack status and lists the bootstrap bucket (cloudformation:DescribeStacks, s3:ListBucket)."),
    (r".*/Assets/FileRole/.*", r"Resource::\*", "The asset-publishing role of CDK Pipelines reads the state of its own CodeBuild builds."),
    (r".*/PipelinesSecurityCheck/CDKPipelinesAutoApprove/.*", r"Resource::\*",
     "CDK's permission-broadening check approves only pipelines tagged SECURITY_CHECK=ALLOW_APPROVE (condition on the statement)."),
    (r".*/PipelinesSecurityCheck/CDKSecurityCheck/.*", r"Resource::\*",
     "The permission-broadening check runs `cdk diff` through the bootstrap deploy role of each target account, restricted by its aws-cdk:bootstrap-role tag."),
    (r".*/PipelinesSecurityCheck/CDKSecurityCheck/.*", r"Resource::<PipelinePipelinesSecurityCheckCDKPipelinesAutoApprove\w+\.Arn>:\*",
     "The check invokes CDK's auto-approve function, any version of it."),
)


@dataclass(frozen=True)
class DeliveryTarget:
    """One environment to deploy: its configuration, the package recorded for it, and why it must stop.

    :param withdrawn: set when the environment serves a model but no approved package remains; the
        stage then fails before deploying anything, with this message.
    """

    config: PlatformConfig
    package: ApprovedPackage | None = None
    withdrawn: str | None = None


class DeliveryStack(cdk.Stack):
    """The self-mutating pipeline in the tooling account.

    :param plan: the validated delivery configuration.
    :param targets: the environments, in deployment order, with what the synth step recorded for each.
    """

    def __init__(self, scope: Construct, id_: str, *, plan: DeliveryPlan, targets: list[DeliveryTarget], **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        self.plan = plan
        accounts = sorted({t.config.account for t in targets})

        self.source = self._source(plan)
        readers = [self._role_arn(t.config, registry_reader_role_name(t.config.resource_prefix)) for t in targets]
        self.synth = pipelines.CodeBuildStep(
            "Synth",
            input=self.source,
            commands=list(SYNTH_COMMANDS),
            primary_output_directory="cdk.out",
            role_policy_statements=[iam.PolicyStatement(actions=["sts:AssumeRole"], resources=readers)],
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name="ml-platform-delivery",
            synth=self.synth,
            pipeline_type=codepipeline.PipelineType.V2,
            cross_account_keys=True,
            enable_key_rotation=True,
            # One CodeBuild project publishes every asset instead of one project per asset.
            publish_assets_in_parallel=False,
            self_mutation=True,
            cli_version=CLI_VERSION,
            docker_enabled_for_synth=False,
            docker_enabled_for_self_mutation=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.SMALL, privileged=False
                ),
                # The pinned wheels (scikit-learn 1.2.1, ...) exist for Python 3.11; the image's default may move.
                partial_build_spec=codebuild.BuildSpec.from_object({"phases": {"install": {"runtime-versions": {"python": PYTHON_VERSION}}}}),
            ),
        )
        self.notifications = NotificationTopic(
            self, "Notifications", alias="ml-platform-delivery/notifications", display_name="ML platform delivery",
            emails=list(plan.notification_emails),
        )  # fmt: skip
        self.notifications.allow_service_to_publish("codestar-notifications.amazonaws.com")

        self.stages: list[PlatformStage] = []
        for target in targets:
            self.stages.append(self._add_environment(target))

        self.pipeline.build_pipeline()
        self._log_artifact_access()
        self._notify()
        self._start_on_approval_decisions(sorted(s.foundation.model_package_group_name for s in self.stages), accounts)
        self._acknowledge_generated_policies()
        self._lint_clean_generated_template()

    # --- stages ---------------------------------------------------------------------------------------

    def _add_environment(self, target: DeliveryTarget) -> PlatformStage:
        config = target.config
        prefix = config.resource_prefix
        stage = PlatformStage(self, f"MlPlatform-{config.name}", config=config, approved_package=target.package)
        realtime = stage.serving.endpoints.get("realtime") if stage.serving is not None else None
        DeliveryTargetStack(
            stage,
            "Delivery",
            tooling_account=self.plan.tooling.account,
            tooling_region=self.plan.tooling.region,
            trusted_role_prefix=self.stack_name,
            resource_prefix=prefix,
            model_package_group_name=stage.foundation.model_package_group_name,
            model_build_pipeline_name=stage.foundation.model_build_pipeline_name,
            serving_stack_name=f"{stage.stage_name}-Serving",
            realtime_endpoint_name=realtime.endpoint_name if realtime is not None else None,
            forward_approvals=(config.account, config.region) != (self.plan.tooling.account, self.plan.tooling.region),
            description=f"ML platform {config.name}: the delivery pipeline's approval forwarding and roles",
        )

        pre: list[pipelines.Step] = []
        if target.withdrawn:
            pre.append(
                pipelines.ShellStep(
                    "NoApprovedModel", commands=[f"echo {shlex.quote(target.withdrawn)} >&2", "exit 1"]
                )
            )
        pre.append(pipelines.ConfirmPermissionsBroadening("ConfirmPermissions", stage=stage, notification_topic=self.notifications.topic))
        if self.plan.needs_approval(config.name):
            pre.append(pipelines.ManualApprovalStep("Approve", comment=f"Deploy the ML platform to {config.name} ({config.account})?"))
        smoke = self._smoke_check(stage, config, realtime.endpoint_name if realtime is not None else None)
        self.pipeline.add_stage(stage, pre=pipelines.Step.sequence(pre), post=[smoke])
        return stage

    def _smoke_check(self, stage: PlatformStage, config: PlatformConfig, realtime_endpoint: str | None) -> pipelines.CodeBuildStep:
        role = self._role_arn(config, smoke_check_role_name(config.resource_prefix))
        args = [
            "python3", "scripts/smoke_check.py", "--region", config.region, "--role-arn", role,
            "--serving-stack", f"{stage.stage_name}-Serving",
            "--model-build-pipeline", stage.foundation.model_build_pipeline_name,
        ]  # fmt: skip
        if realtime_endpoint:
            args += ["--realtime-endpoint", realtime_endpoint, "--sample", SAMPLE_ROWS, "--target-column", config.pipeline.target_column]
        return pipelines.CodeBuildStep(
            "SmokeCheck",
            input=self.source,
            install_commands=["python3 -m pip install --quiet \"$(grep -E '^boto3==' requirements.txt)\""],
            commands=[shlex.join(args)],
            role_policy_statements=[iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role])],
        )

    def _acknowledge_generated_policies(self) -> None:
        """Acknowledge, on each policy CDK Pipelines generated, the wildcard findings the table above explains."""
        for construct in self.pipeline.node.find_all():
            if not isinstance(construct, iam.CfnPolicy):
                continue
            policy = construct.node.scope
            document = self.resolve(construct.policy_document)
            for statement in document["Statement"]:
                findings = [f"Action::{a}" for a in _as_list(statement.get("Action")) if "*" in a]
                findings += [f"Resource::{r}" for r in map(_render, _as_list(statement.get("Resource"))) if "*" in r]
                for finding in findings:
                    reason = next((why for where, what, why in GENERATED_POLICY_FINDINGS
                                   if re.fullmatch(where, policy.node.path) and re.fullmatch(what, finding)), None)  # fmt: skip
                    if reason:
                        acknowledge(policy, f"{WILDCARD_RULE}[{finding}]", reason)
        auto_approve_role = self.pipeline.node.find_child("PipelinesSecurityCheck").node.find_child("CDKPipelinesAutoApprove").node.find_child("ServiceRole")
        acknowledge(
            auto_approve_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK Pipelines' own auto-approve function: the managed policy only lets it write its CloudWatch logs.",
        )

    def _lint_clean_generated_template(self) -> None:
        """Two cfn-lint findings in what CDK Pipelines renders, fixed in place (the template means the same)."""
        cfn_pipeline: codepipeline.CfnPipeline = self.pipeline.pipeline.node.default_child
        # E3703: the deploy actions' bootstrap-role ARNs are Fn::Join with an empty delimiter.
        for i, stage in enumerate(self.resolve(cfn_pipeline.stages)):
            for j, action in enumerate(stage["actions"]):
                for key, value in (action.get("configuration") or {}).items():
                    if isinstance(value, dict) and list(value) == ["Fn::Join"] and value["Fn::Join"][0] == "":
                        parts = value["Fn::Join"][1]
                        if all(isinstance(p, str) or list(p) == ["Ref"] for p in parts):
                            sub = "".join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in parts)
                            cfn_pipeline.add_property_override(f"Stages.{i}.Actions.{j}.Configuration.{key}", {"Fn::Sub": sub})
        # W3005: the pipeline's DependsOn repeats its role, which its RoleArn already references.
        role_policy = self.pipeline.pipeline.role.node.find_child("DefaultPolicy").node.default_child
        cfn_pipeline.add_override("DependsOn", [self.get_logical_id(role_policy)])
        auto_approve = self.pipeline.node.find_child("PipelinesSecurityCheck").node.find_child("CDKPipelinesAutoApprove")
        auto_approve_policy = auto_approve.role.node.find_child("DefaultPolicy").node.default_child
        auto_approve.node.default_child.add_override("DependsOn", [self.get_logical_id(auto_approve_policy)])

    # --- pipeline-wide ---------------------------------------------------------------------------------

    def _source(self, plan: DeliveryPlan) -> pipelines.CodePipelineSource:
        if plan.source.connection is not None:
            c = plan.source.connection
            return pipelines.CodePipelineSource.connection(c.repository, c.branch, connection_arn=c.connection_arn)
        bucket = s3.Bucket.from_bucket_name(self, "SourceBucket", plan.source.s3.bucket)
        # Polling needs no CloudTrail data events on the bucket; a new upload starts a run within minutes.
        return pipelines.CodePipelineSource.s3(bucket, plan.source.s3.key, trigger=cpactions.S3Trigger.POLL)

    def _role_arn(self, config: PlatformConfig, name: str) -> str:
        return f"arn:{self.partition}:iam::{config.account}:role/{name}"

    def _log_artifact_access(self) -> None:
        """Server access logs for the artifact bucket CDK Pipelines creates (it offers no option for them)."""
        self.access_logs = SecureBucket(self, "AccessLogs", expiration_days=365)
        artifacts = self.pipeline.pipeline.artifact_bucket
        cfn_bucket: s3.CfnBucket = artifacts.node.default_child
        cfn_bucket.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=self.access_logs.bucket_name, log_file_prefix="Artifacts/"
        )
        self.access_logs.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.access_logs.bucket.arn_for_objects("Artifacts/*")],
                conditions={"ArnLike": {"aws:SourceArn": artifacts.bucket_arn}, "StringEquals": {"aws:SourceAccount": self.account}},
            )
        )

    def _notify(self) -> None:
        self.pipeline.pipeline.notify_on(
            "Notify",
            self.notifications.topic,
            events=[
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED,
                codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_SUCCEEDED,
                codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED,
            ],
        )

    def _start_on_approval_decisions(self, groups: list[str], accounts: list[str]) -> None:
        """A rule on the tooling account's default bus, and a bus policy admitting each environment's forwarder."""
        self.approval_rule = events.Rule(
            self,
            "ApprovalDecisions",
            description="A model package approved or rejected in an environment redeploys the platform",
            event_pattern=approval_event_pattern(group_names=groups, accounts=accounts),
            targets=[events_targets.CodePipeline(self.pipeline.pipeline)],
        )
        bus = f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/default"
        for account in accounts:
            if account == self.account:
                continue
            # The L1 class warns about its deprecated Principal property even when unset.
            cdk.CfnResource(
                self,
                f"AdmitApprovals{account}",
                type="AWS::Events::EventBusPolicy",
                properties={
                    "EventBusName": "default",
                    "StatementId": f"ml-platform-approvals-{account}",
                    "Statement": {
                        "Sid": f"ml-platform-approvals-{account}",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:{self.partition}:iam::{account}:root"},
                        "Action": "events:PutEvents",
                        "Resource": bus,
                        "Condition": {"StringEquals": {"events:source": "aws.sagemaker", "events:detail-type": MODEL_PACKAGE_STATE_CHANGE}},
                    },
                },
            )


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []
