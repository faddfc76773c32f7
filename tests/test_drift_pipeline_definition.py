"""The drift-check pipeline definition: the job's API shape, network and keys, script arguments, determinism, offline build."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config.schema import DriftCheckConfig
from pipeline_code.definitions.drift_check import PLACEHOLDERS, build_drift_definition, cached_drift_definition
from stacks.foundation_stack import CAPTURE_PREFIX, DRIFT_REPORTS_PREFIX
from tests.definition_checks import api_problems, assert_matches_snapshot, assert_no_network_attempt, input_shape

SNAPSHOT = Path(__file__).parent / "snapshots" / "drift-pipeline-definition.json"
PIPELINE = "mlp-sandbox-drift-check"
# Names SageMaker Pipelines generates per execution (the SDK drops them from the definition).
GENERATED_NAMES = {"ProcessingJobName"}
# Every placeholder the stack's Fn::Sub must fill (AWS:: pseudo parameters resolve by themselves).
STACK_PLACEHOLDERS = {
    "JobRoleName", "SklearnImageUri", "CodeBucket", "DriftCheckCodeKey", "SubnetId0", "SubnetId1", "SecurityGroupId",
    "VolumeKmsKeyArn", "OutputKmsKeyArn", "ReportsBucket", "CaptureBucket", "EndpointName", "ModelPackageArn",
}  # fmt: skip
PSEUDO_PARAMETERS = {"AWS::Partition", "AWS::AccountId", "AWS::Region"}


def build(*, subnet_count=2, capture_prefix=CAPTURE_PREFIX, reports_prefix=DRIFT_REPORTS_PREFIX, max_runtime_seconds=3600,
          **settings) -> str:
    """As the monitoring stack builds it; ``settings``: the environment's ``monitoring.drift_check`` keys."""
    return build_drift_definition(
        pipeline_name=PIPELINE, subnet_count=subnet_count, settings=DriftCheckConfig(**settings),
        capture_prefix=capture_prefix, reports_prefix=reports_prefix, max_runtime_seconds=max_runtime_seconds,
    )  # fmt: skip


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads(build())


def step(definition: dict) -> dict:
    (only,) = definition["Steps"]
    assert (only["Name"], only["Type"]) == ("CheckDrift", "Processing")
    return only


def arguments_of(definition: dict) -> dict:
    return step(definition)["Arguments"]


def script_arguments(definition: dict) -> dict:
    """ContainerArguments as {flag: value}."""
    values = arguments_of(definition)["AppSpecification"]["ContainerArguments"]
    assert len(values) % 2 == 0 and all(isinstance(flag, str) and flag.startswith("--") for flag in values[::2])
    return dict(zip(values[::2], values[1::2]))


def test_parameters_and_their_defaults(definition):
    parameters = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert parameters == {
        "EndpointName": ("String", "${EndpointName}"),
        "ModelPackageArn": ("String", "${ModelPackageArn}"),
        "CaptureUrl": ("String", "s3://${CaptureBucket}/data-capture"),
        "WindowHours": ("Integer", 1),
        "PsiThreshold": ("Float", 0.2),
        "KsThreshold": ("Float", 0.1),
        "InstanceType": ("String", "ml.m5.large"),
    }


def test_capture_url_default_is_the_endpoints_capture_destination(serving):
    """The drift check reads, by default, exactly where the captured endpoints write (same bucket, same prefix)."""
    from tests.conftest import output_of, pipeline_sub, resources_of

    configs = resources_of(serving.template_json("Serving"), "AWS::SageMaker::EndpointConfig").values()
    destinations = [c["Properties"]["DataCaptureConfig"]["DestinationS3Uri"]["Fn::Join"][1] for c in configs if "DataCaptureConfig" in c["Properties"]]
    body, values = pipeline_sub(serving.template_json("Monitoring"), "DriftCheck")
    default = {p["Name"]: p.get("DefaultValue") for p in json.loads(body)["Parameters"]}["CaptureUrl"]
    assert len(destinations) == 2  # the real-time and the asynchronous endpoint
    for scheme, bucket, prefix in destinations:
        assert f"{scheme}${{CaptureBucket}}{prefix}" == default
        assert output_of(bucket) == output_of(values["CaptureBucket"])
    assert {p["Name"]: p["DefaultValue"] for p in json.loads(build(capture_prefix="capture/x/"))["Parameters"]}[
        "CaptureUrl"
    ] == "s3://${CaptureBucket}/capture/x"


