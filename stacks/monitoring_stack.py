"""Monitoring deployment unit: alarms to one encrypted topic, the dashboard, drift checks, retraining on
drift and the budget."""

from __future__ import annotations

import hashlib
import json

import aws_cdk as cdk
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from constructs import Construct

from config.schema import MonitoringConfig
from ml_constructs.endpoints import GuardedEndpoint
from ml_constructs.monitoring import AlarmSet, PlatformDashboard, pipeline_metric, vcpus_of
from ml_constructs.network import PrivateNetwork
from ml_constructs.notifications import NotificationTopic
from ml_constructs.sagemaker_pipeline import SageMakerPipeline, framework_image_uri
from ml_constructs.step_code import StepCode
from stacks.drift_check_definition import cached_drift_definition
from stacks.foundation_stack import SKLEARN_VERSION, FoundationStack
from stacks.definition_cache import definition_cache_dir, subnet_substitutions
from stacks.model_build_stack import STEPS_DIR, ModelBuildStack
from stacks.serving_stack import ServingStack

GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
BREACHING = cloudwatch.TreatMissingData.BREACHING
# Endpoints whose requests are captured (and so checked for drift).
CAPTURED_ENDPOINTS = ("realtime", "async")
BUDGET_NAME_HASH_LENGTH = 10


