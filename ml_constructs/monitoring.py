"""Alarms that notify one topic, and the environment's dashboard.

Every alarm has a stable, documented name (``<prefix>-<subject>-<condition>``) and the same action,
so a reviewer sees in one place what pages the team.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from constructs import Construct

from ml_constructs.notifications import NotificationTopic

PIPELINE_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"
ENDPOINT_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
# vCPUs by instance size, for CPU alarms in percent of the instance (CloudWatch sums the cores).
VCPUS = {"medium": 2, "large": 2, "xlarge": 4}


def vcpus_of(instance_type: str) -> int:
    """vCPUs of an ``ml.<family>.<size>`` instance (``Nxlarge`` has 4N), for CPU thresholds."""
    size = instance_type.rsplit(".", 1)[-1]
    if size in VCPUS:
        return VCPUS[size]
    multiple = size.removesuffix("xlarge")
    return 4 * int(multiple) if multiple.isdigit() else 2


def pipeline_metric(pipeline_name: str, metric_name: str, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
    """A SageMaker Pipelines execution metric (``ExecutionStarted|Succeeded|Failed|Stopped``)."""
    return cloudwatch.Metric(
        namespace=PIPELINE_NAMESPACE, metric_name=metric_name, dimensions_map={"PipelineName": pipeline_name},
        statistic="Sum", period=period,
    )  # fmt: skip


class AlarmSet(Construct):
    """Alarms with stable names, all notifying ``topic`` (on ALARM and back to OK).

    :param topic: where every alarm sends its state changes; CloudWatch may use its key.
    :param name_prefix: start of every alarm name (``mlp-<env>``).
    """

    def __init__(self, scope: Construct, id_: str, *, topic: NotificationTopic, name_prefix: str) -> None:
        super().__init__(scope, id_)
        self.topic = topic
        self.name_prefix = name_prefix
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        topic.allow_service_to_publish("cloudwatch.amazonaws.com")

    def add(
        self,
        name: str,
        *,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
        missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        """Alarm ``<name_prefix>-<name>``: ``metric`` compared with ``threshold``."""
        alarm_name = f"{self.name_prefix}-{name}"
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.title() for part in name.split("-")),
            alarm_name=alarm_name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=missing_data,
        )
        action = cloudwatch_actions.SnsAction(self.topic.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[alarm_name] = alarm
        return alarm


class PlatformDashboard(Construct):
    """One CloudWatch dashboard per environment, built section by section.

    :param dashboard_name: e.g. ``mlp-dev-ml-platform``.
    """

    def __init__(self, scope: Construct, id_: str, *, dashboard_name: str) -> None:
        super().__init__(scope, id_)
        self.dashboard = cloudwatch.Dashboard(
            self, "Resource", dashboard_name=dashboard_name, default_interval=cdk.Duration.days(1),
            period_override=cloudwatch.PeriodOverride.AUTO,
        )  # fmt: skip
        self.dashboard_name = dashboard_name

    def add_section(self, title: str, *widgets: cloudwatch.IWidget) -> None:
        """A heading, then ``widgets`` side by side."""
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown=f"## {title}", width=24, height=1))
        self.dashboard.add_widgets(*widgets)

    @staticmethod
    def graph(title: str, *metrics: cloudwatch.IMetric, right: list[cloudwatch.IMetric] = (), width: int = 8) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=list(metrics), right=list(right), width=width, height=6)
