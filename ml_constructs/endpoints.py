"""SageMaker models and endpoints: content-named, VPC-bound, guarded on update and autoscaled.

Models and endpoint configurations are immutable: any change replaces them. They carry a
name derived from a hash of their CloudFormation properties, so the name changes exactly when
the content does (and the replacement never collides with the old name). Endpoints keep the
stable name clients call; an update moves them to the new configuration with a blue/green
deployment that rolls back when an alarm fires.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from ml_constructs.nag import acknowledge_in_packs
from ml_constructs.network import PrivateNetwork

NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
NAME_HASH_LENGTH = 10
MAX_NAME_LENGTH = 63
CAPTURE_CSV_TYPES = ["text/csv"]
CAPTURE_JSON_TYPES = ["application/json"]
TRAFFIC_MODES = {"canary": "CANARY", "linear": "LINEAR", "all_at_once": "ALL_AT_ONCE"}


def _with_defaults(options: dict, statistic: str) -> dict:
    """``options`` (cloudwatch.MetricOptions keywords) over a one-minute period and ``statistic``."""
    return {"statistic": statistic, "period": cdk.Duration.minutes(1), **options}


def content_name(resource: cdk.CfnResource, prefix: str) -> str:
    """``<prefix>-<hash of the resource's properties>``: changes only when the content does.

    Call before the name property is set. Tokens hash as their CloudFormation form (logical ids,
    not deploy-time values), so the name is stable across synths of the same content.
    """
    stack = cdk.Stack.of(resource)
    rendered = json.dumps(stack.resolve(resource._cfn_properties), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(rendered.encode()).hexdigest()[:NAME_HASH_LENGTH]
    head = prefix[: MAX_NAME_LENGTH - NAME_HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"


class EndpointModel(Construct):
    """A SageMaker model that runs in the platform's VPC, named after its content.

    Exactly one of ``model_package_arn`` (a registered, approved version: image, artifact and
    environment come from the package) or ``image_uri`` + ``model_data_url`` (multi-model mode:
    every archive under the prefix is a model).

    :param name_prefix: start of the generated name, e.g. ``mlp-dev-v12``.
    :param role: the execution role the model's containers run with.
    :param network: subnets (and, by default, the workload security group) the containers attach to.
    :param model_package_arn: serve this model package version.
    :param image_uri: container image (multi-model mode).
    :param model_data_url: S3 prefix of the model archives (multi-model mode).
    :param environment: container environment (multi-model mode). Default: none.
    :param network_isolation: no network access for the container (its code travels inside the
        model archive, so nothing needs downloading). Default: ``True``.
    :param security_group: the containers' security group. Default: the network's workload group
        (shared with Studio apps and jobs: only for isolated containers).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name_prefix: str,
        role: iam.IRole,
        network: PrivateNetwork,
        model_package_arn: str | None = None,
        image_uri: str | None = None,
        model_data_url: str | None = None,
        environment: dict[str, str] | None = None,
        network_isolation: bool = True,
        security_group: ec2.ISecurityGroup | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if (model_package_arn is None) == (image_uri is None or model_data_url is None):
            raise ValueError("EndpointModel needs either model_package_arn or image_uri with model_data_url")
        if model_package_arn is not None:
            container = sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=model_package_arn)
        else:
            container = sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri, mode="MultiModel", model_data_url=model_data_url, environment=environment
            )
        self.resource = sagemaker.CfnModel(
            self,
            "Resource",
            execution_role_arn=role.role_arn,
            containers=[container],
            enable_network_isolation=network_isolation,
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=network.workload_subnets.subnet_ids,
                security_group_ids=[(security_group or network.workload_security_group).security_group_id],
            ),
        )
        self.model_name = content_name(self.resource, name_prefix)
        self.resource.model_name = self.model_name


@dataclass(frozen=True)
class DataCapture:
    """Requests and responses written to ``bucket`` under ``prefix``, encrypted with ``bucket``'s key.

    SageMaker appends ``<endpoint>/<variant>/yyyy/mm/dd/hh/`` to the destination.

    :param sampling_percentage: share of requests captured; 0 turns capture off. Default: 100.
    """

    bucket: s3.IBucket
    prefix: str
    sampling_percentage: int = 100


@dataclass(frozen=True)
class AsyncInference:
    """Asynchronous invocation: results and failures in S3 (encrypted with ``output_key``), completion
    notices on ``notifications``.

    :param max_concurrent_invocations_per_instance: Default: 4.
    """

    output_url: str
    failure_url: str
    output_key: kms.IKey
    notifications: sns.ITopic
    max_concurrent_invocations_per_instance: int = 4


