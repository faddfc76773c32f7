"""Serving deployment unit: the approved model on real-time, multi-model and asynchronous endpoints."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from config.schema import EndpointSettings, ModelMonitorConfig, ServingConfig
from ml_constructs.endpoints import AsyncInference, DataCapture, EndpointModel, GuardedEndpoint, Rollout
from ml_constructs.nag import skip_checkov
from ml_constructs.network import PrivateNetwork, ServiceOnlySecurityGroup
from ml_constructs.notifications import NotificationTopic
from ml_constructs.sagemaker_pipeline import SageMakerPipeline, framework_image_uri, model_monitor_image_uri
from ml_constructs.step_code import StepCode
from pipeline_code.definitions.batch_scoring import cached_batch_definition
from pipeline_code.definitions.cache import definition_cache_dir
from stacks.foundation_stack import (
    ASYNC_INFERENCE_PREFIX,
    BATCH_SCORING_PREFIX,
    CAPTURE_PREFIX,
    MODEL_MONITOR_REPORTS_PREFIX,
    SKLEARN_VERSION,
    FoundationResources,
)
from stacks.model_build_stack import STEPS_DIR

# The multi-model container imports its handlers once, at start, before any archive is loaded:
# from SAGEMAKER_SUBMIT_DIRECTORY, the handlers' own tarball in S3 (they serve every archive).
MULTI_MODEL_ENVIRONMENT = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}
# Model Monitor's hourly schedule (its own cron dialect); a run must end within the hour.
MODEL_MONITOR_SCHEDULE = "cron(0 * ? * * *)"
MODEL_MONITOR_MAX_RUNTIME_SECONDS = 3300


@dataclass(frozen=True)
class ApprovedPackage:
    """The model package version to serve (recorded by ``python -m ops.approved_model``)."""

    arn: str
    version: int
    # Model Monitor's data-quality baseline registered with the package (when the pipeline computes one).
    data_quality_statistics: str | None = None
    data_quality_constraints: str | None = None
    # A package of another account: its archive, the key that encrypts it and the drift check's profile.
    model_data_url: str | None = None
    model_data_key_arn: str | None = None
    drift_baseline_url: str | None = None

    @classmethod
    def from_record(cls, record: dict) -> ApprovedPackage:
        """From what ``ops.approved_model`` recorded (validated by its ``read_recorded``)."""
        return cls(**{field: record.get(field) for field in cls.__dataclass_fields__})

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    def object_arns(self, partition: str) -> tuple[str | None, str | None]:
        """S3 object ARNs of the archive and of the drift check's profile (None when not recorded)."""
        return tuple(
            f"arn:{partition}:s3:::{url[len('s3://'):]}" if url else None for url in (self.model_data_url, self.drift_baseline_url)
        )


