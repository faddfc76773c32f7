"""Serving stack: the approved package on guarded, autoscaled real-time, multi-model and async endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import build_app, cdk_json_context, make_app
from config import ConfigError, load_config
from stacks.platform_stage import PlatformStage
from stacks.serving_stack import ApprovedPackage
from tests.conftest import (
    APPROVED_PACKAGE,
    as_list,
    config_error,
    logical_id,
    output_of,
    pipeline_sub,
    platform_app,
    properties,
    resources_of,
    role_statements,
    template_of,
)

PACKAGE = ApprovedPackage(arn=APPROVED_PACKAGE["arn"], version=APPROVED_PACKAGE["version"])


@pytest.fixture(scope="module")
def t(serving) -> dict:
    return serving.template_json("Serving")


@pytest.fixture(scope="module")
def foundation_json(serving) -> dict:
    return serving.template_json("Foundation")


def stage_with(tmp_path: Path, serving_yaml: str = "{}", package: ApprovedPackage = PACKAGE, name: str = "S") -> PlatformStage:
    """A sandbox stage with ``serving_yaml`` as its serving section (constructed, not synthesized)."""
    (tmp_path / "sandbox.yaml").write_text(f"serving: {serving_yaml}\n")
    config = load_config("sandbox", config_dir=tmp_path)
    return PlatformStage(platform_app(), name, config=config, approved_package=package)


# One customised configuration covers every non-default setting the tests below check (one build).
CUSTOM_SERVING = (
    "{realtime: {rollout: {mode: linear, linear_step_percent: 25, wait_seconds: 120}, initial_instance_count: 2,"
    " scaling: {enabled: false, min_capacity: 2}},"
    " multi_model: {rollout: {mode: canary, canary_percent: 20, wait_seconds: 600}, initial_instance_count: 2,"
    " scaling: {min_capacity: 2}},"
    " asynchronous: {scaling: {min_capacity: 0, max_capacity: 3}},"
    " batch: {instance_type: ml.c5.xlarge, instance_count: 3, max_payload_mb: 10, max_concurrent_transforms: 4,"
    " schedule: 'cron(0 2 * * ? *)'}}"
)


@pytest.fixture(scope="module")
def custom(tmp_path_factory) -> dict:
    return template_of(stage_with(tmp_path_factory.mktemp("custom"), CUSTOM_SERVING).serving)


# --- which model ----------------------------------------------------------------------------------------


def test_without_an_approved_package_there_is_no_serving_stack_and_one_annotation_says_why(sandbox):
    stage = sandbox.stage
    assert stage.serving is None and "Serving" not in [s.node.id for s in stage.stacks]
    # An info, not a warning: a new environment has no approved model yet and must pass `cdk synth --strict`.
    assert sandbox.messages() == [
        (
            "aws:cdk:info",
            "/MlPlatform-sandbox/Monitoring",
            "serving: no endpoints in 'sandbox': no approved model package recorded "
            "(context key 'ml-platform:sandbox:approved-model-package'); "
            "after approving one, run `make approved-model ENV=sandbox`",
        )
    ]


def test_serving_with_an_approved_package_synthesizes_without_annotations(serving):
    assert serving.messages() == []


def test_a_malformed_recorded_package_is_a_clear_error_naming_the_context_key(tmp_path):
    context = {**cdk_json_context(recorded=False), "ml-platform:sandbox:approved-model-package": {"arn": "model-12"}}
    with pytest.raises(ConfigError, match=r"context key 'ml-platform:sandbox:approved-model-package' is malformed"):
        build_app(make_app(outdir=str(tmp_path), context=context))


def test_a_package_from_another_region_is_a_clear_error(tmp_path):
    package = {**APPROVED_PACKAGE, "arn": APPROVED_PACKAGE["arn"].replace("eu-west-1", "us-east-1").replace("sandbox", "dev"), "group": "mlp-dev-models"}
    context = {**cdk_json_context(recorded=False), "env": "dev", "ml-platform:dev:approved-model-package": package}
    with pytest.raises(ConfigError, match=r"is in region us-east-1, environment 'dev' in eu-west-1"):
        build_app(make_app(outdir=str(tmp_path), context=context))


def test_the_model_serves_the_recorded_package_in_the_vpc_with_the_model_role_and_isolation(t):
    (model,) = [r["Properties"] for r in resources_of(t, "AWS::SageMaker::Model").values() if "ModelPackageName" in r["Properties"]["Containers"][0]]
    assert model["Containers"] == [{"ModelPackageName": APPROVED_PACKAGE["arn"]}]
    assert model["EnableNetworkIsolation"] is True
    assert output_of(model["ExecutionRoleArn"]).startswith("PublishOutputFnGetAttModelExecutionRole")
    assert [output_of(s) for s in model["VpcConfig"]["Subnets"]] == [
        o for o in (output_of(s) for s in model["VpcConfig"]["Subnets"]) if "WorkloadSubnet" in o
    ] and len(model["VpcConfig"]["Subnets"]) == 2
    assert "WorkloadSecurityGroup" in output_of(model["VpcConfig"]["SecurityGroupIds"][0])
    assert model["ModelName"].startswith("mlp-sandbox-v12-")


# --- real-time endpoint ---------------------------------------------------------------------------------


def test_realtime_config_captures_requests_and_responses_encrypted(t):
    config = properties(t, "AWS::SageMaker::EndpointConfig", "RealtimeEndpointConfig")
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert "CaptureBucket" in output_of(capture["DestinationS3Uri"]["Fn::Join"][1][1])
    assert capture["DestinationS3Uri"]["Fn::Join"][1][2] == "/data-capture"
    assert "DataKey" in output_of(capture["KmsKeyId"])
    assert capture["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}
    assert "ModelsKey" in output_of(config["KmsKeyId"])
    (variant,) = config["ProductionVariants"]
    assert variant == {
        "VariantName": "AllTraffic", "ModelName": properties(t, "AWS::SageMaker::Model", "ApprovedModel")["ModelName"],
        "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, "InitialVariantWeight": 1,
    }  # fmt: skip
    assert config["EndpointConfigName"].startswith("mlp-sandbox-realtime-config-")


def test_endpoint_has_a_stable_name_published_as_output_and_parameter(serving, t):
    endpoint = properties(t, "AWS::SageMaker::Endpoint", "RealtimeEndpoint")
    assert endpoint["EndpointName"] == "mlp-sandbox-realtime"
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [logical_id(t, "AWS::SageMaker::EndpointConfig", "RealtimeEndpointConfig"), "EndpointConfigName"]}
    parameters = {p["Properties"]["Name"]: p["Properties"]["Value"] for p in resources_of(t, "AWS::SSM::Parameter").values()}
    assert parameters == {
        "/mlp-sandbox/serving/realtime/endpoint-name": "mlp-sandbox-realtime",
        "/mlp-sandbox/serving/multi-model/endpoint-name": "mlp-sandbox-multi-model",
        "/mlp-sandbox/serving/async/endpoint-name": "mlp-sandbox-async",
        "/mlp-sandbox/serving/model-package-arn": APPROVED_PACKAGE["arn"],
    }
    assert t["Outputs"]["RealtimeEndpointName"]["Value"] == "mlp-sandbox-realtime"


def test_updates_are_blue_green_with_a_bake_period_alarm_rollback_and_retained_variant_properties(t):
    endpoint = properties(t, "AWS::SageMaker::Endpoint", "RealtimeEndpoint")
    assert endpoint["RetainAllVariantProperties"] is True
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    # One instance by default: SageMaker's canary and linear steps need at least two, so all at once, then bake.
    assert policy == {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
        "TerminationWaitInSeconds": 120,
        "MaximumExecutionTimeoutInSeconds": 3600,
    }
    alarms = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    alarm_ids = [a["AlarmName"]["Ref"] for a in alarms]
    by_metric = {t["Resources"][a]["Properties"]["MetricName"]: t["Resources"][a]["Properties"] for a in alarm_ids}
    errors, latency = by_metric["Invocation5XXErrors"], by_metric["ModelLatency"]
    for alarm in (errors, latency):
        assert alarm["Namespace"] == "AWS/SageMaker" and alarm["Period"] == 60
        assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "mlp-sandbox-realtime"}, {"Name": "VariantName", "Value": "AllTraffic"}]
        assert alarm["TreatMissingData"] == "notBreaching"
    assert (errors["Statistic"], errors["Threshold"], errors["ComparisonOperator"]) == ("Sum", 5, "GreaterThanOrEqualToThreshold")
    assert (latency["ExtendedStatistic"], latency["Threshold"], latency["EvaluationPeriods"]) == ("p99", 1_000_000, 2)  # microseconds
    assert errors["AlarmName"] == "mlp-sandbox-realtime-rollback-errors"
    assert latency["AlarmName"] == "mlp-sandbox-realtime-rollback-latency"


@pytest.mark.parametrize(
    ("endpoint_id", "expected"),
    [
        ("RealtimeEndpoint",
         {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}, "WaitIntervalInSeconds": 120}),
        ("MultiModelEndpoint", {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20}, "WaitIntervalInSeconds": 600}),
    ],
)  # fmt: skip
def test_rollout_mode_comes_from_config(custom, endpoint_id, expected):
    endpoint = properties(custom, "AWS::SageMaker::Endpoint", endpoint_id)
    assert endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == expected


def test_autoscaling_registers_after_the_endpoint_and_tracks_invocations_per_instance(t):
    target_id = logical_id(t, "AWS::ApplicationAutoScaling::ScalableTarget", "RealtimeEndpointScalableTarget")
    target = t["Resources"][target_id]
    assert logical_id(t, "AWS::SageMaker::Endpoint", "RealtimeEndpoint") in target["DependsOn"]
    props = target["Properties"]
    assert (props["MinCapacity"], props["MaxCapacity"]) == (1, 4)
    assert props["ResourceId"] == "endpoint/mlp-sandbox-realtime/variant/AllTraffic"
    assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    # The service-linked role: no extra role of ours to keep or delete.
    assert props["RoleARN"]["Fn::Join"][1][-1].endswith(
        ":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    )
    (policy,) = [p["Properties"] for p in resources_of(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values() if p["Properties"]["ScalingTargetId"] == {"Ref": target_id}]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "TargetValue": 70, "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
    }  # fmt: skip


def test_names_change_only_when_content_changes(t, tmp_path):
    def names(serving_yaml: str, package: ApprovedPackage = PACKAGE) -> tuple[str, str, str]:
        stage = stage_with(tmp_path, serving_yaml, package)
        endpoint = stage.serving.endpoints["realtime"]
        return stage.serving.model.model_name, endpoint.config_name, endpoint.endpoint_name

    # The names the app's own build deployed.
    config = properties(t, "AWS::SageMaker::EndpointConfig", "RealtimeEndpointConfig")
    (model,) = [r["Properties"]["ModelName"] for r in resources_of(t, "AWS::SageMaker::Model").values() if "ModelPackageName" in r["Properties"]["Containers"][0]]
    base = (model, config["EndpointConfigName"], properties(t, "AWS::SageMaker::Endpoint", "RealtimeEndpoint")["EndpointName"])
    assert names("{}") == base  # same content, same names
    # Config-only changes that do not touch the model or its endpoint configuration keep every name.
    assert names("{realtime: {scaling: {max_capacity: 9}, rollout: {wait_seconds: 120}}}") == base
    # A different instance type is a new endpoint configuration; the model and endpoint names stay.
    model, config, endpoint = names("{realtime: {instance_type: ml.c5.xlarge}}")
    assert (model, endpoint) == base[::2] and config != base[1]
    # A new package version is a new model, hence a new configuration; clients keep the endpoint name.
    newer = ApprovedPackage(arn=PACKAGE.arn.replace("/12", "/13"), version=13)
    model, config, endpoint = names("{}", newer)
    assert model.startswith("mlp-sandbox-v13-") and model != base[0] and config != base[1] and endpoint == base[2]


def test_studio_users_may_invoke_the_endpoints_and_nothing_else(t):
    for role in ("StudioUserRole", "StudioLeadRole"):
        (policy,) = [p["Properties"] for k, p in resources_of(t, "AWS::IAM::ManagedPolicy").items() if k.startswith(f"{role}Grants")]
        granted = {
            (action, arn["Fn::Join"][1][-1])
            for s in policy["PolicyDocument"]["Statement"] for action in as_list(s["Action"]) for arn in as_list(s["Resource"])
        }  # fmt: skip
        assert granted == {
            ("sagemaker:InvokeEndpoint", ":endpoint/mlp-sandbox-realtime"),
            ("sagemaker:InvokeEndpoint", ":endpoint/mlp-sandbox-multi-model"),
            ("sagemaker:InvokeEndpointAsync", ":endpoint/mlp-sandbox-async"),
        }


# --- multi-model endpoint -------------------------------------------------------------------------------


def test_multi_model_endpoint_loads_archives_from_the_models_bucket_prefix(t):
    model = properties(t, "AWS::SageMaker::Model", "MultiModel")
    (container,) = model["Containers"]
    assert container["Mode"] == "MultiModel"
    url = container["ModelDataUrl"]["Fn::Join"][1]
    assert url[0] == "s3://" and "ModelBucket" in output_of(url[1]) and url[2] == "/multi-model/"
    assert container["Image"]["Fn::Join"][1][-1] == "/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    # The container imports its handlers at start, before any archive is loaded: from their own tarball in S3.
    submit = container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]["Fn::Join"][1]
    assert submit[0] == "s3://" and submit[-1].endswith(".gz")
    assert output_of(model["ExecutionRoleArn"]).startswith("PublishOutputFnGetAttMultiModelRole")
    # ...so it needs the network (in the VPC, through the S3 gateway endpoint).
    assert model["EnableNetworkIsolation"] is False and len(model["VpcConfig"]["Subnets"]) == 2
    (policy,) = [p["Properties"] for k, p in resources_of(t, "AWS::IAM::ManagedPolicy").items() if k.startswith("MultiModelRoleGrants")]
    reads = [r for st in policy["PolicyDocument"]["Statement"] if st["Action"] == "s3:GetObject" for r in as_list(st["Resource"])]
    assert len(reads) == 1 and submit[-1] in json.dumps(reads[0])  # the handlers' tarball, nothing else
    config = properties(t, "AWS::SageMaker::EndpointConfig", "MultiModelEndpointConfig")
    assert config["ProductionVariants"][0]["ModelName"] == model["ModelName"]
    endpoint = properties(t, "AWS::SageMaker::Endpoint", "MultiModelEndpoint")
    assert endpoint["EndpointName"] == "mlp-sandbox-multi-model"
    assert endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    target = properties(t, "AWS::ApplicationAutoScaling::ScalableTarget", "MultiModelEndpointScalableTarget")
    assert target["ResourceId"] == "endpoint/mlp-sandbox-multi-model/variant/AllTraffic"


def test_multi_model_container_downloads_its_handlers_from_the_stacks_region(t):
    (container,) = properties(t, "AWS::SageMaker::Model", "MultiModel")["Containers"]
    # Hosting sets no AWS_REGION; without SAGEMAKER_REGION the download goes to the global S3 endpoint.
    assert container["Environment"]["SAGEMAKER_REGION"] == {"Ref": "AWS::Region"}


def test_multi_model_runs_in_its_own_group_that_reaches_only_s3_and_the_service_endpoints(serving, t):
    model = properties(t, "AWS::SageMaker::Model", "MultiModel")
    group_id = logical_id(t, "AWS::EC2::SecurityGroup", "MultiModelSecurityGroup")
    assert model["VpcConfig"]["SecurityGroupIds"] == [{"Fn::GetAtt": [group_id, "GroupId"]}]
    group = t["Resources"][group_id]["Properties"]
    assert "SecurityGroupIngress" not in group and "SecurityGroupEgress" not in group
    assert not [r for r in resources_of(t, "AWS::EC2::SecurityGroupIngress").values()
                if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}], "nothing may connect to it"  # fmt: skip
    egress = [r["Properties"] for r in resources_of(t, "AWS::EC2::SecurityGroupEgress").values()
              if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}]  # fmt: skip
    assert {(e["IpProtocol"], e["FromPort"], e["ToPort"]) for e in egress} == {("tcp", 443, 443)}
    lookup_id = logical_id(t, "Custom::AWS", "MultiModelSecurityGroupS3PrefixList")
    assert len(egress) == 2 and not any("CidrIp" in e or "CidrIpv6" in e for e in egress)
    (to_s3,) = [e for e in egress if "DestinationPrefixListId" in e]
    assert to_s3["DestinationPrefixListId"] == {"Fn::GetAtt": [lookup_id, "PrefixLists.0.PrefixListId"]}
    (to_endpoints,) = [e for e in egress if "DestinationSecurityGroupId" in e]
    assert "EndpointSecurityGroup" in output_of(to_endpoints["DestinationSecurityGroupId"])
    # The interface endpoints admit it (the rule lives here: the network stack must not depend on serving).
    (admit,) = [r["Properties"] for r in resources_of(t, "AWS::EC2::SecurityGroupIngress").values()
                if r["Properties"].get("SourceSecurityGroupId") == {"Fn::GetAtt": [group_id, "GroupId"]}]  # fmt: skip
    assert admit["GroupId"] == to_endpoints["DestinationSecurityGroupId"] and (admit["FromPort"], admit["ToPort"]) == (443, 443)
    # The rules exist before the model (and so its endpoint's containers) does.
    rules = [k for k, r in t["Resources"].items()
             if r["Type"] in ("AWS::EC2::SecurityGroupEgress", "AWS::EC2::SecurityGroupIngress") and k.startswith("MultiModelSecurityGroup")]  # fmt: skip
    model_id = logical_id(t, "AWS::SageMaker::Model", "MultiModel")
    assert len(rules) == 3 and set(rules) <= set(t["Resources"][model_id]["DependsOn"])
    # The prefix list id is looked up at deploy time by name, for the stack's region.
    parts = t["Resources"][lookup_id]["Properties"]["Create"]["Fn::Join"][1]
    call = json.loads("".join("REGION" if part == {"Ref": "AWS::Region"} else part for part in parts))
    assert (call["service"], call["action"]) == ("EC2", "describeManagedPrefixLists")
    assert call["parameters"] == {"Filters": [{"Name": "prefix-list-name", "Values": ["com.amazonaws.REGION.s3"]}]}
    # The workload group (all TCP between Studio apps and jobs) stays with the isolated model only.
    approved = properties(t, "AWS::SageMaker::Model", "ApprovedModel")
    assert "WorkloadSecurityGroup" in output_of(approved["VpcConfig"]["SecurityGroupIds"][0])


def test_multi_model_role_reads_its_prefix_of_the_models_bucket_only(foundation_json):
    statements = role_statements(foundation_json, "MultiModelRole")
    reads = [s for s in statements if "s3:GetObject" in as_list(s["Action"])]
    assert len(reads) == 1 and reads[0]["Resource"]["Fn::Join"][1][-1] == "/multi-model/*"
    assert "ModelBucket" in reads[0]["Resource"]["Fn::Join"][1][0]["Fn::GetAtt"][0]
    (listing,) = [s for s in statements if "s3:ListBucket" in as_list(s["Action"])]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["multi-model/*"]}}
    assert not [s for s in statements if {"s3:PutObject", "s3:DeleteObject"} & set(as_list(s["Action"]))]


def test_model_role_reads_only_pipeline_model_artifacts(foundation_json):
    statements = role_statements(foundation_json, "ModelExecutionRole")
    model_bucket_reads = [
        r for s in statements if "s3:GetObject" in as_list(s["Action"])
        for r in as_list(s["Resource"]) if "ModelBucket" in json.dumps(r)
    ]  # fmt: skip
    assert [r["Fn::Join"][1][-1] for r in model_bucket_reads] == ["/mlp-sandbox-model-build/*/model/*"]


def test_serving_roles_may_pull_only_the_framework_image(foundation_json):
    for role in ("ModelExecutionRole", "MultiModelRole", "JobRole"):
        (pull,) = [s for s in role_statements(foundation_json, role) if "ecr:BatchGetImage" in as_list(s["Action"])]
        assert pull["Resource"]["Fn::Join"][1][-1] == ":repository/sagemaker-scikit-learn"
        (token,) = [s for s in role_statements(foundation_json, role) if "ecr:GetAuthorizationToken" in as_list(s["Action"])]
        # The token is account-wide ("*"); no image action rides along on "*".
        assert token["Resource"] == "*" and [a for a in as_list(token["Action"]) if a.startswith("ecr:")] == ["ecr:GetAuthorizationToken"]


# --- asynchronous endpoint ------------------------------------------------------------------------------


def test_async_results_go_to_s3_encrypted_and_notices_to_an_encrypted_topic(t):
    config = properties(t, "AWS::SageMaker::EndpointConfig", "AsyncEndpointConfig")
    async_config = config["AsyncInferenceConfig"]
    assert async_config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 4}
    output = async_config["OutputConfig"]
    assert output["S3OutputPath"]["Fn::Join"][1][2] == "/async-inference/output/mlp-sandbox-async"
    assert output["S3FailurePath"]["Fn::Join"][1][2] == "/async-inference/failures/mlp-sandbox-async"
    assert "DataBucket" in output_of(output["S3OutputPath"]["Fn::Join"][1][1])
    assert "DataKey" in output_of(output["KmsKeyId"])
    topic_id = logical_id(t, "AWS::SNS::Topic", "AsyncNotifications")
    assert output["NotificationConfig"] == {"SuccessTopic": {"Ref": topic_id}, "ErrorTopic": {"Ref": topic_id}}
    topic = t["Resources"][topic_id]["Properties"]
    assert topic["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("AsyncNotificationsKey")
    assert config["DataCaptureConfig"]["EnableCapture"] is True


def test_model_role_may_publish_async_notices_and_use_the_topic_key(t):
    topic_id = logical_id(t, "AWS::SNS::Topic", "AsyncNotifications")
    (policy,) = [p["Properties"] for k, p in resources_of(t, "AWS::IAM::ManagedPolicy").items() if k.startswith("ModelRoleGrants")]
    assert "ModelExecutionRole" in output_of(policy["Roles"][0])
    statements = policy["PolicyDocument"]["Statement"]
    assert {"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": topic_id}} in statements
    key = t["Resources"][logical_id(t, "AWS::KMS::Key", "AsyncNotificationsKey")]["Properties"]["KeyPolicy"]["Statement"]
    users = [s for s in key if "kms:GenerateDataKey" in as_list(s["Action"])]
    assert any("ModelExecutionRole" in json.dumps(s["Principal"]) for s in users)


def test_async_endpoint_scales_on_backlog_per_instance(t):
    target_id = logical_id(t, "AWS::ApplicationAutoScaling::ScalableTarget", "AsyncEndpointScalableTarget")
    assert logical_id(t, "AWS::SageMaker::Endpoint", "AsyncEndpoint") in t["Resources"][target_id]["DependsOn"]
    (policy,) = [p["Properties"] for p in resources_of(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values() if p["Properties"]["ScalingTargetId"] == {"Ref": target_id}]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["TargetValue"] == 5 and (config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (300, 60)
    metric = config["CustomizedMetricSpecification"]
    assert (metric["MetricName"], metric["Namespace"], metric["Statistic"]) == ("ApproximateBacklogSizePerInstance", "AWS/SageMaker", "Average")
    assert metric["Dimensions"] == [{"Name": "EndpointName", "Value": "mlp-sandbox-async"}]
    rollback = properties(t, "AWS::CloudWatch::Alarm", "AsyncEndpointErrorsAlarm")
    assert rollback["MetricName"] == "InvocationFailures"  # async requests have no HTTP status


def test_async_endpoint_can_scale_to_zero_and_wakes_on_backlog(custom):
    template = custom
    target_id = logical_id(template, "AWS::ApplicationAutoScaling::ScalableTarget", "AsyncEndpointScalableTarget")
    assert template["Resources"][target_id]["Properties"]["MinCapacity"] == 0
    steps = [p for p in resources_of(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values() if p["Properties"]["PolicyType"] == "StepScaling"]
    ((step_id, step),) = [(k, v) for k, v in resources_of(template, "AWS::ApplicationAutoScaling::ScalingPolicy").items() if v in steps]
    assert step["Properties"]["StepScalingPolicyConfiguration"]["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    alarm = properties(template, "AWS::CloudWatch::Alarm", "AsyncEndpointBacklogWithoutCapacityAlarm")
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("HasBacklogWithoutCapacity", 1, "GreaterThanOrEqualToThreshold")
    assert alarm["AlarmActions"] == [{"Ref": step_id}]


def test_endpoints_can_be_switched_off_one_by_one(tmp_path):
    stage = stage_with(tmp_path, "{multi_model: {enabled: false}, asynchronous: {enabled: false}}")
    assert list(stage.serving.endpoints) == ["realtime"]
    stage = stage_with(tmp_path, "{enabled: false}", name="T")
    assert stage.serving is None and stage.serving_skipped == "serving.enabled is false"


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serving_yaml", "message"),
    [
        ("{realtime: {scaling: {min_capacity: 5, max_capacity: 2}}}",
         "serving.realtime.scaling.min_capacity: 5 exceeds max_capacity=2; allowed: min_capacity <= max_capacity"),
        ("{realtime: {scaling: {min_capacity: 0}}}",
         "serving.realtime.scaling.min_capacity: 0 instances; allowed: at least 1 (this endpoint cannot scale to zero)"),
        ("{multi_model: {scaling: {min_capacity: 0}}}", "serving.multi_model.scaling.min_capacity: 0 instances"),
        ("{realtime: {initial_instance_count: 0}}", "serving.realtime.initial_instance_count: got 0; allowed: a number >= 1"),
        ("{realtime: {initial_instance_count: 6}}", "serving.realtime.initial_instance_count: 6 is outside scaling.min_capacity..max_capacity (1..4)"),
        ("{realtime: {rollout: {mode: blue_green}}}", "serving.realtime.rollout.mode: got 'blue_green'; allowed: 'canary', 'linear' or 'all_at_once'"),
        ("{realtime: {data_capture_percentage: 101}}", "serving.realtime.data_capture_percentage: got 101; allowed: a number <= 100"),
        ("{asynchronous: {data_capture_percentage: -1}}", "serving.asynchronous.data_capture_percentage: got -1; allowed: a number >= 0"),
        ("{realtime: {endpoint_name: my_endpoint}}", "serving.realtime.endpoint_name: 'my_endpoint' is not a valid endpoint name"),
        ("{realtime: {endpoint_name: shared}, asynchronous: {endpoint_name: shared}}", "serving.asynchronous.endpoint_name: 'shared' is also the name of serving.realtime"),
        ("{multi_model: {model_data_prefix: /models}}", "serving.multi_model.model_data_prefix: '/models' is not an S3 key prefix"),
        ("{batch: {instance_count: 0}}", "serving.batch.instance_count: got 0; allowed: a number >= 1"),
        ("{batch: {schedule: 'every night'}}", "serving.batch.schedule: 'every night' is not an EventBridge Scheduler expression"),
    ],
)  # fmt: skip
def test_bad_serving_settings_are_clear_errors_naming_the_key(tmp_path, serving_yaml, message):
    assert message in config_error(tmp_path, f"serving: {serving_yaml}\n")


# --- batch scoring --------------------------------------------------------------------------------------


def batch_pipeline(template: dict) -> tuple[dict, dict]:
    """The batch-scoring pipeline's definition (parsed) and its Fn::Sub values."""
    body, values = pipeline_sub(template, "BatchScoring")
    return json.loads(body), values