@dataclass(frozen=True)
class Rollout:
    """How an update shifts traffic (blue/green) and when it rolls back; every default is SageMaker-safe.

    :param mode: ``canary`` (``canary_percent`` of the capacity, then the rest), ``linear`` (steps of
        ``linear_step_percent``) or ``all_at_once``. Default: ``all_at_once``.
    :param canary_percent: Default: 10.
    :param linear_step_percent: Default: 20.
    :param wait_seconds: after each traffic shift. Default: 300.
    :param termination_wait_seconds: the old fleet stays this long after the shift. Default: 120.
    :param max_execution_seconds: the whole update. Default: 3600.
    :param max_5xx_errors_per_minute: server errors (failed invocations when asynchronous) that roll
        the update back. Default: 5.
    :param max_model_latency_ms: p99 model latency that rolls the update back. Default: 1000.
    """

    mode: str = "all_at_once"
    canary_percent: int = 10
    linear_step_percent: int = 20
    wait_seconds: int = 300
    termination_wait_seconds: int = 120
    max_execution_seconds: int = 3600
    max_5xx_errors_per_minute: int = 5
    max_model_latency_ms: int = 1000

    def __post_init__(self) -> None:
        if self.mode not in TRAFFIC_MODES:
            raise ValueError(f"Rollout mode {self.mode!r}; allowed: {', '.join(TRAFFIC_MODES)}")