class MonitoringStack(cdk.Stack):
    """What watches the environment and tells the team.

    :param network: subnets and security group of the drift check job.
    :param foundation: buckets, keys and the monitoring job role.
    :param model_build: the model-build pipeline (failures alarm; drift may retrain it).
    :param serving: the endpoints to watch. Default: none (no approved model deployed yet).
    :param settings: the environment's ``monitoring`` configuration.
    :param cost_allocation_tag: ``(key, value)`` the budget filters on.
    :param resource_prefix: ``mlp-<env>``: alarm names start with it.
    :param removal_policy: for the topic's key. Default: ``RETAIN``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: PrivateNetwork,
        foundation: FoundationStack,
        model_build: ModelBuildStack,
        settings: MonitoringConfig,
        cost_allocation_tag: tuple[str, str],
        resource_prefix: str,
        serving: ServingStack | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.settings = settings
        if serving is not None:
            self.node.add_dependency(serving)  # alarms and schedules name its endpoints
        self.topic = NotificationTopic(
            self,
            "AlarmTopic",
            alias=f"{resource_prefix}/monitoring-alarms",
            display_name=f"{resource_prefix} alarms",
            emails=settings.notification_emails,
            removal_policy=removal_policy,
        )
        self.alarms = AlarmSet(self, "Alarms", topic=self.topic, name_prefix=resource_prefix)
        self.dashboard = PlatformDashboard(self, "Dashboard", dashboard_name=f"{resource_prefix}-ml-platform")

        if serving is not None:
            for kind, endpoint in serving.endpoints.items():
                self._watch_endpoint(kind, endpoint)

        pipelines = [model_build.pipeline.pipeline_name]
        if serving is not None and serving.batch_scoring is not None:
            pipelines.append(serving.batch_scoring.pipeline_name)
        captured = {k: e for k, e in (serving.endpoints.items() if serving else []) if k in CAPTURED_ENDPOINTS and e.captures}
        self.drift_check = None
        if settings.drift_check.enabled and captured:
            self.drift_check = self._drift_check(network, foundation, serving, captured, resource_prefix)
            pipelines.append(self.drift_check.pipeline_name)
            if settings.retrain_on_drift and "realtime" in captured:
                self._retrain_on_drift(model_build, foundation)
        for pipeline_name in pipelines:
            self._watch_pipeline(pipeline_name)

        if settings.budget.enabled:
            self.budget = self._budget(resource_prefix, *cost_allocation_tag)

        cdk.CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn, description="Alarms and budget alerts")
        cdk.CfnOutput(self, "DashboardName", value=self.dashboard.dashboard_name, description="CloudWatch dashboard")

    # -- endpoints -------------------------------------------------------------------------------

    def _watch_endpoint(self, kind: str, endpoint: GuardedEndpoint) -> None:
        """Error rates, latency, traffic and instance load of one endpoint; its dashboard row."""
        thresholds = self.settings.alarms
        subject = kind
        invocations = endpoint.metric_invocations()
        latency = endpoint.metric_model_latency(statistic="p99")
        self.alarms.add(
            f"{subject}-model-latency",
            description=f"{endpoint.endpoint_name}: p99 model latency above {thresholds.model_latency_p99_ms} ms for 5 of 5 minutes",
            metric=latency, threshold=thresholds.model_latency_p99_ms * 1000, comparison=GT, evaluation_periods=5,
        )  # fmt: skip
        cpu_limit = thresholds.cpu_utilization_percent * vcpus_of(endpoint.instance_type)
        self.alarms.add(
            f"{subject}-cpu",
            description=f"{endpoint.endpoint_name}: CPU above {thresholds.cpu_utilization_percent}% of the instance "
            f"({cpu_limit:g}% summed over {vcpus_of(endpoint.instance_type)} vCPUs) for 15 minutes",
            metric=endpoint.metric_instance("CPUUtilization").with_(period=cdk.Duration.minutes(5)),
            threshold=cpu_limit, comparison=GT, evaluation_periods=3,
        )  # fmt: skip
        self.alarms.add(
            f"{subject}-memory",
            description=f"{endpoint.endpoint_name}: memory above {thresholds.memory_utilization_percent}% for 15 minutes",
            metric=endpoint.metric_instance("MemoryUtilization").with_(period=cdk.Duration.minutes(5)),
            threshold=thresholds.memory_utilization_percent, comparison=GT, evaluation_periods=3,
        )  # fmt: skip
        if endpoint.is_async:
            errors_widget = PlatformDashboard.graph("Failed invocations", endpoint.metric_server_errors(), width=6)
            self.alarms.add(
                f"{subject}-failed-invocations",
                description=f"{endpoint.endpoint_name}: asynchronous invocations failed in 3 of 5 minutes",
                metric=endpoint.metric_server_errors(), threshold=1, evaluation_periods=5, datapoints_to_alarm=3,
            )  # fmt: skip
            self.alarms.add(
                f"{subject}-oldest-request-age",
                description=f"{endpoint.endpoint_name}: a queued request has waited more than "
                f"{thresholds.async_oldest_request_minutes} minutes for 5 minutes",
                metric=endpoint.metric("ApproximateAgeOfOldestRequest", statistic="Maximum", per_variant=False),
                threshold=thresholds.async_oldest_request_minutes * 60, comparison=GT, evaluation_periods=5,
            )  # fmt: skip
            traffic = endpoint.metric("InvocationsProcesssed")  # sic: SageMaker's metric name
        else:
            rates = {
                "5xx": (endpoint.metric_server_errors(), thresholds.server_error_rate_percent),
                "4xx": (endpoint.metric_client_errors(), thresholds.client_error_rate_percent),
            }
            rate_metrics = []
            for code, (errors, limit) in rates.items():
                rate = cloudwatch.MathExpression(
                    expression=f"IF(invocations > 0, 100 * e{code} / invocations, 0)",
                    using_metrics={f"e{code}": errors, "invocations": invocations},
                    label=f"{code} %",
                    period=cdk.Duration.minutes(1),
                )
                rate_metrics.append(rate)
                self.alarms.add(
                    f"{subject}-{code}-rate",
                    description=f"{endpoint.endpoint_name}: more than {limit}% of requests answered {code} in 3 of 5 minutes",
                    metric=rate, threshold=limit, comparison=GT, evaluation_periods=5, datapoints_to_alarm=3,
                )  # fmt: skip
            errors_widget = PlatformDashboard.graph("Error rate (%)", *rate_metrics, width=6)
            traffic = invocations
            if thresholds.invocations_absent_minutes:
                periods = thresholds.invocations_absent_minutes // 5
                self.alarms.add(
                    f"{subject}-invocations-absent",
                    description=f"{endpoint.endpoint_name}: no invocation for {thresholds.invocations_absent_minutes} minutes",
                    metric=invocations.with_(period=cdk.Duration.minutes(5)), threshold=1, comparison=LT,
                    evaluation_periods=periods, missing_data=BREACHING,
                )  # fmt: skip
        cpu_samples = endpoint.metric_instance("CPUUtilization", statistic="SampleCount").with_(period=cdk.Duration.minutes(5))
        instances = cloudwatch.MathExpression(
            expression="samples / (PERIOD(samples) / 60)",  # each instance reports CPU once a minute
            using_metrics={"samples": cpu_samples},
            label="instances",
        )
        self.dashboard.add_section(
            f"Endpoint {endpoint.endpoint_name}",
            PlatformDashboard.graph("Traffic", traffic, width=6),
            PlatformDashboard.graph("Model latency (µs)", endpoint.metric_model_latency(statistic="p50"), latency, width=6),
            errors_widget,
            PlatformDashboard.graph("Instances", instances, width=4),
        )

    # -- drift -----------------------------------------------------------------------------------

    def _drift_check(
        self,
        network: PrivateNetwork,
        foundation: FoundationStack,
        serving: ServingStack,
        captured: dict[str, GuardedEndpoint],
        resource_prefix: str,
    ) -> SageMakerPipeline:
        """A pipeline running drift_check.py on one endpoint's capture, scheduled once per captured endpoint."""
        drift = self.settings.drift_check
        pipeline_name = f"{resource_prefix}-drift-check"
        job_role = foundation.monitoring_role.imported_into(self, "MonitoringJobRole")
        code = StepCode(self, "DriftCheckCode", scripts={"drift-check": STEPS_DIR / "drift_check.py"})
        code.grant_read(job_role)
        subnet_ids = network.workload_subnets.subnet_ids
        definition = cached_drift_definition(
            cache_dir=definition_cache_dir(self),
            pipeline_name=pipeline_name,
            subnet_count=len(subnet_ids),
            instance_type=drift.instance_type,
            metric_namespace=drift.metric_namespace,
            psi_threshold=drift.psi_threshold,
            ks_threshold=drift.ks_threshold,
        )
        first = next(iter(captured.values()))
        pipeline = SageMakerPipeline(
            self,
            "DriftCheck",
            pipeline_name=pipeline_name,
            definition=definition,
            substitutions={
                "JobRoleName": job_role.role_name,
                "SklearnImageUri": framework_image_uri(self, framework="sklearn", version=SKLEARN_VERSION),
                "CodeBucket": code.scripts["drift-check"].s3_bucket_name,
                "DriftCheckScriptKey": code.scripts["drift-check"].s3_object_key,
                "SecurityGroupId": network.workload_security_group.security_group_id,
                "VolumeKmsKeyArn": foundation.models_key.key_arn,
                "OutputKmsKeyArn": foundation.data_key.key_arn,
                "ReportsBucket": foundation.reports_bucket.bucket_name,
                "CaptureBucket": foundation.capture_bucket.bucket_name,
                "EndpointName": first.endpoint_name,
                "ModelPackageArn": serving.package.arn,
                **subnet_substitutions(subnet_ids),
            },
            role=foundation.pipeline_role.imported_into(self, "PipelineRole"),
            description="Compare captured endpoint traffic with the training baseline profile",
        )
        scheduler_role = foundation.scheduler_role.role
        thresholds = self.settings.alarms
        self.drift_alarms = {}
        for kind, endpoint in captured.items():
            pipeline.start_on_schedule(
                f"{kind.title()}Schedule",
                expression=drift.schedule,
                role=scheduler_role,
                description=f"Drift check of {endpoint.endpoint_name}",
                parameters={"EndpointName": endpoint.endpoint_name},
            )
            metric = self._drift_metric("DriftedFeatures", endpoint)
            self.drift_alarms[kind] = self.alarms.add(
                f"{kind}-drifted-features",
                description=f"{endpoint.endpoint_name}: {thresholds.drifted_features} or more features drifted from the "
                "training baseline in the last drift check",
                metric=metric, threshold=thresholds.drifted_features,
            )  # fmt: skip
            self.alarms.add(
                f"{kind}-drift-no-data",
                description=f"{endpoint.endpoint_name}: two drift checks in a row found no captured requests, or did not report",
                metric=self._drift_metric("NoCaptureData", endpoint), threshold=1, evaluation_periods=2,
                missing_data=BREACHING,
            )  # fmt: skip
            search = (
                f"SEARCH('{{{drift.metric_namespace},EndpointName,Feature}} MetricName=\"FeatureDriftScore\" "
                f"EndpointName=\"{endpoint.endpoint_name}\"', 'Maximum', 3600)"
            )
            self.dashboard.add_section(
                f"Drift {endpoint.endpoint_name}",
                PlatformDashboard.graph("Feature drift (PSI)", cloudwatch.MathExpression(expression=search, using_metrics={}, label=""), width=8),
                PlatformDashboard.graph("Drifted features", metric, self._drift_metric("PredictionDriftScore", endpoint), width=8),
                PlatformDashboard.graph("Rows analysed", self._drift_metric("RowsAnalysed", endpoint, statistic="Sum"), width=8),
            )
        cdk.CfnOutput(self, "DriftCheckPipelineName", value=pipeline_name, description="Drift check pipeline")
        return pipeline

    def _drift_metric(self, name: str, endpoint: GuardedEndpoint, *, statistic: str = "Maximum") -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.settings.drift_check.metric_namespace, metric_name=name, statistic=statistic,
            dimensions_map={"EndpointName": endpoint.endpoint_name}, period=cdk.Duration.hours(1),
        )  # fmt: skip

    def _retrain_on_drift(self, model_build: ModelBuildStack, foundation: FoundationStack) -> events.CfnRule:
        """Start the model-build pipeline when the real-time endpoint's drift alarm goes to ALARM."""
        alarm = self.drift_alarms["realtime"]
        # The rule lives here, not with the pipeline: it depends on this stack's alarm.
        return model_build.pipeline.start_on_event(
            "RetrainOnDrift",
            scope=self,
            event_pattern={
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "resources": [alarm.alarm_arn],
                "detail": {"state": {"value": ["ALARM"]}},
            },
            role=foundation.scheduler_role.role,
            description=f"{alarm.alarm_name} in ALARM: retrain with {model_build.pipeline.pipeline_name}",
        )

    # -- pipelines -------------------------------------------------------------------------------

    def _watch_pipeline(self, pipeline_name: str) -> None:
        self.alarms.add(
            f"{pipeline_name.removeprefix(self.alarms.name_prefix + '-')}-failed",
            description=f"Pipeline {pipeline_name}: an execution failed",
            metric=pipeline_metric(pipeline_name, "ExecutionFailed"), threshold=1,
        )  # fmt: skip
        self.dashboard.add_section(
            f"Pipeline {pipeline_name}",
            PlatformDashboard.graph(
                "Executions", *(pipeline_metric(pipeline_name, m, period=cdk.Duration.hours(1)) for m in ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed")),
                width=12,
            ),
            PlatformDashboard.graph(
                "Duration (ms)", pipeline_metric(pipeline_name, "ExecutionDuration", period=cdk.Duration.hours(1)).with_(statistic="Maximum"),
                width=12,
            ),
        )  # fmt: skip

    # -- cost ------------------------------------------------------------------------------------

    def _budget(self, resource_prefix: str, tag_key: str, tag_value: str) -> budgets.CfnBudget:
        """Monthly cost of everything tagged ``tag_key=tag_value``: forecast and actual alerts to the topic."""
        self.topic.allow_service_to_publish("budgets.amazonaws.com")
        budget = self.settings.budget

        def alert(kind: str, percent: float) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent, threshold_type="PERCENTAGE"
                ),
                subscribers=[budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=self.topic.topic_arn)],
            )

        notifications = [alert("FORECASTED", budget.forecast_alert_percent), alert("ACTUAL", budget.actual_alert_percent)]
        resource = budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self._budget_name(resource_prefix, notifications),
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=budget.monthly_limit_usd, unit="USD"),
                # The tag must be activated as a cost-allocation tag once per payer account.
                filter_expression=budgets.CfnBudget.ExpressionProperty(
                    tags=budgets.CfnBudget.TagValuesProperty(key=tag_key, values=[tag_value], match_options=["EQUALS"])
                ),
            ),
            notifications_with_subscribers=notifications,
        )
        resource.node.add_dependency(self.topic.topic.node.find_child("Policy"))  # Budgets may publish first
        return resource

    def _budget_name(self, resource_prefix: str, notifications: list) -> str:
        """``<prefix>-monthly-cost-<hash of the alerts>``.

        The name and the alerts are create-only: a changed alert replaces the budget, which needs a
        new name. Hashing only the create-only part keeps a limit change an in-place update.
        """
        rendered = json.dumps(self.resolve(notifications), sort_keys=True, separators=(",", ":"))
        return f"{resource_prefix}-monthly-cost-{hashlib.sha256(rendered.encode()).hexdigest()[:BUDGET_NAME_HASH_LENGTH]}"