def test_batch_scoring_transforms_with_the_approved_model_in_multi_record_csv_joined_to_input(t):
    from tests.definition_checks import api_problems

    definition, values = batch_pipeline(t)
    assert properties(t, "AWS::SageMaker::Pipeline", "BatchScoring")["PipelineName"] == "mlp-sandbox-batch-scoring"
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults["ModelName"] == "${ModelName}" and values["ModelName"] == properties(t, "AWS::SageMaker::Model", "ApprovedModel")["ModelName"]
    assert defaults["InputDataUrl"] == "s3://${DataBucket}/batch-scoring/input/"
    assert defaults["OutputDataUrl"] == "s3://${DataBucket}/batch-scoring/output/"
    assert (defaults["InstanceType"], defaults["InstanceCount"]) == ("ml.m5.large", 1)
    assert "DataBucket" in output_of(values["DataBucket"])
    assert "ModelsKey" in output_of(values["VolumeKmsKeyArn"]) and "DataKey" in output_of(values["OutputKmsKeyArn"])
    (step,) = definition["Steps"]
    arguments = step["Arguments"]
    assert arguments["BatchStrategy"] == "MultiRecord" and arguments["MaxPayloadInMB"] == 6
    assert arguments["TransformInput"]["SplitType"] == "Line" and arguments["TransformInput"]["ContentType"] == "text/csv"
    assert arguments["TransformOutput"]["AssembleWith"] == "Line" and arguments["TransformOutput"]["Accept"] == "text/csv"
    assert arguments["DataProcessing"] == {"JoinSource": "Input"}
    # The deployed arguments are a valid CreateTransformJob request (the name is set per execution).
    assert api_problems("CreateTransformJob", arguments, ignore=["TransformJobName"]) == []
    pipeline = t["Resources"][logical_id(t, "AWS::SageMaker::Pipeline", "BatchScoring")]
    assert logical_id(t, "AWS::SageMaker::Model", "ApprovedModel") in pipeline["DependsOn"]
    assert "PipelineExecutionRole" in json.dumps(pipeline["Properties"]["RoleArn"])
    assert not resources_of(t, "AWS::Scheduler::Schedule")  # no schedule unless configured