def test_processing_step_matches_the_sagemaker_api(definition):
    arguments = arguments_of(definition)
    assert api_problems("CreateProcessingJob", arguments, ignore=GENERATED_NAMES) == []
    # botocore does not check enums or patterns: the default instance type must be a processing one.
    instance_types = input_shape("CreateProcessingJob").members["ProcessingResources"].members["ClusterConfig"].members["InstanceType"].enum
    assert "ml.m5.large" in instance_types and "ml.t3.medium" in instance_types
    for argument in arguments["AppSpecification"]["ContainerArguments"]:
        assert len(json.dumps(argument)) <= 256  # SageMaker's limit per container argument


def test_job_runs_in_the_vpc_with_kms_and_encrypted_traffic(definition):
    arguments = arguments_of(definition)
    assert arguments["NetworkConfig"] == {
        "VpcConfig": {"Subnets": ["${SubnetId0}", "${SubnetId1}"], "SecurityGroupIds": ["${SecurityGroupId}"]},
        "EnableInterContainerTrafficEncryption": True,
        "EnableNetworkIsolation": False,  # the script calls S3, SageMaker and CloudWatch
    }
    assert arguments["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 1,
        "InstanceType": {"Get": "Parameters.InstanceType"},
        "VolumeKmsKeyId": "${VolumeKmsKeyArn}",
        "VolumeSizeInGB": 30,
    }
    assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == "${OutputKmsKeyArn}"
    assert arguments["RoleArn"] == "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${JobRoleName}"
    assert arguments["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert arguments["Environment"] == {"AWS_DEFAULT_REGION": "${AWS::Region}"}


def test_job_runs_the_package_from_its_code_tarball_with_the_pipeline_parameters(definition):
    arguments = arguments_of(definition)
    app = arguments["AppSpecification"]
    assert app["ImageUri"] == "${SklearnImageUri}"
    # sh -c '<unpack, run the package>' <the downloaded tarball> <arguments...>
    assert app["ContainerEntrypoint"] == [
        "/bin/sh", "-c", 'set -e; cd "$(mktemp -d)"; tar -xzf "$0"; exec python3 -m drift_check "$@"',
        "/opt/ml/processing/input/code/${DriftCheckCodeKey}",
    ]  # fmt: skip
    (code,) = arguments["ProcessingInputs"]  # the code only: the check reads capture and baseline itself
    assert code["InputName"] == "code" and code["S3Input"]["S3Uri"] == "s3://${CodeBucket}/${DriftCheckCodeKey}"

    def as_text(name: str) -> dict:
        return {"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{name}"}]}}

    assert script_arguments(definition) == {
        "--capture-s3-uri": {"Get": "Parameters.CaptureUrl"},
        "--endpoint-name": {"Get": "Parameters.EndpointName"},
        "--model-package-arn": {"Get": "Parameters.ModelPackageArn"},
        "--window-hours": as_text("WindowHours"),
        "--psi-threshold": as_text("PsiThreshold"),
        "--ks-threshold": as_text("KsThreshold"),
        "--metric-namespace": "MlPlatform/Drift",
        "--output-dir": "/opt/ml/processing/report",
    }


def test_script_accepts_the_arguments(tmp_path):
    """The step's arguments, with the parameters' defaults filled in, parse as the script expects."""
    from datetime import datetime, timezone

    from pipeline_code.steps import drift_check

    definition = json.loads(build())
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    defaults.update(EndpointName="churn-endpoint", ModelPackageArn="arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/3",
                    CaptureUrl="s3://capture-bucket/data-capture")  # fmt: skip

    def resolve(value):
        if isinstance(value, str):
            return value
        if "Get" in value:
            return str(defaults[value["Get"].split(".", 1)[1]])
        return value["Std:Join"]["On"].join(resolve(v) for v in value["Std:Join"]["Values"])

    argv = [resolve(v) for v in arguments_of(definition)["AppSpecification"]["ContainerArguments"]]
    now = datetime(2026, 11, 27, 10, 40, tzinfo=timezone.utc)
    args = drift_check.parse_args(argv, now)
    assert (args.capture_s3_uri, args.endpoint_name, args.model_package_arn) == (
        "s3://capture-bucket/data-capture", "churn-endpoint", "arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/3"
    )  # fmt: skip
    assert (args.window_start, args.window_end) == (datetime(2026, 11, 27, 9, 40, tzinfo=timezone.utc), now)
    assert (args.psi_threshold, args.ks_threshold, args.metric_namespace) == (0.2, 0.1, "MlPlatform/Drift")
    assert args.publish_metrics and args.output_dir == "/opt/ml/processing/report"


