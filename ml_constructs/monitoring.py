"""Alarms that notify one topic, and the environment's dashboard.

Every alarm has a stable, documented name (``<prefix>-<subject>-<condition>``) and the same action,
so a reviewer sees in one place what pages the team.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from constructs import Construct

from ml_constructs.notifications import NotificationTopic

# vCPUs by instance size, for CPU alarms in percent of the instance (CloudWatch sums the cores).
VCPUS = {"medium": 2, "large": 2, "xlarge": 4}


def vcpus_of(instance_type: str) -> int:
    """vCPUs of an ``ml.<family>.<size>`` instance (``Nxlarge`` has 4N), for CPU thresholds."""
    size = instance_type.rsplit(".", 1)[-1]
    if size in VCPUS:
        return VCPUS[size]
    multiple = size.removesuffix("xlarge")
    return 4 * int(multiple) if multiple.isdigit() else 2


GTE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
NOT_BREACHING = cloudwatch.TreatMissingData.NOT_BREACHING


@dataclass(frozen=True)
class AlarmRule:
    """One row of a subject's alarm table: ``<subject>-<condition>`` alarms when ``metric`` crosses ``threshold``.

    :param comparison: Default: greater than or equal to the threshold.
    :param evaluation_periods: periods of ``metric`` compared. Default: 1.
    :param datapoints_to_alarm: of those, how many must breach. Default: all of them.
    :param missing_data: Default: not breaching (no traffic is no alarm).
    """

    condition: str
    metric: cloudwatch.IMetric
    threshold: float
    description: str
    comparison: cloudwatch.ComparisonOperator = GTE
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    missing_data: cloudwatch.TreatMissingData = NOT_BREACHING


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

    def watch(self, subject: str, rules: Iterable[AlarmRule]) -> dict[str, cloudwatch.Alarm]:
        """One alarm per row of ``subject``'s table, named ``<name_prefix>-<subject>-<condition>``; by condition."""
        return {rule.condition: self.add(f"{subject}-{rule.condition}", rule) for rule in rules}

    def add(self, name: str, rule: AlarmRule) -> cloudwatch.Alarm:
        """Alarm ``<name_prefix>-<name>`` as ``rule`` says (its construct id: ``name`` in PascalCase)."""
        alarm_name = f"{self.name_prefix}-{name}"
        alarm = cloudwatch.Alarm(
            self,
            "".join(part.title() for part in name.split("-")),
            alarm_name=alarm_name,
            alarm_description=rule.description,
            metric=rule.metric,
            threshold=rule.threshold,
            comparison_operator=rule.comparison,
            evaluation_periods=rule.evaluation_periods,
            datapoints_to_alarm=rule.datapoints_to_alarm,
            treat_missing_data=rule.missing_data,
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