def test_batch_settings_and_schedule_come_from_config(custom):
    template = custom
    definition, _ = batch_pipeline(template)
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert (defaults["InstanceType"], defaults["InstanceCount"]) == ("ml.c5.xlarge", 3)
    arguments = definition["Steps"][0]["Arguments"]
    assert (arguments["MaxPayloadInMB"], arguments["MaxConcurrentTransforms"]) == (10, 4)
    (schedule,) = [s["Properties"] for s in resources_of(template, "AWS::Scheduler::Schedule").values()]
    assert schedule["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert schedule["Target"]["Arn"]["Fn::Join"][1][-1] == ":pipeline/mlp-sandbox-batch-scoring"
    assert "SchedulerRole" in json.dumps(schedule["Target"]["RoleArn"])


def test_batch_payload_times_concurrency_over_the_limit_is_a_clear_error(tmp_path):
    (tmp_path / "sandbox.yaml").write_text("serving: {batch: {max_payload_mb: 20, max_concurrent_transforms: 8}}\n")
    with pytest.raises(ConfigError, match=r"serving\.batch\.max_concurrent_transforms: 8 x max_payload_mb=20 exceeds 100 MB"):
        load_config("sandbox", config_dir=tmp_path)


def test_autoscaling_can_be_switched_off_for_an_instance_type_change(custom):
    # Application Auto Scaling rejects an instance-type change of a registered variant.
    targets = [t["Properties"]["ResourceId"] for t in resources_of(custom, "AWS::ApplicationAutoScaling::ScalableTarget").values()]
    assert sorted(targets) == ["endpoint/mlp-sandbox-async/variant/AllTraffic", "endpoint/mlp-sandbox-multi-model/variant/AllTraffic"]


@pytest.mark.parametrize(
    ("serving_yaml", "message"),
    [
        ("{realtime: {rollout: {mode: canary}}}",
         "serving.realtime.rollout.mode: 'canary' needs at least 2 instances at all times (scaling.min_capacity=1, initial_instance_count=1)"),
        ("{multi_model: {rollout: {mode: linear}, initial_instance_count: 2}}", "serving.multi_model.rollout.mode: 'linear' needs at least 2 instances"),
        ("{realtime: {rollout: {linear_step_percent: 5}}}", "serving.realtime.rollout.linear_step_percent: got 5; allowed: a number >= 10"),
        ("{realtime: {rollout: {wait_seconds: 3600, termination_wait_seconds: 600}}}",
         "serving.realtime.rollout.max_execution_seconds: 3600 s is not longer than the update's waits (1 x wait_seconds=3600 + termination_wait_seconds=600 = 4200 s)"),
        ("{realtime: {instance_type: ml.m5d.large}}", "serving.realtime.instance_type: 'ml.m5d.large' has local NVMe instance storage"),
        ("{batch: {instance_type: ml.g4dn.xlarge}}", "serving.batch.instance_type: 'ml.g4dn.xlarge' has local NVMe instance storage"),
    ],
)  # fmt: skip
def test_rollouts_and_instance_types_sagemaker_would_reject_are_clear_errors(tmp_path, serving_yaml, message):
    assert message in config_error(tmp_path, f"serving: {serving_yaml}\n")


@pytest.mark.parametrize("switch", ["retrain_on_drift: true", "model_monitor: {enabled: true}"])
def test_drift_features_need_a_capturing_realtime_endpoint(tmp_path, switch):
    message = config_error(tmp_path, f"serving: {{realtime: {{data_capture_percentage: 0}}}}\nmonitoring: {{{switch}}}\n")
    assert "is true but the real-time endpoint captures no traffic" in message


# --- a package registered in another account ------------------------------------------------------------

PRODUCER = "111111111111"  # dev registers, prod (222222222222) serves: dev.yaml shares its registry with prod
PRODUCER_ARN = f"arn:aws:sagemaker:eu-west-1:{PRODUCER}:model-package/mlp-dev-models/3"
PRODUCER_KEY = f"arn:aws:kms:eu-west-1:{PRODUCER}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
RUN = "mlp-dev-foundation-modelbucket/mlp-dev-model-build/exec-1"
FOREIGN_PACKAGE = {
    "arn": PRODUCER_ARN, "version": 3, "group": "mlp-dev-models", "creation_time": "2026-11-20T09:30:00Z",
    "model_data_url": f"s3://{RUN}/model/job/output/model.tar.gz",
    "model_data_key_arn": PRODUCER_KEY,
    "drift_baseline_url": f"s3://{RUN}/baseline/baseline.json",
}  # fmt: skip


@pytest.fixture(scope="module")
def prod_serving(tmp_path_factory):
    from tests.conftest import approved_context, synthesize

    return synthesize(tmp_path_factory.mktemp("cdk.out.prod-serving"), "prod", context=approved_context("prod", FOREIGN_PACKAGE))


def _serving_role_statements(template_json: dict, role_import: str) -> list[dict]:
    """Statements the serving stack adds to an imported foundation role (its managed policy of grants)."""
    return [st for p in resources_of(template_json, "AWS::IAM::ManagedPolicy").values() if p["Properties"]["Description"].endswith(f" to {role_import}")
            for st in p["Properties"]["PolicyDocument"]["Statement"]]  # fmt: skip


def test_a_package_of_another_account_is_served_with_reads_on_the_producers_side(prod_serving):
    t = prod_serving.template_json("Serving")
    describe = {"Action": "sagemaker:DescribeModelPackage", "Effect": "Allow", "Resource": PRODUCER_ARN}
    decrypt = {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": PRODUCER_KEY,
               "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}  # fmt: skip

    def read(url: str) -> dict:
        return {"Action": "s3:GetObject", "Effect": "Allow", "Resource": f"arn:aws:s3:::{url[len('s3://'):]}"}

    model = _serving_role_statements(t, "ModelRole")
    for statement in (describe, decrypt, read(FOREIGN_PACKAGE["model_data_url"])):
        assert statement in model, statement
    monitoring = _serving_role_statements(t, "MonitoringJobRole")
    for statement in (describe, decrypt, read(FOREIGN_PACKAGE["drift_baseline_url"])):
        assert statement in monitoring, statement
    # Exactly those objects of the producer's bucket: nothing else of it, no listing.
    foreign = [st for st in model + monitoring if "mlp-dev-foundation-modelbucket" in json.dumps(st)]
    assert len(foreign) == 2


def test_a_package_of_the_environments_own_account_gets_no_cross_account_grants(serving):
    t = serving.template_json("Serving")
    assert _serving_role_statements(t, "ModelRole"), "the helper finds the serving stack's policies"
    assert "kms:ViaService" not in json.dumps(_serving_role_statements(t, "ModelRole"))
    assert not _serving_role_statements(t, "MonitoringJobRole")


@pytest.mark.parametrize(
    ("drop", "model_monitor", "message"),
    [(("model_data_url", "model_data_key_arn"), False, "the record lacks model_data_url, model_data_key_arn"),
     (("model_data_key_arn",), False, "the record lacks model_data_key_arn (where its archive is"),
     ((), True, "Model Monitor's baseline lives in that account's reports bucket")],
)  # fmt: skip
def test_a_package_of_another_account_without_what_it_needs_is_a_clear_error(tmp_path, drop, model_monitor, message):
    import yaml

    from config.loader import DEFAULT_CONFIG_DIR
    from tests.conftest import approved_context

    prod = yaml.safe_load((DEFAULT_CONFIG_DIR / "prod.yaml").read_text(encoding="utf-8"))
    prod["monitoring"]["model_monitor"] = {"enabled": model_monitor}
    (tmp_path / "prod.yaml").write_text(yaml.safe_dump(prod), encoding="utf-8")
    package = {k: v for k, v in FOREIGN_PACKAGE.items() if k not in drop}
    app = make_app(outdir=str(tmp_path / "out"), context={**cdk_json_context(recorded=False), "env": "prod", **approved_context("prod", package)})
    with pytest.raises(ConfigError, match="context key 'ml-platform:prod:approved-model-package'") as caught:
        build_app(app, config_dir=tmp_path)
    assert message in str(caught.value) and f"belongs to account {PRODUCER}" in str(caught.value)


def test_endpoints_start_only_after_the_model_roles_grants_are_attached(t):
    """Containers read their code and write their output as soon as their endpoint is created."""
    grants = {logical_id(t, "AWS::IAM::ManagedPolicy", "ModelRoleGrants"), logical_id(t, "AWS::IAM::ManagedPolicy", "MultiModelRoleGrants")}
    endpoints = resources_of(t, "AWS::SageMaker::Endpoint")
    assert len(endpoints) == 3
    for name, endpoint in endpoints.items():
        assert grants <= set(endpoint.get("DependsOn", [])), name
