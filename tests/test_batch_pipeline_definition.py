"""The batch-scoring pipeline definition: transform settings, SageMaker API shape, determinism, offline build."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.definition_checks import api_problems, assert_matches_snapshot, assert_no_network_attempt, input_shape

SNAPSHOT = Path(__file__).parent / "snapshots" / "batch-pipeline-definition.json"
PIPELINE = "mlp-sandbox-batch-transform"
# What the stack would pass: every deploy-time value a ${Placeholder} for its Fn::Sub.
MODEL = "${ModelName}"
INPUT = "s3://${DataBucket}/batch/input/"
OUTPUT = "s3://${DataBucket}/batch/output/"


def build(**settings) -> str:
    from pipeline_code import batch_pipeline, pipeline

    pipe = batch_pipeline.get_batch_pipeline(
        session=pipeline.offline_session(default_bucket="${ArtifactBucket}"),
        pipeline_name=PIPELINE,
        model_name=MODEL,
        input_data_url=INPUT,
        output_data_url=OUTPUT,
        volume_kms_key="${VolumeKmsKeyArn}",
        output_kms_key="${OutputKmsKeyArn}",
        settings=batch_pipeline.BatchSettings(**settings),
    )
    return pipeline.definition_json(pipe)


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads(build())


def transform_arguments(definition: dict) -> dict:
    (step,) = definition["Steps"]
    assert (step["Name"], step["Type"]) == ("TransformData", "Transform")
    return step["Arguments"]


def test_parameters_and_their_defaults(definition):
    parameters = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert parameters == {
        "ModelName": ("String", MODEL),
        "InputDataUrl": ("String", INPUT),
        "OutputDataUrl": ("String", OUTPUT),
        "InstanceType": ("String", "ml.m5.large"),
        "InstanceCount": ("Integer", 1),
    }


def test_transform_step_matches_the_sagemaker_api(definition):
    arguments = transform_arguments(definition)
    # SageMaker Pipelines names the job per execution (the SDK drops the name from the definition).
    assert api_problems("CreateTransformJob", arguments, ignore=["TransformJobName"]) == []
    assert "TransformJobName" not in arguments
    # botocore does not check enums: the default instance type must be one SageMaker batch transform offers.
    assert "ml.m5.large" in input_shape("CreateTransformJob").members["TransformResources"].members["InstanceType"].enum


def test_transform_scores_csv_lines_in_batches_and_joins_them_to_the_input(definition):
    arguments = transform_arguments(definition)
    assert arguments["BatchStrategy"] == "MultiRecord"
    assert arguments["MaxPayloadInMB"] == 6
    assert "MaxConcurrentTransforms" not in arguments  # SageMaker picks
    assert "Environment" not in arguments
    assert arguments["DataProcessing"] == {"JoinSource": "Input"}
    assert arguments["TransformInput"] == {
        "ContentType": "text/csv",
        "SplitType": "Line",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": {"Get": "Parameters.InputDataUrl"}}},
    }
    assert arguments["TransformOutput"] == {
        "Accept": "text/csv",
        "AssembleWith": "Line",
        "KmsKeyId": "${OutputKmsKeyArn}",
        "S3OutputPath": {"Get": "Parameters.OutputDataUrl"},
    }


def test_model_and_resources_come_from_pipeline_parameters(definition):
    arguments = transform_arguments(definition)
    assert arguments["ModelName"] == {"Get": "Parameters.ModelName"}
    assert arguments["TransformResources"] == {
        "InstanceType": {"Get": "Parameters.InstanceType"},
        "InstanceCount": {"Get": "Parameters.InstanceCount"},
        "VolumeKmsKeyId": "${VolumeKmsKeyArn}",
    }


def test_transform_retries_transient_failures(definition):
    (step,) = definition["Steps"]
    kinds = {e for policy in step["RetryPolicies"] for e in policy["ExceptionType"]}
    assert {"Step.THROTTLING", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"} <= kinds
    assert "CacheConfig" not in step  # the data behind InputDataUrl changes between runs


def test_settings_reach_the_definition():
    definition = json.loads(build(instance_type="ml.c5.2xlarge", instance_count=3, max_payload_mb=10, max_concurrent_transforms=4))
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert (parameters["InstanceType"], parameters["InstanceCount"]) == ("ml.c5.2xlarge", 3)
    arguments = transform_arguments(definition)
    assert (arguments["MaxPayloadInMB"], arguments["MaxConcurrentTransforms"]) == (10, 4)


def test_zero_concurrency_means_sagemaker_picks():
    assert build(max_concurrent_transforms=0) == build()


@pytest.mark.parametrize(
    "settings",
    [
        {"instance_count": 0},
        {"max_payload_mb": 0},
        {"max_payload_mb": 101},
        {"max_concurrent_transforms": -1},
        {"max_payload_mb": 6, "max_concurrent_transforms": 17},  # 102 MB in flight per instance
    ],
)
def test_settings_sagemaker_would_reject_fail_early(settings):
    """The configuration is where they are checked, once, before any definition is built."""
    from config.schema import BatchScoringConfig

    with pytest.raises(ValueError):
        BatchScoringConfig(**settings)


def test_only_known_placeholders_and_no_build_region(definition):
    text = json.dumps(definition)
    assert "us-east-1" not in text
    assert set(re.findall(r"\$\{([^}]+)\}", text)) == {"ModelName", "DataBucket", "VolumeKmsKeyArn", "OutputKmsKeyArn"}


def test_two_builds_are_byte_identical():
    assert build() == build()


def test_building_makes_no_network_attempt(monkeypatch):
    assert_no_network_attempt(monkeypatch, build)


def test_definition_snapshot(definition):
    """A change to the definition must be deliberate: UPDATE_SNAPSHOTS=1 make test to accept it."""
    assert_matches_snapshot(SNAPSHOT, json.dumps(definition, indent=1, sort_keys=True) + "\n")
