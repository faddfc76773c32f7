"""Model-build deployment unit: the SageMaker pipeline, its code, registry, schedule and notifications."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from constructs import Construct

from config.schema import PipelineConfig
from ml_constructs.model_registry import ModelRegistry
from ml_constructs.network import PrivateNetwork
from ml_constructs.notifications import NotificationTopic
from ml_constructs.sagemaker_pipeline import SageMakerPipeline, framework_image_uri, model_monitor_image_uri
from ml_constructs.step_code import StepCode
from pipeline_code.definitions.cache import definition_cache_dir, subnet_substitutions
from pipeline_code.definitions.model_build import cached_definition
from stacks.foundation_stack import SKLEARN_VERSION, FoundationResources

STEPS_DIR = Path(__file__).resolve().parent.parent / "pipeline_code" / "steps"


class ModelBuildStack(cdk.Stack):
    """The model-build pipeline of one environment.

    :param network: workload subnets and security group the jobs run in.
    :param foundation: the foundation's keys, buckets and duty roles.
    :param settings: the environment's ``pipeline`` configuration.
    :param resource_prefix: ``mlp-<env>``; the pipeline is ``<prefix>-model-build``.
    :param removal_policy: for the registry and the notification key. Default: ``RETAIN_ON_UPDATE_OR_DELETE``
        (the registry's name is fixed: a copy left by a rolled-back create would block the retry).
    :param data_quality_baseline: also compute a Model Monitor data-quality baseline and register it
        with each package (for accounts with Model Monitor). Default: ``False``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: PrivateNetwork,
        foundation: FoundationResources,
        settings: PipelineConfig,
        resource_prefix: str,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        data_quality_baseline: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        pipeline_name = foundation.model_build_pipeline_name
        # Grants below become policies of this stack: the foundation must not depend on it.
        job_role = foundation.job_role.imported_into(self, "JobRole")
        pipeline_role = foundation.pipeline_role.imported_into(self, "PipelineRole")

        self.code = StepCode(
            self,
            "StepCode",
            processing={
                "preprocess": [STEPS_DIR / "preprocess.py", STEPS_DIR / "stepkit.py"],
                "evaluate": [STEPS_DIR / "evaluate.py", STEPS_DIR / "stepkit.py"],
            },
            source_files=[STEPS_DIR / "train.py", STEPS_DIR / "inference.py", STEPS_DIR / "stepkit.py"],
        )
        self.code.grant_read(job_role)

        self.registry = ModelRegistry(
            self,
            "Registry",
            group_name=foundation.model_package_group_name,
            description=f"Candidate models from {pipeline_name}",
            shared_with_accounts=settings.registry_shared_with_accounts,
            removal_policy=removal_policy,
        )
        self.registry.grant_register(pipeline_role, allow_pre_approved=settings.approval_status == "Approved")

        subnet_ids = network.workload_subnets.subnet_ids
        substitutions = {
            "ArtifactBucket": foundation.model_bucket.bucket_name,
            "ReportsBucket": foundation.reports_bucket.bucket_name,
            "DataBucket": foundation.data_bucket.bucket_name,
            "JobRoleName": job_role.role_name,
            "VolumeKmsKeyArn": foundation.models_key.key_arn,
            "OutputKmsKeyArn": foundation.models_key.key_arn,
            "SecurityGroupId": network.workload_security_group.security_group_id,
            "CodeBucket": self.code.source_tarball.s3_bucket_name,
            "PreprocessCodeKey": self.code.processing["preprocess"].s3_object_key,
            "EvaluateCodeKey": self.code.processing["evaluate"].s3_object_key,
            "TrainSourceKey": self.code.source_tarball.s3_object_key,
            "SklearnImageUri": framework_image_uri(self, framework="sklearn", version=SKLEARN_VERSION),
            **subnet_substitutions(subnet_ids),
        }
        self.definition = cached_definition(
            cache_dir=definition_cache_dir(self),
            pipeline_name=pipeline_name,
            model_package_group_name=self.registry.group_name,
            settings=settings,
            subnet_count=len(subnet_ids),
            data_quality_baseline=data_quality_baseline,
        )
        if data_quality_baseline:
            substitutions["ModelMonitorImageUri"] = model_monitor_image_uri(self)
        self.pipeline = SageMakerPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            definition=self.definition,
            substitutions=substitutions,
            role=pipeline_role,
            description="Preprocess, train or tune, evaluate, gate on accuracy, register",
            large_definition_bucket=self.code.source_tarball.bucket,
        )

        self.notifications = NotificationTopic(
            self,
            "Notifications",
            alias=f"{resource_prefix}/model-build-notifications",
            display_name=f"{pipeline_name} executions",
            emails=settings.notification_emails,
            removal_policy=removal_policy,
        )
        rule = self.pipeline.on_execution_status_change(
            "ExecutionStatusRule", statuses=["Failed", "Succeeded"], description=f"{pipeline_name} finished"
        )
        self.notifications.notify_on(
            rule,
            message=events.RuleTargetInput.from_text(
                f"Pipeline {pipeline_name} execution {events.EventField.from_path('$.detail.currentPipelineExecutionStatus')}: "
                f"{events.EventField.from_path('$.detail.pipelineExecutionArn')}"
            ),
        )

        if settings.schedule:
            self.pipeline.start_on_schedule(
                "RetrainingSchedule",
                expression=settings.schedule,
                role=foundation.scheduler_role.role,
                description=f"Retrain: start {pipeline_name}",
            )

        cdk.CfnOutput(self, "PipelineName", value=pipeline_name, description="SageMaker pipeline to start")
        cdk.CfnOutput(self, "ModelPackageGroupName", value=self.registry.group_name, description="Model registry group")
        cdk.CfnOutput(self, "NotificationTopicArn", value=self.notifications.topic_arn, description="Pipeline notifications")
