"""Model-build deployment unit: the SageMaker pipeline, its code, registry, schedule and notifications."""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from config.schema import PipelineConfig
from ml_constructs.model_registry import ModelRegistry
from ml_constructs.network import PrivateNetwork
from ml_constructs.notifications import NotificationTopic
from ml_constructs.sagemaker_pipeline import SageMakerPipeline, framework_image_uri
from ml_constructs.step_code import StepCode
from stacks.foundation_stack import FoundationStack

STEPS_DIR = Path(__file__).resolve().parent.parent / "pipeline_code" / "steps"
SKLEARN_VERSION = "1.2-1"  # the framework container the steps run in (pipeline_code.pipeline uses the same)
_sdk_import: threading.Thread | None = None


def prefetch_pipeline_sdk() -> None:
    """Start importing the SageMaker SDK (1.5 s) in the background while other stacks are built.

    The main thread mostly waits on jsii's Node process then, so the import costs almost nothing.
    """
    global _sdk_import
    if _sdk_import is None and "pipeline_code.pipeline" not in sys.modules:
        _sdk_import = threading.Thread(target=importlib.import_module, args=("pipeline_code.pipeline",), daemon=True)
        _sdk_import.start()


def _pipeline_sdk():
    if _sdk_import is not None:
        _sdk_import.join()
    return importlib.import_module("pipeline_code.pipeline")


def _role_arn(name_placeholder: str) -> str:
    # ARN-shaped, so the SDK does not look the role up in IAM.
    return f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/${{{name_placeholder}}}"


class ModelBuildStack(cdk.Stack):
    """The model-build pipeline of one environment.

    :param network: workload subnets and security group the jobs run in.
    :param foundation: keys, buckets and duty roles.
    :param settings: the environment's ``pipeline`` configuration.
    :param resource_prefix: ``mlp-<env>``; the pipeline is ``<prefix>-model-build``.
    :param removal_policy: for the registry and the notification key. Default: ``RETAIN``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: PrivateNetwork,
        foundation: FoundationStack,
        settings: PipelineConfig,
        resource_prefix: str,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        pipeline_name = f"{resource_prefix}-model-build"
        # Imported (by name, which needs no ARN parsing in the template) so the grants below become
        # policies of this stack: the foundation stack must not depend on this one.
        job_role, pipeline_role = (
            iam.Role.from_role_name(self, construct_id, duty.role.role_name)
            for construct_id, duty in (("JobRole", foundation.job_role), ("PipelineRole", foundation.pipeline_role))
        )

        self.code = StepCode(
            self,
            "StepCode",
            scripts={"preprocess": STEPS_DIR / "preprocess.py", "evaluate": STEPS_DIR / "evaluate.py"},
            source_files=[STEPS_DIR / "train.py", STEPS_DIR / "inference.py"],
        )
        self.code.grant_read(job_role)

        self.registry = ModelRegistry(
            self,
            "Registry",
            group_name=f"{resource_prefix}-models",
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
            "PreprocessScriptKey": self.code.scripts["preprocess"].s3_object_key,
            "EvaluateScriptKey": self.code.scripts["evaluate"].s3_object_key,
            "TrainSourceKey": self.code.source_tarball.s3_object_key,
            "SklearnImageUri": framework_image_uri(self, framework="sklearn", version=SKLEARN_VERSION),
            **{f"SubnetId{i}": subnet for i, subnet in enumerate(subnet_ids)},
        }
        self.definition = build_definition(
            pipeline_name=pipeline_name,
            model_package_group_name=self.registry.group_name,
            settings=settings,
            subnet_count=len(subnet_ids),
        )
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
            scheduler.CfnSchedule(
                self,
                "RetrainingSchedule",
                description=f"Retrain: start {pipeline_name}",
                schedule_expression=settings.schedule,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=self.pipeline.pipeline_arn,
                    role_arn=foundation.scheduler_role.role_arn,
                    sage_maker_pipeline_parameters=scheduler.CfnSchedule.SageMakerPipelineParametersProperty(
                        pipeline_parameter_list=[]
                    ),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=3),
                ),
            )

        cdk.CfnOutput(self, "PipelineName", value=pipeline_name, description="SageMaker pipeline to start")
        cdk.CfnOutput(self, "ModelPackageGroupName", value=self.registry.group_name, description="Model registry group")
        cdk.CfnOutput(self, "NotificationTopicArn", value=self.notifications.topic_arn, description="Pipeline notifications")


def build_definition(
    *, pipeline_name: str, model_package_group_name: str, settings: PipelineConfig, subnet_count: int
) -> str:
    """The pipeline definition with ``${Placeholders}`` for every deploy-time value."""
    model_build = _pipeline_sdk()
    session = model_build.offline_session(default_bucket="${ArtifactBucket}")
    tuning = (
        model_build.TuningSettings(
            max_jobs=settings.tuning.max_jobs,
            max_parallel_jobs=settings.tuning.max_parallel_jobs,
            early_stopping=settings.tuning.early_stopping,
        )
        if settings.training_mode == "tune"
        else None
    )
    pipeline = model_build.get_pipeline(
        session=session,
        pipeline_name=pipeline_name,
        job_role_arn=_role_arn("JobRoleName"),
        artifact_bucket="${ArtifactBucket}",
        reports_bucket="${ReportsBucket}",
        volume_kms_key="${VolumeKmsKeyArn}",
        output_kms_key="${OutputKmsKeyArn}",
        network=model_build.JobNetwork(
            subnet_ids=[f"${{SubnetId{i}}}" for i in range(subnet_count)], security_group_ids=["${SecurityGroupId}"]
        ),
        code=model_build.CodeLocations(
            preprocess_script="s3://${CodeBucket}/${PreprocessScriptKey}",
            evaluate_script="s3://${CodeBucket}/${EvaluateScriptKey}",
            train_source_tarball="s3://${CodeBucket}/${TrainSourceKey}",
        ),
        image_uri="${SklearnImageUri}",
        defaults=model_build.PipelineDefaults(
            input_data_url="s3://${DataBucket}/input/",
            target_column=settings.target_column,
            processing_instance_type=settings.processing_instance_type,
            processing_instance_count=settings.processing_instance_count,
            training_instance_type=settings.training_instance_type,
            accuracy_threshold=settings.accuracy_threshold,
            approval_status=settings.approval_status,
        ),
        registry=model_build.RegistrySettings(
            model_package_group_name=model_package_group_name,
            inference_instance_types=settings.inference_instance_types,
            transform_instance_types=settings.transform_instance_types,
        ),
        tuning=tuning,
        max_run_seconds=settings.max_run_minutes * 60,
        max_wait_seconds=settings.max_wait_minutes * 60,
        cache_days=settings.cache_days,
    )
    return model_build.definition_json(pipeline)
