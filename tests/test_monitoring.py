"""Monitoring stack: alarms (metric, threshold, action), dashboard, budget, drift checks and their settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest

from config import load_config
from ml_constructs.monitoring import vcpus_of
from stacks.platform_stage import MODEL_MONITOR_WITHOUT_BASELINE, PlatformStage
from stacks.serving_stack import ApprovedPackage
from tests.conftest import (
    APPROVED_PACKAGE,
    approved_context,
    as_list,
    config_error,
    logical_id,
    pipeline_sub,
    platform_app,
    resources_of,
    role_statements,
    synthesize,
    template_of,
)

PACKAGE = ApprovedPackage(arn=APPROVED_PACKAGE["arn"], version=APPROVED_PACKAGE["version"])


@pytest.fixture(scope="module")
def t(serving) -> dict:
    return serving.template_json("Monitoring")


def alarms_by_name(template: dict) -> dict[str, dict]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in resources_of(template, "AWS::CloudWatch::Alarm").values()}


def topic_id(template: dict) -> str:
    return logical_id(template, "AWS::SNS::Topic", "AlarmTopic")


def monitoring_with(tmp_path: Path, monitoring_yaml: str, package: ApprovedPackage | None = PACKAGE) -> dict:
    (tmp_path / "sandbox.yaml").write_text(f"monitoring: {monitoring_yaml}\n")
    config = load_config("sandbox", config_dir=tmp_path)
    stage = PlatformStage(platform_app(), "S", config=config, approved_package=package)
    return template_of(stage.monitoring)


# Non-default settings checked below, in two builds: one customised, one with the optional parts off.
CUSTOM_MONITORING = (
    "{notification_emails: [oncall@example.com, ml@example.com], retrain_on_drift: true,"
    " alarms: {server_error_rate_percent: 2.5, model_latency_p99_ms: 200, cpu_utilization_percent: 50,"
    " invocations_absent_minutes: 0, drifted_features: 3},"
    " budget: {monthly_limit_usd: 250, forecast_alert_percent: 90},"
    " drift_check: {schedule: 'rate(6 hours)', psi_threshold: 0.3}}"
)


@pytest.fixture(scope="module")
def custom(tmp_path_factory) -> dict:
    return monitoring_with(tmp_path_factory.mktemp("custom"), CUSTOM_MONITORING)


@pytest.fixture(scope="module")
def minimal(tmp_path_factory) -> dict:
    return monitoring_with(tmp_path_factory.mktemp("minimal"), "{budget: {enabled: false}, drift_check: {enabled: false}}")


# --- topic ----------------------------------------------------------------------------------------------


def test_alarms_go_to_one_kms_encrypted_topic_that_cloudwatch_and_budgets_may_use(t):
    topic = t["Resources"][topic_id(t)]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert key_id.startswith("AlarmTopicKey")
    (policy,) = [p["Properties"] for p in resources_of(t, "AWS::SNS::TopicPolicy").values()]
    publishers = {
        s["Principal"]["Service"]: s["Condition"] for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    }  # fmt: skip
    assert set(publishers) == {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    assert all(c == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}} for c in publishers.values())
    key_policy = t["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    services = {
        service: sorted(as_list(s["Action"]))
        for s in key_policy if isinstance(s.get("Principal"), dict) and "Service" in s["Principal"]
        for service in as_list(s["Principal"]["Service"])
    }  # fmt: skip
    assert services == {
        "cloudwatch.amazonaws.com": ["kms:Decrypt", "kms:GenerateDataKey"],
        "budgets.amazonaws.com": ["kms:Decrypt", "kms:GenerateDataKey"],
    }


def test_configured_emails_subscribe_to_the_alarm_topic(custom):
    template = custom
    subscriptions = [s["Properties"] for s in resources_of(template, "AWS::SNS::Subscription").values()]
    assert sorted(s["Endpoint"] for s in subscriptions) == ["ml@example.com", "oncall@example.com"]
    assert {s["Protocol"] for s in subscriptions} == {"email"}
    assert {s["TopicArn"]["Ref"] for s in subscriptions} == {topic_id(template)}


# --- alarms ---------------------------------------------------------------------------------------------


def test_every_alarm_notifies_the_topic_on_alarm_and_recovery(t):
    for name, alarm in alarms_by_name(t).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id(t)}], name
        assert alarm["OKActions"] == [{"Ref": topic_id(t)}], name


def test_alarm_names_are_stable_and_documented(t):
    names = sorted(alarms_by_name(t))
    assert names == sorted(
        [f"mlp-sandbox-{kind}-{what}" for kind in ("realtime", "multi-model")
         for what in ("model-latency", "cpu", "memory", "5xx-rate", "4xx-rate", "invocations-absent")]
        + [f"mlp-sandbox-async-{what}" for what in ("model-latency", "cpu", "memory", "failed-invocations", "oldest-request-age")]
        + ["mlp-sandbox-model-build-failed", "mlp-sandbox-batch-scoring-failed"]
        + [f"mlp-sandbox-{kind}-{what}" for kind in ("realtime", "async") for what in ("drifted-features", "drift-no-data")]
        + ["mlp-sandbox-drift-check-failed"]
    )  # fmt: skip
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for pattern in ("<prefix>-<endpoint>-5xx-rate", "<prefix>-<endpoint>-drifted-features", "<prefix>-model-build-failed"):
        assert pattern in readme


def test_error_rate_alarms_divide_errors_by_invocations(t):
    alarm = alarms_by_name(t)["mlp-sandbox-realtime-5xx-rate"]
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "IF(invocations > 0, 100 * e5xx / invocations, 0)"
    inputs = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert inputs == {"e5xx": "Invocation5XXErrors", "invocations": "Invocations"}
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
        1, "GreaterThanThreshold", 5, 3,
    )  # fmt: skip
    assert alarms_by_name(t)["mlp-sandbox-realtime-4xx-rate"]["Threshold"] == 5


def test_latency_cpu_memory_and_absent_traffic_alarms(t):
    alarms = alarms_by_name(t)
    latency = alarms["mlp-sandbox-realtime-model-latency"]
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"]) == ("ModelLatency", "p99", 500_000)
    assert latency["Dimensions"] == [{"Name": "EndpointName", "Value": "mlp-sandbox-realtime"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    cpu = alarms["mlp-sandbox-realtime-cpu"]
    # ml.m5.large has 2 vCPUs and CloudWatch sums them: 80% of the instance is 160.
    assert (cpu["Namespace"], cpu["MetricName"], cpu["Threshold"]) == ("/aws/sagemaker/Endpoints", "CPUUtilization", 160)
    memory = alarms["mlp-sandbox-realtime-memory"]
    assert (memory["MetricName"], memory["Threshold"]) == ("MemoryUtilization", 85)
    absent = alarms["mlp-sandbox-realtime-invocations-absent"]
    assert (absent["MetricName"], absent["Statistic"], absent["Period"], absent["EvaluationPeriods"]) == ("Invocations", "Sum", 300, 12)
    assert (absent["Threshold"], absent["ComparisonOperator"], absent["TreatMissingData"]) == (1, "LessThanThreshold", "breaching")


def test_async_queue_age_alarm(t):
    alarm = alarms_by_name(t)["mlp-sandbox-async-oldest-request-age"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == ("ApproximateAgeOfOldestRequest", "Maximum", 1800)
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "mlp-sandbox-async"}]


def test_pipeline_failure_alarms(t):
    alarm = alarms_by_name(t)["mlp-sandbox-model-build-failed"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Sagemaker/ModelBuildingPipeline", "ExecutionFailed", "Sum")
    assert alarm["Dimensions"] == [{"Name": "PipelineName", "Value": "mlp-sandbox-model-build"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_thresholds_come_from_config(custom):
    alarms = alarms_by_name(custom)
    assert alarms["mlp-sandbox-realtime-5xx-rate"]["Threshold"] == 2.5
    assert alarms["mlp-sandbox-realtime-model-latency"]["Threshold"] == 200_000
    assert alarms["mlp-sandbox-realtime-cpu"]["Threshold"] == 100
    assert "mlp-sandbox-realtime-invocations-absent" not in alarms


def test_monitoring_deploys_after_the_serving_stack_whose_endpoints_it_names(serving, sandbox):
    # Alarms and drift schedules name the endpoints as plain strings: only the stack dependency orders the deploy.
    # (Stack.dependencies after synth: reading the artifacts' dependencies would re-type jsii's cached artifact proxies.)
    stage = serving.stage
    assert stage.serving.stack_name in [s.stack_name for s in stage.monitoring.dependencies]
    assert "MlPlatform-sandbox-Serving" not in [s.stack_name for s in sandbox.stage.monitoring.dependencies]


def test_without_endpoints_only_pipelines_and_cost_are_watched(sandbox):
    template = sandbox.template_json("Monitoring")
    assert sorted(alarms_by_name(template)) == ["mlp-sandbox-model-build-failed"]
    assert resources_of(template, "AWS::Budgets::Budget") and resources_of(template, "AWS::CloudWatch::Dashboard")


def test_endpoint_metrics_take_metric_options_over_their_defaults(serving):
    realtime, asynchronous = serving.stage.serving.endpoints["realtime"], serving.stage.serving.endpoints["async"]
    latency = realtime.metric_model_latency()
    assert (latency.metric_name, latency.statistic, latency.period.to_seconds()) == ("ModelLatency", "p99", 60)
    assert latency.dimensions == {"EndpointName": "mlp-sandbox-realtime", "VariantName": "AllTraffic"}
    tuned = realtime.metric_model_latency(statistic="p50", period=cdk.Duration.minutes(5), label="median")
    assert (tuned.statistic, tuned.period.to_seconds(), tuned.label) == ("p50", 300, "median")
    cpu = realtime.metric_cpu_utilization(period=cdk.Duration.minutes(5))
    assert (cpu.namespace, cpu.metric_name, cpu.statistic, cpu.period.to_seconds()) == ("/aws/sagemaker/Endpoints", "CPUUtilization", "Average", 300)
    assert (realtime.metric_server_errors().metric_name, asynchronous.metric_server_errors().metric_name) == ("Invocation5XXErrors", "InvocationFailures")
    age = asynchronous.metric_oldest_request_age(statistic="Average")
    assert (age.metric_name, age.statistic, age.dimensions) == ("ApproximateAgeOfOldestRequest", "Average", {"EndpointName": "mlp-sandbox-async"})


def test_pipeline_metrics_take_metric_options_over_their_defaults(serving):
    pipeline = serving.stage.model_build.pipeline
    failed = pipeline.metric_executions_failed()
    assert (failed.namespace, failed.metric_name, failed.statistic, failed.period.to_seconds()) == (
        "AWS/Sagemaker/ModelBuildingPipeline", "ExecutionFailed", "Sum", 300,
    )  # fmt: skip
    assert failed.dimensions == {"PipelineName": "mlp-sandbox-model-build"}
    duration = pipeline.metric_execution_duration(period=cdk.Duration.hours(1))
    assert (duration.metric_name, duration.statistic, duration.period.to_seconds()) == ("ExecutionDuration", "Maximum", 3600)
    assert pipeline.metric_executions_started(statistic="SampleCount").statistic == "SampleCount"


@pytest.mark.parametrize(("instance_type", "vcpus"), [("ml.t3.medium", 2), ("ml.m5.large", 2), ("ml.c5.xlarge", 4), ("ml.m5.4xlarge", 16)])
def test_vcpus_by_instance_size(instance_type, vcpus):
    assert vcpus_of(instance_type) == vcpus


# --- dashboard ------------------------------------------------------------------------------------------


def test_one_dashboard_shows_traffic_latency_errors_instances_drift_and_pipelines(t):
    (dashboard,) = [d["Properties"] for d in resources_of(t, "AWS::CloudWatch::Dashboard").values()]
    assert dashboard["DashboardName"] == "mlp-sandbox-ml-platform"
    body = json.dumps(dashboard["DashboardBody"])
    for needle in ("Endpoint mlp-sandbox-realtime", "Invocations", "ModelLatency", "Invocation5XXErrors", "Invocation4XXErrors",
                   "CPUUtilization", "Instances", "FeatureDriftScore", "DriftedFeatures", "ExecutionFailed",
                   "Pipeline mlp-sandbox-model-build", "Pipeline mlp-sandbox-batch-scoring"):  # fmt: skip
        assert needle in body, needle


# --- budget ---------------------------------------------------------------------------------------------


def test_monthly_budget_on_the_environment_tag_alerts_at_80_forecast_and_100_actual(t):
    ((budget_id, budget),) = resources_of(t, "AWS::Budgets::Budget").items()
    data = budget["Properties"]["Budget"]
    assert (data["BudgetType"], data["TimeUnit"]) == ("COST", "MONTHLY")
    assert re.fullmatch(r"mlp-sandbox-monthly-cost-[0-9a-f]{10}", data["BudgetName"])
    assert data["BudgetLimit"] == {"Amount": 1000, "Unit": "USD"}
    # CostFilters is deprecated in the Budgets API; the filter expression replaces it.
    assert "CostFilters" not in data
    assert data["FilterExpression"] == {"Tags": {"Key": "ml-platform:environment", "Values": ["sandbox"], "MatchOptions": ["EQUALS"]}}
    # The Budgets API takes FilterExpression together with Metrics, never with CostFilters or CostTypes.
    assert data["Metrics"] == ["UnblendedCost"] and "CostFilters" not in data and "CostTypes" not in data
    alerts = {
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"], n["Notification"]["ThresholdType"]): n["Subscribers"]
        for n in budget["Properties"]["NotificationsWithSubscribers"]
    }  # fmt: skip
    assert set(alerts) == {("FORECASTED", 80, "PERCENTAGE"), ("ACTUAL", 100, "PERCENTAGE")}
    assert all(s == [{"SubscriptionType": "SNS", "Address": {"Ref": topic_id(t)}}] for s in alerts.values())
    assert budget["DependsOn"] == [logical_id(t, "AWS::SNS::TopicPolicy", "AlarmTopicPolicy")]


def test_budget_limit_from_config_and_can_be_off(custom, minimal):
    (budget,) = resources_of(custom, "AWS::Budgets::Budget").values()
    assert budget["Properties"]["Budget"]["BudgetLimit"]["Amount"] == 250
    assert 90 in [n["Notification"]["Threshold"] for n in budget["Properties"]["NotificationsWithSubscribers"]]
    assert not resources_of(minimal, "AWS::Budgets::Budget")


def budget_name(template: dict) -> str:
    (budget,) = resources_of(template, "AWS::Budgets::Budget").values()
    return budget["Properties"]["Budget"]["BudgetName"]


def test_budget_name_changes_with_its_alerts_but_not_with_its_limit(t, custom, tmp_path):
    """Name and alerts are create-only: new alerts replace the budget, which needs a new name; a new
    limit is an in-place update and keeps it."""
    assert budget_name(custom) != budget_name(t)
    limit_only = monitoring_with(tmp_path, "{budget: {monthly_limit_usd: 250}}")
    assert budget_name(limit_only) == budget_name(t)


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("monitoring_yaml", "message"),
    [
        ("{alarms: {server_error_rate_percent: 0}}", "monitoring.alarms.server_error_rate_percent: got 0; allowed: a number > 0"),
        ("{alarms: {memory_utilization_percent: 120}}", "monitoring.alarms.memory_utilization_percent: got 120; allowed: a number <= 100"),
        ("{alarms: {drifted_features: 0}}", "monitoring.alarms.drifted_features: got 0; allowed: a number >= 1"),
        ("{alarms: {invocations_absent_minutes: 7}}", "monitoring.alarms.invocations_absent_minutes: 7 is not a multiple of 5"),
        ("{drift_check: {psi_threshold: -1}}", "monitoring.drift_check.psi_threshold: got -1; allowed: a number > 0"),
        ("{drift_check: {ks_threshold: 2}}", "monitoring.drift_check.ks_threshold: got 2; allowed: a number <= 1"),
        ("{drift_check: {schedule: 'cron(0 * * * *)'}}", "monitoring.drift_check.schedule: 'cron(0 * * * *)' is not an EventBridge Scheduler expression"),
        ("{drift_check: {schedule: 'cron(75 * * * ? *)'}}", "monitoring.drift_check.schedule: 'cron(75 * * * ? *)' is not a valid cron expression: minutes '75' is outside 0-59"),
        ("{drift_check: {schedule: 'cron(0 * * * MON *)'}}", "exactly one of day-of-month and day-of-week must be '?'"),
        ("{drift_check: {metric_namespace: AWS/SageMaker}}", "monitoring.drift_check.metric_namespace: 'AWS/SageMaker' is not a custom CloudWatch namespace"),
        ("{notification_emails: [oncall]}", "monitoring.notification_emails: 'oncall' is not an email address"),
        ("{budget: {monthly_limit_usd: 0}}", "monitoring.budget.monthly_limit_usd: got 0; allowed: a number > 0"),
        ("{retrain_on_drift: true, drift_check: {enabled: false}}", "monitoring.retrain_on_drift: is true but monitoring.drift_check.enabled is false"),
    ],
)  # fmt: skip
def test_bad_monitoring_settings_are_clear_errors_naming_the_key(tmp_path, monitoring_yaml, message):
    assert message in config_error(tmp_path, f"monitoring: {monitoring_yaml}\n")


# --- drift check ----------------------------------------------------------------------------------------


def drift_pipeline(template: dict) -> tuple[dict, dict]:
    body, values = pipeline_sub(template, "DriftCheck")
    return json.loads(body), values


def test_drift_check_runs_the_script_in_the_vpc_with_the_monitoring_role_and_kms(t):
    definition, values = drift_pipeline(t)
    (step,) = definition["Steps"]
    job = step["Arguments"]
    assert job["RoleArn"].endswith(":role/${JobRoleName}")
    assert "MonitoringJobRole" in json.dumps(values["JobRoleName"])
    network = job["NetworkConfig"]
    assert network["VpcConfig"]["SecurityGroupIds"] == ["${SecurityGroupId}"]
    assert network["VpcConfig"]["Subnets"] == ["${SubnetId0}", "${SubnetId1}"] and {"SubnetId0", "SubnetId1"} <= set(values)
    assert network["EnableInterContainerTrafficEncryption"] is True
    assert job["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${VolumeKmsKeyArn}"
    assert job["ProcessingOutputConfig"]["KmsKeyId"] == "${OutputKmsKeyArn}"
    assert "ModelsKey" in json.dumps(values["VolumeKmsKeyArn"]) and "DataKey" in json.dumps(values["OutputKmsKeyArn"])
    assert values["EndpointName"] == "mlp-sandbox-realtime" and values["ModelPackageArn"] == APPROVED_PACKAGE["arn"]
    assert "CaptureBucket" in json.dumps(values["CaptureBucket"]) and "ReportsBucket" in json.dumps(values["ReportsBucket"])
    arguments = job["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--metric-namespace") + 1] == "MlPlatform/Drift"
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert defaults["CaptureUrl"] == "s3://${CaptureBucket}/data-capture" and defaults["PsiThreshold"] == 0.2


def test_drift_check_is_scheduled_hourly_for_each_captured_endpoint(t):
    schedules = {
        s["Properties"]["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"][0]["Value"]: s["Properties"]
        for s in resources_of(t, "AWS::Scheduler::Schedule").values()
    }  # fmt: skip
    assert set(schedules) == {"mlp-sandbox-realtime", "mlp-sandbox-async"}  # the multi-model endpoint captures nothing
    for schedule in schedules.values():
        assert schedule["ScheduleExpression"] == "cron(5 * * * ? *)"
        assert schedule["Target"]["Arn"]["Fn::Join"][1][-1] == ":pipeline/mlp-sandbox-drift-check"
        assert "SchedulerRole" in json.dumps(schedule["Target"]["RoleArn"])
        assert schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"][0]["Name"] == "EndpointName"


def test_drift_alarms_watch_drifted_features_and_missing_checks(t):
    alarms = alarms_by_name(t)
    drifted = alarms["mlp-sandbox-realtime-drifted-features"]
    assert (drifted["Namespace"], drifted["MetricName"], drifted["Statistic"], drifted["Period"]) == ("MlPlatform/Drift", "DriftedFeatures", "Maximum", 3600)
    assert drifted["Dimensions"] == [{"Name": "EndpointName", "Value": "mlp-sandbox-realtime"}]
    assert (drifted["Threshold"], drifted["ComparisonOperator"], drifted["TreatMissingData"]) == (1, "GreaterThanOrEqualToThreshold", "notBreaching")
    no_data = alarms["mlp-sandbox-realtime-drift-no-data"]
    assert (no_data["MetricName"], no_data["Threshold"], no_data["EvaluationPeriods"], no_data["TreatMissingData"]) == ("NoCaptureData", 1, 2, "breaching")
    failed = alarms["mlp-sandbox-drift-check-failed"]
    assert failed["Dimensions"] == [{"Name": "PipelineName", "Value": "mlp-sandbox-drift-check"}]


def test_monitoring_role_reads_capture_and_baselines_writes_drift_reports_and_its_metrics_only(serving):
    statements = role_statements(serving.template_json("Foundation"), "MonitoringJobRole")

    def resources(action: str) -> list[str]:
        return sorted(json.dumps(r) for s in statements if action in as_list(s["Action"]) for r in as_list(s["Resource"]))

    reads, writes = resources("s3:GetObject"), resources("s3:PutObject")
    assert len(reads) == 2 and any("CaptureBucket" in r and "/data-capture/*" in r for r in reads)
    assert any("ModelBucket" in r and "/mlp-sandbox-model-build/*/baseline/*" in r for r in reads)
    assert len(writes) == 1 and "ReportsBucket" in writes[0] and "/drift/*" in writes[0]
    (metrics,) = [s for s in statements if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    # Its drift namespace and SageMaker's own (job metrics, Model Monitor's data-quality metrics).
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "MlPlatform/Drift"]}}
    assert not [s for s in statements if "sagemaker:UpdateModelPackage" in as_list(s["Action"])]
    assert resources("sagemaker:DescribeModelPackage")


def test_retraining_on_drift_starts_the_model_build_pipeline_when_switched_on(t, custom):
    assert not resources_of(t, "AWS::Events::Rule")  # off by default
    template = custom
    ((_, rule),) = resources_of(template, "AWS::Events::Rule").items()
    pattern = rule["Properties"]["EventPattern"]
    alarm_id = logical_id(template, "AWS::CloudWatch::Alarm", "AlarmsRealtimeDriftedFeatures")
    assert pattern == {
        "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
        "resources": [{"Fn::GetAtt": [alarm_id, "Arn"]}], "detail": {"state": {"value": ["ALARM"]}},
    }  # fmt: skip
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::Join"][1][-1] == ":pipeline/mlp-sandbox-model-build"
    assert "SchedulerRole" in json.dumps(target["RoleArn"])
    assert target["SageMakerPipelineParameters"] == {"PipelineParameterList": []}


def test_drift_check_can_be_switched_off(minimal):
    template = minimal
    assert not resources_of(template, "AWS::SageMaker::Pipeline") and not resources_of(template, "AWS::Scheduler::Schedule")
    assert not [n for n in alarms_by_name(template) if "drift" in n]


def test_drift_check_schedule_and_thresholds_from_config(custom):
    template = custom
    assert {s["Properties"]["ScheduleExpression"] for s in resources_of(template, "AWS::Scheduler::Schedule").values()} == {"rate(6 hours)"}
    definition, _ = drift_pipeline(template)
    assert {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}["PsiThreshold"] == 0.3
    assert alarms_by_name(template)["mlp-sandbox-realtime-drifted-features"]["Threshold"] == 3


# --- Model Monitor (switch) -----------------------------------------------------------------------------

BASELINED = ApprovedPackage(
    arn=PACKAGE.arn,
    version=PACKAGE.version,
    data_quality_statistics="s3://reports-bucket/mlp-sandbox-model-build/exec-1/data-quality-baseline/statistics.json",
    data_quality_constraints="s3://reports-bucket/mlp-sandbox-model-build/exec-1/data-quality-baseline/constraints.json",
)


@pytest.fixture(scope="module")
def model_monitor_stage(tmp_path_factory) -> PlatformStage:
    config_dir = tmp_path_factory.mktemp("model-monitor")
    (config_dir / "sandbox.yaml").write_text("monitoring: {model_monitor: {enabled: true}}\n")
    config = load_config("sandbox", config_dir=config_dir)
    return PlatformStage(platform_app(), "S", config=config, approved_package=BASELINED)


def test_model_monitor_is_off_by_default(serving):
    for stack_id in ("Serving", "Monitoring"):
        template = serving.template_json(stack_id)
        assert not resources_of(template, "AWS::SageMaker::MonitoringSchedule")
        assert not resources_of(template, "AWS::SageMaker::DataQualityJobDefinition")
    definition = json.loads(pipeline_sub(serving.template_json("ModelBuild"))[0])
    assert "DataQualityBaseline" not in [step["Name"] for step in definition["Steps"]]


def test_model_monitor_schedules_hourly_data_quality_on_the_endpoint_in_the_vpc_with_kms(model_monitor_stage):
    # In the Serving stack: SageMaker refuses to delete an endpoint that still has a schedule.
    template = template_of(model_monitor_stage.serving)
    ((job_id, job),) = resources_of(template, "AWS::SageMaker::DataQualityJobDefinition").items()
    props = job["Properties"]
    app = props["DataQualityAppSpecification"]
    assert app["Environment"] == {"publish_cloudwatch_metrics": "Enabled"}
    assert app["ImageUri"]["Fn::Join"][1][0]["Fn::FindInMap"][0] == "ModelMonitorImageRegistries"
    assert props["DataQualityBaselineConfig"] == {
        "StatisticsResource": {"S3Uri": BASELINED.data_quality_statistics},
        "ConstraintsResource": {"S3Uri": BASELINED.data_quality_constraints},
    }
    assert props["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlp-sandbox-realtime"
    output = props["DataQualityJobOutputConfig"]
    assert "DataKey" in json.dumps(output["KmsKeyId"])
    assert output["MonitoringOutputs"][0]["S3Output"]["S3Uri"]["Fn::Join"][1][-1] == "/model-monitor/mlp-sandbox-realtime"
    cluster = props["JobResources"]["ClusterConfig"]
    assert "ModelsKey" in json.dumps(cluster["VolumeKmsKeyId"]) and cluster["InstanceType"] == "ml.m5.xlarge"
    network = props["NetworkConfig"]
    assert network["EnableInterContainerTrafficEncryption"] is True and len(network["VpcConfig"]["Subnets"]) == 2
    assert "MonitoringJobRole" in json.dumps(props["RoleArn"])
    assert props["StoppingCondition"] == {"MaxRuntimeInSeconds": 3300}  # an hourly run must end within the hour
    ((_, schedule),) = resources_of(template, "AWS::SageMaker::MonitoringSchedule").items()
    config = schedule["Properties"]["MonitoringScheduleConfig"]
    assert config["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
    # CloudFormation names the job definition (every change, tags included, replaces it); the name is the ARN's last part.
    assert "JobDefinitionName" not in props
    assert config["MonitoringType"] == "DataQuality"
    assert config["MonitoringJobDefinitionName"] == {"Fn::Select": [1, {"Fn::Split": ["/", {"Fn::GetAtt": [job_id, "JobDefinitionArn"]}]}]}
    assert schedule["Properties"]["MonitoringScheduleName"] == "mlp-sandbox-realtime-data-quality"
    assert schedule["Properties"]["EndpointName"] == "mlp-sandbox-realtime"
    assert logical_id(template, "AWS::SageMaker::Endpoint", "RealtimeEndpoint") in schedule["DependsOn"]


def test_model_monitor_switch_adds_the_baseline_step_and_its_permissions(model_monitor_stage):
    model_build = template_of(model_monitor_stage.model_build)
    body, values = pipeline_sub(model_build)
    assert "DataQualityBaseline" in [step["Name"] for step in json.loads(body)["Steps"]]
    assert values["ModelMonitorImageUri"]["Fn::Join"][1][0]["Fn::FindInMap"][0] == "ModelMonitorImageRegistries"
    foundation = template_of(model_monitor_stage.foundation)
    monitoring = role_statements(foundation, "MonitoringJobRole")
    (namespaces,) = [s["Condition"]["StringLike"]["cloudwatch:namespace"] for s in monitoring if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert namespaces == ["/aws/sagemaker/*", "MlPlatform/Drift"]  # Model Monitor's: /aws/sagemaker/Endpoints/data-metrics
    for role in ("MonitoringJobRole", "JobRole"):
        pulls = [r for s in role_statements(foundation, role) if "ecr:BatchGetImage" in as_list(s["Action"]) for r in as_list(s["Resource"])]
        assert any(":repository/sagemaker-model-monitor-analyzer" in json.dumps(r) for r in pulls), role


def test_model_monitor_without_a_registered_baseline_still_schedules_and_warns(tmp_path):
    (tmp_path / "sandbox.yaml").write_text("monitoring: {model_monitor: {enabled: true}}\n")
    synth = synthesize(tmp_path / "out", config_dir=tmp_path, context=approved_context())
    (job,) = resources_of(synth.template_json("Serving"), "AWS::SageMaker::DataQualityJobDefinition").values()
    assert "DataQualityBaselineConfig" not in job["Properties"]
    # A warning: `cdk synth --strict` fails until the package has a baseline or the warning is acknowledged.
    assert synth.messages() == [
        (
            "aws:cdk:warning",
            "/MlPlatform-sandbox/Serving",
            "monitoring: the Model Monitor schedule of 'sandbox' has no baseline: package version 12 was registered "
            "without one (set monitoring.model_monitor.enabled, retrain, approve, then `make approved-model ENV=sandbox`) "
            f"[ack: {MODEL_MONITOR_WITHOUT_BASELINE}]",
        )
    ]


def test_model_monitor_with_its_baseline_has_no_warning(model_monitor):
    assert model_monitor.stage.serving.model_monitor_without_baseline is False
    assert [m for m in model_monitor.messages() if m[0] != "aws:cdk:info"] == []


def test_account_bound_environment_with_model_monitor_synthesizes_its_schedule(model_monitor):
    # This synth also runs cdk-nag and cfn-lint (tests/test_app.py) over the Model Monitor resources.
    template = model_monitor.template_json("Serving")
    (schedule,) = resources_of(template, "AWS::SageMaker::MonitoringSchedule").values()
    assert schedule["Properties"]["EndpointName"] == "mlp-dev-realtime"
    (job,) = resources_of(template, "AWS::SageMaker::DataQualityJobDefinition").values()
    assert job["Properties"]["DataQualityBaselineConfig"]["ConstraintsResource"]["S3Uri"].endswith("/constraints.json")