class ServingStack(cdk.Stack):
    """Endpoints serving one approved model package version.

    :param network: subnets and security group the endpoints attach to.
    :param logs_key: the environment's CloudWatch Logs key (its policy admits log groups named ``/<resource_prefix>/*``).
    :param foundation: the foundation's keys, buckets and the model execution roles.
    :param settings: the environment's ``serving`` configuration.
    :param package: the approved model package version to serve.
    :param resource_prefix: ``mlp-<env>``; endpoints default to ``<prefix>-realtime|multi-model|async``.
    :param removal_policy: for the notification key and log groups. Default: ``RETAIN``.
    :param model_monitor: add a Model Monitor data-quality schedule on the real-time endpoint.
        Default: none.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: PrivateNetwork,
        logs_key: kms.IKey,
        foundation: FoundationResources,
        settings: ServingConfig,
        package: ApprovedPackage,
        resource_prefix: str,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        model_monitor: ModelMonitorConfig | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.package = package
        self.model_monitor_without_baseline = False
        self._parameter_root = f"/{resource_prefix}/serving"
        self._volume_key = foundation.models_key.key
        self.batch_scoring: SageMakerPipeline | None = None
        self.endpoints: dict[str, GuardedEndpoint] = {}
        # Grants below become policies of this stack: the foundation must not depend on it.
        model_role = foundation.model_role.imported_into(self, "ModelRole")
        grantees = [model_role]
        invokers = [
            foundation.studio_user_role.imported_into(self, "StudioUserRole"),
            foundation.studio_lead_role.imported_into(self, "StudioLeadRole"),
        ]

        if not cdk.Token.is_unresolved(self.account) and package.account != self.account:
            self._grant_producer_artifacts(model_role, foundation.monitoring_role.imported_into(self, "MonitoringJobRole"))

        # One model for the real-time and asynchronous endpoints (and batch scoring).
        self.model = EndpointModel(
            self,
            "ApprovedModel",
            name_prefix=f"{resource_prefix}-v{package.version}",
            role=foundation.model_role.role,
            network=network,
            model_package_arn=package.arn,
        )

        realtime = settings.realtime
        if realtime.enabled:
            endpoint = self._endpoint(
                "RealtimeEndpoint",
                realtime,
                name=realtime.endpoint_name or f"{resource_prefix}-realtime",
                model=self.model,
                variant_name=realtime.variant_name,
                data_capture=DataCapture(
                    bucket=foundation.capture_bucket.bucket, prefix=CAPTURE_PREFIX, sampling_percentage=realtime.data_capture_percentage
                ),
            )
            self._publish("realtime", endpoint, "Real-time endpoint (latest approved model)", invokers)
            if model_monitor is not None and model_monitor.enabled and endpoint.captures:
                self._model_monitor(network, foundation, endpoint, model_monitor.instance_type)

        multi = settings.multi_model
        if multi.enabled:
            handlers = StepCode(self, "MultiModelHandlers", source_files=[STEPS_DIR / "inference.py"])
            multi_model_role = foundation.multi_model_role.imported_into(self, "MultiModelRole")
            handlers.grant_read(multi_model_role)
            grantees.append(multi_model_role)
            tarball = handlers.source_tarball
            # Its containers are not isolated (they download their handlers) and load archives anyone who
            # may write the prefix puts there: keep them out of the group Studio apps and jobs share.
            self.multi_model_security_group = ServiceOnlySecurityGroup(
                self,
                "MultiModelSecurityGroup",
                network=network,
                description=f"{resource_prefix} multi-model endpoint: no ingress, HTTPS to S3 and AWS service endpoints only",
                removal_policy=removal_policy,
                log_group_name=f"/{resource_prefix}/serving/s3-prefix-list-lookup",
                log_key=logs_key,
            )
            self.multi_model = EndpointModel(
                self,
                "MultiModel",
                name_prefix=f"{resource_prefix}-multi-model",
                role=foundation.multi_model_role.role,
                network=network,
                image_uri=framework_image_uri(self, framework="sklearn", version=SKLEARN_VERSION),
                model_data_url=foundation.model_bucket.s3_url(foundation.multi_model_prefix),
                environment={
                    **MULTI_MODEL_ENVIRONMENT,
                    "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{tarball.s3_bucket_name}/{tarball.s3_object_key}",
                    # The download's region: hosting sets no AWS_REGION, and without one the client goes to
                    # the global S3 endpoint, which the VPC's S3 gateway endpoint does not serve.
                    "SAGEMAKER_REGION": self.region,
                },
                # The container downloads its handlers itself (through the VPC's S3 gateway endpoint).
                network_isolation=False,
                security_group=self.multi_model_security_group.security_group,
            )
            skip_checkov(
                self.multi_model.resource,
                "CKV_AWS_370",
                "The multi-model container downloads its handler code (SAGEMAKER_SUBMIT_DIRECTORY) from S3 at start; "
                "its security group admits nothing and allows only HTTPS to S3 and the VPC's AWS service endpoints",
            )
            # Its rules must be in place before the endpoint's containers start downloading.
            self.multi_model.resource.node.add_dependency(*self.multi_model_security_group.rules)
            endpoint = self._endpoint(
                "MultiModelEndpoint",
                multi,
                name=multi.endpoint_name or f"{resource_prefix}-multi-model",
                model=self.multi_model,
            )
            self._publish("multi-model", endpoint, "Multi-model endpoint (archives under the models bucket prefix)", invokers)
            cdk.CfnOutput(
                self, "MultiModelDataUrl", value=foundation.model_bucket.s3_url(foundation.multi_model_prefix),
                description="Upload model.tar.gz archives here; invoke with TargetModel=<key below this prefix>",
            )  # fmt: skip

        asynchronous = settings.asynchronous
        if asynchronous.enabled:
            name = asynchronous.endpoint_name or f"{resource_prefix}-async"
            self.async_notifications = NotificationTopic(
                self,
                "AsyncNotifications",
                alias=f"{resource_prefix}/async-inference-notifications",
                display_name=f"{name} results",
                removal_policy=removal_policy,
            )
            # SageMaker publishes completion notices with the model's execution role.
            self.async_notifications.grant_publish(model_role)
            endpoint = self._endpoint(
                "AsyncEndpoint",
                asynchronous,
                name=name,
                model=self.model,
                data_capture=DataCapture(
                    bucket=foundation.capture_bucket.bucket, prefix=CAPTURE_PREFIX, sampling_percentage=asynchronous.data_capture_percentage
                ),
                async_inference=AsyncInference(
                    output_url=foundation.data_bucket.s3_url(f"{ASYNC_INFERENCE_PREFIX}output/{name}"),
                    failure_url=foundation.data_bucket.s3_url(f"{ASYNC_INFERENCE_PREFIX}failures/{name}"),
                    output_key=foundation.data_key.key,
                    notifications=self.async_notifications.topic,
                    max_concurrent_invocations_per_instance=asynchronous.max_concurrent_invocations_per_instance,
                ),
            )
            self._publish("async", endpoint, "Asynchronous endpoint (requests and results in S3)", invokers)
            cdk.CfnOutput(
                self, "AsyncInputUrl", value=foundation.data_bucket.s3_url(f"{ASYNC_INFERENCE_PREFIX}input/"),
                description="Put asynchronous requests here (InputLocation); results arrive under output/",
            )  # fmt: skip
            cdk.CfnOutput(self, "AsyncNotificationTopicArn", value=self.async_notifications.topic_arn, description="Async results")

        if settings.batch.enabled:
            self.batch_scoring = self._batch_scoring(foundation, settings, resource_prefix)
        # Containers start when their endpoint is created and at once read their code and write their output
        # with the grants this stack gives the model roles: the policies must be attached first.
        grant_policies = [grantee.policy for grantee in grantees if grantee.policy is not None]
        for endpoint in self.endpoints.values():
            endpoint.resource.node.add_dependency(*grant_policies)

        ssm.StringParameter(
            self,
            "ModelPackageParameter",
            parameter_name=f"{self._parameter_root}/model-package-arn",
            string_value=package.arn,
            description="Model package version the endpoints serve",
        )
        cdk.CfnOutput(self, "ModelPackageArn", value=package.arn, description="Model package version served")
        cdk.CfnOutput(self, "ModelName", value=self.model.model_name, description="SageMaker model of that version")

    def _grant_producer_artifacts(self, model_role: iam.IRole, monitoring_role: iam.IRole) -> None:
        """Let the roles read what a package of another account points to, on our side of the share.

        The producer's bucket and key policies (``pipeline.registry_shared_with_accounts``) let this
        account in; its own roles still need an allow: the model role to load the archive, the
        drift check's role to describe the package and read its feature profile. Decrypting is
        allowed only through S3, as the producer's key policy does.
        """
        package = self.package
        archive, profile = package.object_arns(self.partition)
        describe = self.format_arn(
            service="sagemaker", account=package.account, resource="model-package", resource_name=package.arn.split("/", 1)[1]
        )
        for role, objects in ((model_role, [archive]), (monitoring_role, [profile] if profile else [])):
            role.add_to_principal_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[describe]))
            if objects:
                role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=objects))
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        actions=["kms:Decrypt"],
                        resources=[package.model_data_key_arn],
                        conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
                    )
                )

    def _endpoint(self, id_: str, settings: EndpointSettings, *, name: str, model: EndpointModel, **options) -> GuardedEndpoint:
        """A guarded endpoint with the instances, rollout and scaling of ``settings`` (one endpoint section of the config).

        Asynchronous endpoints scale on their backlog (they publish no invocations per instance), the others on invocations.
        """
        rollout, scaling = settings.rollout, settings.scaling
        endpoint = GuardedEndpoint(
            self,
            id_,
            endpoint_name=name,
            model=model,
            instance_type=settings.instance_type,
            initial_instance_count=settings.initial_instance_count,
            volume_key=self._volume_key,
            rollout=Rollout(
                mode=rollout.mode,
                canary_percent=rollout.canary_percent,
                linear_step_percent=rollout.linear_step_percent,
                wait_seconds=rollout.wait_seconds,
                termination_wait_seconds=rollout.termination_wait_seconds,
                max_execution_seconds=rollout.max_execution_seconds,
                max_5xx_errors_per_minute=rollout.max_5xx_errors_per_minute,
                max_model_latency_ms=rollout.max_model_latency_ms,
            ),
            **options,
        )
        if scaling.enabled:
            capacity = {
                "min_capacity": scaling.min_capacity,
                "max_capacity": scaling.max_capacity,
                "scale_in_cooldown": cdk.Duration.seconds(scaling.scale_in_cooldown_seconds),
                "scale_out_cooldown": cdk.Duration.seconds(scaling.scale_out_cooldown_seconds),
            }
            if endpoint.is_async:
                endpoint.scale_on_backlog(target_per_instance=settings.target_backlog_per_instance, **capacity)
            else:
                endpoint.scale_on_invocations(target_per_instance=settings.target_invocations_per_instance, **capacity)
        return endpoint

    def _publish(self, kind: str, endpoint: GuardedEndpoint, what: str, invokers: list) -> None:
        """Output and SSM parameter with the endpoint's stable name; Studio users may invoke it."""
        self.endpoints[kind] = endpoint
        ssm.StringParameter(
            self,
            f"{endpoint.node.id}NameParameter",
            parameter_name=f"{self._parameter_root}/{kind}/endpoint-name",
            string_value=endpoint.endpoint_name,
            description=what,
        )
        cdk.CfnOutput(self, f"{endpoint.node.id}Name", value=endpoint.endpoint_name, description=what)
        for invoker in invokers:
            endpoint.grant_invoke(invoker)

    def _batch_scoring(self, foundation: FoundationResources, settings: ServingConfig, resource_prefix: str) -> SageMakerPipeline:
        """A pipeline running one transform job over ``batch-scoring/input/`` with the approved model."""
        pipeline_name = f"{resource_prefix}-batch-scoring"
        definition = cached_batch_definition(
            cache_dir=definition_cache_dir(self),
            pipeline_name=pipeline_name,
            input_prefix=f"{BATCH_SCORING_PREFIX}input/",
            output_prefix=f"{BATCH_SCORING_PREFIX}output/",
            settings=settings.batch,
        )
        pipeline = SageMakerPipeline(
            self,
            "BatchScoring",
            pipeline_name=pipeline_name,
            definition=definition,
            substitutions={
                "ModelName": self.model.model_name,
                "DataBucket": foundation.data_bucket.bucket_name,
                "VolumeKmsKeyArn": foundation.models_key.key_arn,
                "OutputKmsKeyArn": foundation.data_key.key_arn,
            },
            role=foundation.pipeline_role.imported_into(self, "PipelineRole"),
            description=f"Score headerless CSV files with model package version {self.package.version}",
        )
        pipeline.resource.node.add_dependency(self.model.resource)  # its default ModelName is a plain string
        if settings.batch.schedule:
            pipeline.start_on_schedule(
                "Schedule",
                expression=settings.batch.schedule,
                role=foundation.scheduler_role.role,
                description=f"Batch scoring: start {pipeline_name}",
            )
        cdk.CfnOutput(self, "BatchScoringPipelineName", value=pipeline_name, description="Batch-scoring pipeline to start")
        cdk.CfnOutput(
            self, "BatchScoringInputUrl", value=foundation.data_bucket.s3_url(f"{BATCH_SCORING_PREFIX}input/"),
            description="Headerless CSV files to score (raw features in training order, no target)",
        )  # fmt: skip
        return pipeline

    # -- Model Monitor (accounts that still have it) ------------------------------------------------

    def _model_monitor(
        self, network: PrivateNetwork, foundation: FoundationResources, endpoint: GuardedEndpoint, instance_type: str
    ) -> sagemaker.CfnMonitoringSchedule:
        """An hourly data-quality schedule on ``endpoint``, against the package's registered baseline.

        Here, not in the monitoring stack: SageMaker refuses to delete an endpoint that still has a
        schedule, and within one stack CloudFormation deletes the schedule first.
        """
        package = self.package
        baseline = None
        if package.data_quality_statistics and package.data_quality_constraints:
            baseline = sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(s3_uri=package.data_quality_statistics),
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(s3_uri=package.data_quality_constraints),
            )
        job = sagemaker.CfnDataQualityJobDefinition(
            self,
            "DataQualityJob",
            role_arn=foundation.monitoring_role.role_arn,
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=model_monitor_image_uri(self),
                # Without this Model Monitor computes violations but publishes no CloudWatch metrics.
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            data_quality_baseline_config=baseline,
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=endpoint.endpoint_name,
                    local_path="/opt/ml/processing/input/endpoint",
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
            data_quality_job_output_config=sagemaker.CfnDataQualityJobDefinition.MonitoringOutputConfigProperty(
                kms_key_id=foundation.data_key.key_arn,
                monitoring_outputs=[
                    sagemaker.CfnDataQualityJobDefinition.MonitoringOutputProperty(
                        s3_output=sagemaker.CfnDataQualityJobDefinition.S3OutputProperty(
                            local_path="/opt/ml/processing/output",
                            s3_uri=foundation.reports_bucket.s3_url(f"{MODEL_MONITOR_REPORTS_PREFIX}{endpoint.endpoint_name}"),
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=sagemaker.CfnDataQualityJobDefinition.MonitoringResourcesProperty(
                cluster_config=sagemaker.CfnDataQualityJobDefinition.ClusterConfigProperty(
                    instance_count=1,
                    instance_type=instance_type,
                    volume_size_in_gb=20,
                    volume_kms_key_id=foundation.models_key.key_arn,
                )
            ),
            network_config=sagemaker.CfnDataQualityJobDefinition.NetworkConfigProperty(
                enable_inter_container_traffic_encryption=True,
                enable_network_isolation=False,  # it publishes CloudWatch metrics
                vpc_config=sagemaker.CfnDataQualityJobDefinition.VpcConfigProperty(
                    subnets=network.workload_subnets.subnet_ids,
                    security_group_ids=[network.workload_security_group.security_group_id],
                ),
            ),
            stopping_condition=sagemaker.CfnDataQualityJobDefinition.StoppingConditionProperty(
                max_runtime_in_seconds=MODEL_MONITOR_MAX_RUNTIME_SECONDS
            ),
        )
        # Every change, tags included, replaces a job definition: CloudFormation names it, and the
        # schedule reads the name from its ARN (.../data-quality-job-definition/<name>).
        job_name = cdk.Fn.select(1, cdk.Fn.split("/", job.attr_job_definition_arn))
        schedule = sagemaker.CfnMonitoringSchedule(
            self,
            "DataQualitySchedule",
            monitoring_schedule_name=f"{endpoint.endpoint_name[:50]}-data-quality",
            endpoint_name=endpoint.endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                monitoring_job_definition_name=job_name,
                monitoring_type="DataQuality",
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(schedule_expression=MODEL_MONITOR_SCHEDULE),
            ),
        )
        schedule.node.add_dependency(endpoint.resource)
        self.model_monitor_without_baseline = baseline is None
        return schedule