def test_report_goes_under_the_endpoint_and_execution(definition):
    (output,) = arguments_of(definition)["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "report"
    assert output["S3Output"] == {
        "LocalPath": "/opt/ml/processing/report",
        "S3UploadMode": "EndOfJob",
        "S3Uri": {"Std:Join": {"On": "/", "Values": [
            "s3://${ReportsBucket}/drift", {"Get": "Parameters.EndpointName"}, {"Get": "Execution.PipelineExecutionId"},
        ]}},
    }  # fmt: skip
    # Where the monitoring job role may write.
    assert output["S3Output"]["S3Uri"]["Std:Join"]["Values"][0] == f"s3://${{ReportsBucket}}/{DRIFT_REPORTS_PREFIX.rstrip('/')}"
    custom = json.loads(build(reports_prefix="/drift/reports/"))
    (output,) = arguments_of(custom)["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["S3Uri"]["Std:Join"]["Values"][0] == "s3://${ReportsBucket}/drift/reports"


def test_step_retries_transient_failures_and_is_never_cached(definition):
    kinds = {e for policy in step(definition)["RetryPolicies"] for e in policy["ExceptionType"]}
    assert {"Step.THROTTLING", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"} <= kinds
    assert "CacheConfig" not in step(definition)  # every run reads a new window


def test_settings_reach_the_definition():
    definition = json.loads(build(instance_type="ml.t3.medium", metric_namespace="Team/Drift", psi_threshold=0.25,
                                  ks_threshold=0.15, max_runtime_seconds=900))  # fmt: skip
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert (parameters["InstanceType"], parameters["PsiThreshold"], parameters["KsThreshold"]) == ("ml.t3.medium", 0.25, 0.15)
    assert script_arguments(definition)["--metric-namespace"] == "Team/Drift"
    assert arguments_of(definition)["StoppingCondition"] == {"MaxRuntimeInSeconds": 900}


@pytest.mark.parametrize("settings", [
    {"instance_type": "m5.large"},
    {"metric_namespace": "AWS/SageMaker"},
    {"metric_namespace": " "},
    {"psi_threshold": 0},
    {"ks_threshold": 0},
    {"ks_threshold": 1.5},
])  # fmt: skip
def test_settings_sagemaker_or_the_script_would_reject_fail_early(settings):
    """The configuration is where they are checked, once, before any definition is built."""
    with pytest.raises(ValueError):
        DriftCheckConfig(**settings)


@pytest.mark.parametrize("seconds", [0, 777_601])
def test_a_time_limit_sagemaker_would_reject_fails_early(seconds):
    from pipeline_code.drift_pipeline import DriftCheckSettings

    with pytest.raises(ValueError):
        DriftCheckSettings(instance_type="ml.m5.large", metric_namespace="N", psi_threshold=0.2, ks_threshold=0.1,
                           max_runtime_seconds=seconds)  # fmt: skip


def test_configuration_defaults_are_the_scripts_defaults():
    """A run started with the script's own defaults checks what the configured pipeline checks."""
    from pipeline_code.steps import drift_check

    defaults = DriftCheckConfig()
    assert defaults.metric_namespace == drift_check.DEFAULT_NAMESPACE
    assert (defaults.psi_threshold, defaults.ks_threshold) == (drift_check.DEFAULT_PSI_THRESHOLD, drift_check.DEFAULT_KS_THRESHOLD)


def test_placeholders_the_stack_must_substitute(definition):
    text = json.dumps(definition)
    assert "us-east-1" not in text
    found = set(re.findall(r"\$\{([^}]+)\}", text))
    assert found == STACK_PLACEHOLDERS | PSEUDO_PARAMETERS
    assert set(PLACEHOLDERS) == STACK_PLACEHOLDERS - {"SubnetId0", "SubnetId1"}
    one_subnet = json.loads(build(subnet_count=1))
    assert arguments_of(one_subnet)["NetworkConfig"]["VpcConfig"]["Subnets"] == ["${SubnetId0}"]
    with pytest.raises(ValueError):
        build(subnet_count=0)


def test_two_builds_are_byte_identical_and_the_cache_returns_the_same(tmp_path, no_recorded_definitions):
    first = build()
    assert first == build()
    def cached(settings: DriftCheckConfig) -> str:
        return cached_drift_definition(cache_dir=tmp_path, pipeline_name=PIPELINE, subnet_count=2, settings=settings,
                                       capture_prefix=CAPTURE_PREFIX, reports_prefix=DRIFT_REPORTS_PREFIX)  # fmt: skip

    assert cached(DriftCheckConfig()) == first and len(list(tmp_path.glob("*.json"))) == 1
    assert cached(DriftCheckConfig()) == first
    assert cached(DriftCheckConfig(psi_threshold=0.3)) != first
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_building_makes_no_network_attempt(monkeypatch):
    assert_no_network_attempt(monkeypatch, build)


def test_definition_snapshot(definition):
    """A change to the definition must be deliberate: UPDATE_SNAPSHOTS=1 make test to accept it."""
    assert_matches_snapshot(SNAPSHOT, json.dumps(definition, indent=1, sort_keys=True) + "\n")