class GuardedEndpoint(Construct):
    """An endpoint with a stable name, a content-named configuration and guarded updates.

    Updates run blue/green with the traffic shifting of ``rollout`` and roll back automatically
    when the endpoint's server errors or model latency alarm fires. Variant properties (the
    instance count autoscaling set) survive configuration changes.

    :param endpoint_name: the name clients invoke; never changes with the content.
    :param model: the model the one production variant serves.
    :param instance_type: of the variant.
    :param initial_instance_count: of the variant when the endpoint is created.
    :param volume_key: encrypts the instances' storage volumes.
    :param rollout: traffic shifting and rollback thresholds. Default: ``Rollout()`` (all at once).
    :param variant_name: kept across updates (blue/green needs the same name). Default: ``AllTraffic``.
    :param data_capture: capture requests and responses. Default: none.
    :param async_inference: make this an asynchronous endpoint. Default: none (real-time).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        endpoint_name: str,
        model: EndpointModel,
        instance_type: str,
        initial_instance_count: int,
        volume_key: kms.IKey,
        rollout: Rollout = Rollout(),
        variant_name: str = "AllTraffic",
        data_capture: DataCapture | None = None,
        async_inference: AsyncInference | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.endpoint_name = endpoint_name
        self.variant_name = variant_name
        self.instance_type = instance_type
        self.is_async = async_inference is not None
        self.captures = data_capture is not None and data_capture.sampling_percentage > 0
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=variant_name,
                    model_name=model.model_name,
                    instance_type=instance_type,
                    initial_instance_count=initial_instance_count,
                    initial_variant_weight=1.0,
                )
            ],
            # Instance storage volumes; instance types with local NVMe storage do not take a key.
            kms_key_id=volume_key.key_arn,
            data_capture_config=self._capture(data_capture) if data_capture else None,
            async_inference_config=self._async(async_inference) if async_inference else None,
        )
        self.config.node.add_dependency(model.resource)  # named by a plain string, not a reference
        self.config_name = content_name(self.config, f"{endpoint_name}-config")
        self.config.endpoint_config_name = self.config_name

        self.error_alarm = cloudwatch.Alarm(
            self,
            "ErrorsAlarm",
            alarm_name=f"{endpoint_name}-rollback-errors",
            alarm_description=f"{endpoint_name}: {'failed invocations' if self.is_async else '5xx errors'} "
            f"reached {rollout.max_5xx_errors_per_minute} per minute; an update in progress rolls back",
            metric=self.metric_server_errors(),
            threshold=rollout.max_5xx_errors_per_minute,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency_alarm = cloudwatch.Alarm(
            self,
            "LatencyAlarm",
            alarm_name=f"{endpoint_name}-rollback-latency",
            alarm_description=f"{endpoint_name}: p99 model latency above {rollout.max_model_latency_ms} ms "
            "for two minutes; an update in progress rolls back",
            metric=self.metric_model_latency(),
            threshold=rollout.max_model_latency_ms * 1000,  # ModelLatency is in microseconds
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.error_alarm, self.latency_alarm):
            acknowledge_in_packs(
                alarm,
                "CloudWatchAlarmAction",
                "Rollback alarm: SageMaker's deployment guardrails read it during an endpoint update and roll back; "
                "people are notified by the monitoring stack's alarms on the same endpoint metrics, which act on the "
                "environment's alarm topic (an action here would notify twice)",
                packs=("NIST.800.53.R5", "HIPAA.Security"),
            )

        self.resource = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
            retain_all_variant_properties=True,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=self._blue_green(rollout),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                        for alarm in (self.error_alarm, self.latency_alarm)
                    ]
                ),
            ),
        )
        self.endpoint_arn = cdk.Stack.of(self).format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())

    # -- metrics -----------------------------------------------------------------------------

    # Every metric_* method takes cloudwatch.MetricOptions as keyword arguments (period, statistic,
    # label, unit, ...) over its defaults: one minute, and the statistic named in its docstring.

    def metric(self, metric_name: str, *, per_variant: bool = True, **options) -> cloudwatch.Metric:
        """A CloudWatch metric of this endpoint (per variant unless ``per_variant`` is false). Default: ``Sum``."""
        dimensions = {"EndpointName": self.endpoint_name}
        if per_variant:
            dimensions["VariantName"] = self.variant_name
        return cloudwatch.Metric(namespace=NAMESPACE, metric_name=metric_name, dimensions_map=dimensions, **_with_defaults(options, "Sum"))

    def metric_invocations(self, **options) -> cloudwatch.Metric:
        """Requests answered (real-time endpoints). Default: ``Sum``."""
        return self.metric("Invocations", **options)

    def metric_invocations_processed(self, **options) -> cloudwatch.Metric:
        """Requests processed (asynchronous endpoints). Default: ``Sum``."""
        return self.metric("InvocationsProcesssed", **options)  # sic: SageMaker's metric name

    def metric_client_errors(self, **options) -> cloudwatch.Metric:
        """4xx responses. Default: ``Sum``."""
        return self.metric("Invocation4XXErrors", **options)

    def metric_instance(self, metric_name: str, **options) -> cloudwatch.Metric:
        """An instance metric (``CPUUtilization``, ``MemoryUtilization``, ``DiskUtilization``) of the variant.
        Default: ``Average``."""
        return cloudwatch.Metric(
            namespace=INSTANCE_NAMESPACE, metric_name=metric_name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": self.variant_name}, **_with_defaults(options, "Average"),
        )  # fmt: skip

    def metric_cpu_utilization(self, **options) -> cloudwatch.Metric:
        """CPU of the variant's instances, in percent of one vCPU (summed over the vCPUs). Default: ``Average``."""
        return self.metric_instance("CPUUtilization", **options)

    def metric_memory_utilization(self, **options) -> cloudwatch.Metric:
        """Memory of the variant's instances, in percent. Default: ``Average``."""
        return self.metric_instance("MemoryUtilization", **options)

    def metric_server_errors(self, **options) -> cloudwatch.Metric:
        """5xx responses; failed invocations for an asynchronous endpoint (which has no HTTP response). Default: ``Sum``."""
        return self.metric("InvocationFailures" if self.is_async else "Invocation5XXErrors", **options)

    def metric_model_latency(self, **options) -> cloudwatch.Metric:
        """Time the model takes to answer, in microseconds. Default: ``p99``."""
        return self.metric("ModelLatency", **{"statistic": "p99", **options})

    def metric_backlog_per_instance(self, **options) -> cloudwatch.Metric:
        """Queued requests per instance (asynchronous endpoints). Default: ``Average``."""
        return self.metric("ApproximateBacklogSizePerInstance", per_variant=False, **{"statistic": "Average", **options})

    def metric_oldest_request_age(self, **options) -> cloudwatch.Metric:
        """Seconds the oldest queued request has waited (asynchronous endpoints). Default: ``Maximum``."""
        return self.metric("ApproximateAgeOfOldestRequest", per_variant=False, **{"statistic": "Maximum", **options})

    def metric_backlog_without_capacity(self, **options) -> cloudwatch.Metric:
        """1 while requests wait and no instance runs (asynchronous endpoints). Default: ``Average``."""
        return self.metric("HasBacklogWithoutCapacity", per_variant=False, **{"statistic": "Average", **options})

    # -- autoscaling -------------------------------------------------------------------------

    def _scalable_target(self, min_capacity: int, max_capacity: int) -> appscaling.ScalableTarget:
        target = appscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{self.variant_name}",
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            role=iam.Role.from_role_arn(
                self,
                "AutoScalingRole",
                cdk.Stack.of(self).format_arn(
                    service="iam",
                    region="",
                    resource="role",
                    resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                ),
            ),
        )
        # Registered once the endpoint exists, deregistered before it is deleted.
        target.node.add_dependency(self.resource)
        return target

    def scale_on_invocations(
        self,
        *,
        min_capacity: int = 1,
        max_capacity: int = 4,
        target_per_instance: float = 70.0,
        scale_in_cooldown: cdk.Duration = cdk.Duration.minutes(5),
        scale_out_cooldown: cdk.Duration = cdk.Duration.minutes(1),
    ) -> appscaling.ScalableTarget:
        """Track ``target_per_instance`` invocations per instance and minute, between ``min_capacity``
        and ``max_capacity`` instances (defaults: 1 to 4; scale in after 5 minutes, out after 1)."""
        target = self._scalable_target(min_capacity, max_capacity)
        target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=target_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
        )
        return target

    def scale_on_backlog(
        self,
        *,
        min_capacity: int = 1,
        max_capacity: int = 4,
        target_per_instance: float = 5.0,
        scale_in_cooldown: cdk.Duration = cdk.Duration.minutes(5),
        scale_out_cooldown: cdk.Duration = cdk.Duration.minutes(1),
    ) -> appscaling.ScalableTarget:
        """Track ``target_per_instance`` queued requests per instance (asynchronous endpoints); the
        capacity and cooldown defaults are those of ``scale_on_invocations``.

        With ``min_capacity`` 0, target tracking alone never starts the first instance (there is no
        per-instance backlog without instances): a step policy adds one as soon as requests wait
        without capacity.
        """
        target = self._scalable_target(min_capacity, max_capacity)
        target.scale_to_track_metric(
            "BacklogPerInstance",
            target_value=target_per_instance,
            custom_metric=self.metric_backlog_per_instance(),
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
        )
        if min_capacity == 0:
            start = appscaling.StepScalingAction(
                self,
                "ScaleOutFromZero",
                scaling_target=target,
                adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                cooldown=scale_out_cooldown,
                metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            )
            start.add_adjustment(adjustment=1, lower_bound=0)
            alarm = cloudwatch.Alarm(
                self,
                "BacklogWithoutCapacityAlarm",
                alarm_name=f"{self.endpoint_name}-backlog-without-capacity",
                alarm_description=f"{self.endpoint_name}: requests wait and no instance runs; start one",
                metric=self.metric_backlog_without_capacity(),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(start))
        return target

    # -- grants ------------------------------------------------------------------------------

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` call this endpoint (synchronously or asynchronously)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:InvokeEndpointAsync" if self.is_async else "sagemaker:InvokeEndpoint"],
            resource_arns=[self.endpoint_arn],
        )

    # -- rendering ---------------------------------------------------------------------------

    @staticmethod
    def _capture(capture: DataCapture) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty:
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=capture.sampling_percentage > 0,
            initial_sampling_percentage=capture.sampling_percentage,
            destination_s3_uri=f"s3://{capture.bucket.bucket_name}/{capture.prefix.rstrip('/')}",
            kms_key_id=capture.bucket.encryption_key.key_arn if capture.bucket.encryption_key else None,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode) for mode in ("Input", "Output")
            ],
            # Text payloads are stored as text (not base64), which the drift check reads directly.
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                csv_content_types=CAPTURE_CSV_TYPES, json_content_types=CAPTURE_JSON_TYPES
            ),
        )

    @staticmethod
    def _async(settings: AsyncInference) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
        topic_arn = settings.notifications.topic_arn
        return sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
            client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                max_concurrent_invocations_per_instance=settings.max_concurrent_invocations_per_instance
            ),
            output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                s3_output_path=settings.output_url,
                s3_failure_path=settings.failure_url,
                kms_key_id=settings.output_key.key_arn,
                notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                    success_topic=topic_arn, error_topic=topic_arn
                ),
            ),
        )

    @staticmethod
    def _blue_green(rollout: Rollout) -> sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty:
        mode = TRAFFIC_MODES[rollout.mode]
        percent = {"CANARY": rollout.canary_percent, "LINEAR": rollout.linear_step_percent}.get(mode)
        step = sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=percent) if percent else None
        return sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                type=mode,
                wait_interval_in_seconds=rollout.wait_seconds,
                canary_size=step if mode == "CANARY" else None,
                linear_step_size=step if mode == "LINEAR" else None,
            ),
            termination_wait_in_seconds=rollout.termination_wait_seconds,
            maximum_execution_timeout_in_seconds=rollout.max_execution_seconds,
        )
