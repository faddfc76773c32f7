"""Monitoring deployment unit: alarms to one encrypted topic, the dashboard, drift checks, retraining on
drift and the budget."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from constructs import Construct

from config.schema import MonitoringConfig
from ml_constructs.endpoints import GuardedEndpoint
from ml_constructs.monitoring import AlarmRule, AlarmSet, PlatformDashboard, vcpus_of
from ml_constructs.network import PrivateNetwork
from ml_constructs.notifications import NotificationTopic
from ml_constructs.sagemaker_pipeline import SageMakerPipeline, framework_image_uri
from ml_constructs.step_code import StepCode
from pipeline_code.definitions.cache import definition_cache_dir, subnet_substitutions
from pipeline_code.definitions.drift_check import cached_drift_definition
from stacks.foundation_stack import CAPTURE_PREFIX, DRIFT_REPORTS_PREFIX, SKLEARN_VERSION, FoundationResources
from stacks.model_build_stack import STEPS_DIR

GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
BREACHING = cloudwatch.TreatMissingData.BREACHING
# Endpoints whose requests are captured (and so checked for drift).
CAPTURED_ENDPOINTS = ("realtime", "async")
BUDGET_NAME_HASH_LENGTH = 10


class MonitoringStack(cdk.Stack):
    """What watches the environment and tells the team.

    :param network: subnets and security group of the drift check job.
    :param foundation: the foundation's buckets, keys and the monitoring job role.
    :param model_build_pipeline: the model-build pipeline (failures alarm; drift may retrain it).
    :param endpoints: the endpoints to watch, by kind (``realtime``, ``multi-model``, ``async``).
        Default: none (no approved model deployed yet).
    :param served_model_package_arn: the model package version the endpoints serve (the drift check
        reads its baseline). Default: none; required when a captured endpoint is watched.
    :param batch_scoring_pipeline: failures alarm. Default: none.
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
        foundation: FoundationResources,
        model_build_pipeline: SageMakerPipeline,
        settings: MonitoringConfig,
        cost_allocation_tag: tuple[str, str],
        resource_prefix: str,
        endpoints: Mapping[str, GuardedEndpoint] | None = None,
        served_model_package_arn: str | None = None,
        batch_scoring_pipeline: SageMakerPipeline | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.settings = settings
        endpoints = dict(endpoints or {})
        for endpoint in endpoints.values():
            self.node.add_dependency(endpoint)  # alarms and schedules name the endpoints as plain strings
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

        for kind, endpoint in endpoints.items():
            self._watch_endpoint(kind, endpoint)

        pipelines = [model_build_pipeline]
        if batch_scoring_pipeline is not None:
            pipelines.append(batch_scoring_pipeline)
        captured = {k: e for k, e in endpoints.items() if k in CAPTURED_ENDPOINTS and e.captures}
        self.drift_check = None
        if settings.drift_check.enabled and captured:
            if served_model_package_arn is None:
                raise ValueError("MonitoringStack: served_model_package_arn is required to check captured endpoints for drift")
            self.drift_check = self._drift_check(network, foundation, served_model_package_arn, captured, resource_prefix)
            pipelines.append(self.drift_check)
            if settings.retrain_on_drift and "realtime" in captured:
                self._retrain_on_drift(model_build_pipeline, foundation)
        for pipeline in pipelines:
            self._watch_pipeline(pipeline)

        if settings.budget.enabled:
            self.budget = self._budget(resource_prefix, *cost_allocation_tag)

        cdk.CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn, description="Alarms and budget alerts")
        cdk.CfnOutput(self, "DashboardName", value=self.dashboard.dashboard_name, description="CloudWatch dashboard")

    # -- endpoints -------------------------------------------------------------------------------

    def _watch_endpoint(self, kind: str, endpoint: GuardedEndpoint) -> None:
        """Error rates, latency, traffic and instance load of one endpoint; its dashboard row."""
        limits = self.settings.alarms
        name = endpoint.endpoint_name
        five_minutes = cdk.Duration.minutes(5)
        vcpus = vcpus_of(endpoint.instance_type)
        cpu_limit = limits.cpu_utilization_percent * vcpus
        rules = [
            AlarmRule(
                "model-latency", endpoint.metric_model_latency(), limits.model_latency_p99_ms * 1000,  # microseconds
                f"{name}: p99 model latency above {limits.model_latency_p99_ms} ms for 5 of 5 minutes", GT, 5,
            ),
            AlarmRule(
                "cpu", endpoint.metric_cpu_utilization(period=five_minutes), cpu_limit,
                f"{name}: CPU above {limits.cpu_utilization_percent}% of the instance ({cpu_limit:g}% summed over {vcpus} vCPUs) for 15 minutes",
                GT, 3,
            ),
            AlarmRule(
                "memory", endpoint.metric_memory_utilization(period=five_minutes), limits.memory_utilization_percent,
                f"{name}: memory above {limits.memory_utilization_percent}% for 15 minutes", GT, 3,
            ),
        ]  # fmt: skip
        if endpoint.is_async:
            errors_widget = PlatformDashboard.graph("Failed invocations", endpoint.metric_server_errors(), width=6)
            rules += [
                AlarmRule(
                    "failed-invocations", endpoint.metric_server_errors(), 1,
                    f"{name}: asynchronous invocations failed in 3 of 5 minutes", evaluation_periods=5, datapoints_to_alarm=3,
                ),
                AlarmRule(
                    "oldest-request-age", endpoint.metric_oldest_request_age(), limits.async_oldest_request_minutes * 60,
                    f"{name}: a queued request has waited more than {limits.async_oldest_request_minutes} minutes for 5 minutes", GT, 5,
                ),
            ]  # fmt: skip
            traffic = endpoint.metric_invocations_processed()
        else:
            invocations = endpoint.metric_invocations()
            rates = {
                code: cloudwatch.MathExpression(
                    expression=f"IF(invocations > 0, 100 * e{code} / invocations, 0)",
                    using_metrics={f"e{code}": errors, "invocations": invocations},
                    label=f"{code} %",
                    period=cdk.Duration.minutes(1),
                )
                for code, errors in (("5xx", endpoint.metric_server_errors()), ("4xx", endpoint.metric_client_errors()))
            }
            rate_limits = {"5xx": limits.server_error_rate_percent, "4xx": limits.client_error_rate_percent}
            rules += [
                AlarmRule(
                    f"{code}-rate", rate, rate_limits[code],
                    f"{name}: more than {rate_limits[code]}% of requests answered {code} in 3 of 5 minutes", GT, 5, 3,
                )
                for code, rate in rates.items()
            ]  # fmt: skip
            if limits.invocations_absent_minutes:
                rules.append(
                    AlarmRule(
                        "invocations-absent", endpoint.metric_invocations(period=five_minutes), 1,
                        f"{name}: no invocation for {limits.invocations_absent_minutes} minutes", LT,
                        limits.invocations_absent_minutes // 5, missing_data=BREACHING,
                    )
                )  # fmt: skip
            errors_widget = PlatformDashboard.graph("Error rate (%)", *rates.values(), width=6)
            traffic = invocations
        self.alarms.watch(kind, rules)
        cpu_samples = endpoint.metric_cpu_utilization(statistic="SampleCount", period=five_minutes)
        instances = cloudwatch.MathExpression(
            expression="samples / (PERIOD(samples) / 60)",  # each instance reports CPU once a minute
            using_metrics={"samples": cpu_samples},
            label="instances",
        )
        self.dashboard.add_section(
            f"Endpoint {endpoint.endpoint_name}",
            PlatformDashboard.graph("Traffic", traffic, width=6),
            PlatformDashboard.graph("Model latency (µs)", endpoint.metric_model_latency(statistic="p50"), endpoint.metric_model_latency(), width=6),
            errors_widget,
            PlatformDashboard.graph("Instances", instances, width=4),
        )

    # -- drift -----------------------------------------------------------------------------------

    def _drift_check(
        self,
        network: PrivateNetwork,
        foundation: FoundationResources,
        model_package_arn: str,
        captured: dict[str, GuardedEndpoint],
        resource_prefix: str,
    ) -> SageMakerPipeline:
        """A pipeline running the drift check on one endpoint's capture, scheduled once per captured endpoint."""
        drift = self.settings.drift_check
        pipeline_name = f"{resource_prefix}-drift-check"
        job_role = foundation.monitoring_role.imported_into(self, "MonitoringJobRole")
        code = StepCode(
            self, "DriftCheckCode", processing={"drift-check": [STEPS_DIR / "drift_check", STEPS_DIR / "stepkit.py"]}
        )
        code.grant_read(job_role)
        subnet_ids = network.workload_subnets.subnet_ids
        definition = cached_drift_definition(
            cache_dir=definition_cache_dir(self),
            pipeline_name=pipeline_name,
            subnet_count=len(subnet_ids),
            settings=drift,
            capture_prefix=CAPTURE_PREFIX,
            reports_prefix=DRIFT_REPORTS_PREFIX,
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
                "CodeBucket": code.processing["drift-check"].s3_bucket_name,
                "DriftCheckCodeKey": code.processing["drift-check"].s3_object_key,
                "SecurityGroupId": network.workload_security_group.security_group_id,
                "VolumeKmsKeyArn": foundation.models_key.key_arn,
                "OutputKmsKeyArn": foundation.data_key.key_arn,
                "ReportsBucket": foundation.reports_bucket.bucket_name,
                "CaptureBucket": foundation.capture_bucket.bucket_name,
                "EndpointName": first.endpoint_name,
                "ModelPackageArn": model_package_arn,
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
            drift_alarms = self.alarms.watch(
                kind,
                [
                    AlarmRule(
                        "drifted-features", metric, thresholds.drifted_features,
                        f"{endpoint.endpoint_name}: {thresholds.drifted_features} or more features drifted from the training "
                        "baseline in the last drift check",
                    ),
                    AlarmRule(
                        "drift-no-data", self._drift_metric("NoCaptureData", endpoint), 1,
                        f"{endpoint.endpoint_name}: two drift checks in a row found no captured requests, or did not report",
                        evaluation_periods=2, missing_data=BREACHING,
                    ),
                ],
            )  # fmt: skip
            self.drift_alarms[kind] = drift_alarms["drifted-features"]
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

    def _retrain_on_drift(self, model_build_pipeline: SageMakerPipeline, foundation: FoundationResources) -> events.CfnRule:
        """Start the model-build pipeline when the real-time endpoint's drift alarm goes to ALARM."""
        alarm = self.drift_alarms["realtime"]
        # The rule lives here, not with the pipeline: it depends on this stack's alarm.
        return model_build_pipeline.start_on_event(
            "RetrainOnDrift",
            scope=self,
            event_pattern={
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "resources": [alarm.alarm_arn],
                "detail": {"state": {"value": ["ALARM"]}},
            },
            role=foundation.scheduler_role.role,
            description=f"{alarm.alarm_name} in ALARM: retrain with {model_build_pipeline.pipeline_name}",
        )

    # -- pipelines -------------------------------------------------------------------------------

    def _watch_pipeline(self, pipeline: SageMakerPipeline) -> None:
        name = pipeline.pipeline_name
        self.alarms.watch(
            name.removeprefix(self.alarms.name_prefix + "-"),
            [AlarmRule("failed", pipeline.metric_executions_failed(), 1, f"Pipeline {name}: an execution failed")],
        )
        hourly = cdk.Duration.hours(1)
        self.dashboard.add_section(
            f"Pipeline {name}",
            PlatformDashboard.graph(
                "Executions",
                pipeline.metric_executions_started(period=hourly),
                pipeline.metric_executions_succeeded(period=hourly),
                pipeline.metric_executions_failed(period=hourly),
                width=12,
            ),
            PlatformDashboard.graph("Duration (ms)", pipeline.metric_execution_duration(period=hourly), width=12),
        )

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
                # CreateBudget takes FilterExpression with Metrics (or the legacy CostFilters with CostTypes).
                metrics=["UnblendedCost"],
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

