"""Monitoring deployment unit: alarms to one encrypted topic, the dashboard, drift checks, retraining on
drift and the budget."""

from __future__ import annotations

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
from stacks.foundation_stack import FoundationStack
from stacks.model_build_stack import ModelBuildStack
from stacks.serving_stack import ServingStack

GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
BREACHING = cloudwatch.TreatMissingData.BREACHING
# Endpoints whose requests are captured (and so checked for drift).
CAPTURED_ENDPOINTS = ("realtime", "async")


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
        if serving is not None and getattr(serving, "batch_scoring", None) is not None:
            pipelines.append(serving.batch_scoring.pipeline_name)
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
            traffic = endpoint.metric("InvocationsProcesssed", per_variant=False)  # sic: SageMaker's metric name
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

        resource = budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=f"{resource_prefix}-monthly-cost",
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=budget.monthly_limit_usd, unit="USD"),
                # Cost-allocation tags appear in billing as user:<key>; the tag must be activated once per payer account.
                cost_filters={"TagKeyValue": [f"user:{tag_key}${tag_value}"]},
            ),
            notifications_with_subscribers=[
                alert("FORECASTED", budget.forecast_alert_percent),
                alert("ACTUAL", budget.actual_alert_percent),
            ],
        )
        resource.node.add_dependency(self.topic.topic.node.find_child("Policy"))  # Budgets may publish first
        return resource

