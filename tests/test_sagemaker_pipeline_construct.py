"""SageMakerPipeline construct: placeholder checks, inline body, S3 location for long definitions."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from app import cdk_json_context
from ml_constructs.sagemaker_pipeline import SageMakerPipeline
from tests.conftest import load_json, resources_of

DEFINITION = json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "A", "Bucket": "${Bucket}", "Region": "${AWS::Region}"}]})


def make(tmp_path, *, definition=DEFINITION, substitutions=None, limit=400_000, bucket=True):
    app = cdk.App(outdir=str(tmp_path), context=cdk_json_context())
    stack = cdk.Stack(app, "S")
    pipeline = SageMakerPipeline(
        stack,
        "Pipeline",
        pipeline_name="mlp-test-model-build",
        definition=definition,
        substitutions={"Bucket": stack.account} if substitutions is None else substitutions,
        role=iam.Role.from_role_name(stack, "Role", "pipeline-role"),
        description="test",
        large_definition_bucket=s3.Bucket.from_bucket_name(stack, "Assets", "asset-bucket") if bucket else None,
        inline_limit_bytes=limit,
    )
    return app, stack, pipeline


@pytest.mark.parametrize(
    ("substitutions", "message"),
    [({}, r"placeholders without a value \['Bucket'\]"), ({"Bucket": "b", "Extra": "x"}, r"values without a placeholder \['Extra'\]")],
)
def test_every_placeholder_needs_exactly_one_value(tmp_path, substitutions, message):
    with pytest.raises(ValueError, match=message):
        make(tmp_path, substitutions=substitutions)


def test_short_definitions_are_embedded_through_fn_sub(tmp_path):
    app, stack, pipeline = make(tmp_path)
    template = app.synth().get_stack_by_name("S").template
    (resource,) = resources_of(template, "AWS::SageMaker::Pipeline").values()
    assert resource["Properties"]["PipelineDefinition"] == {
        "PipelineDefinitionBody": {"Fn::Sub": [DEFINITION, {"Bucket": {"Ref": "AWS::AccountId"}}]}
    }
    assert not pipeline.definition_in_s3


def test_long_definitions_without_a_bucket_are_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"definition is \d+ bytes, more than the 10 embedded"):
        make(tmp_path, limit=10, bucket=False)


def test_long_definitions_go_to_s3_resolved_at_deploy_time_and_pass_cdk_nag(tmp_path):
    app, stack, pipeline = make(tmp_path, limit=10)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    template = app.synth().get_stack_by_name("S").template  # raises if cdk-nag finds anything
    (name, resource), = resources_of(template, "AWS::SageMaker::Pipeline").items()
    location = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionS3Location"]
    assert location["Bucket"] == "asset-bucket"
    assert location["Key"].startswith("pipeline-definitions/mlp-test-model-build/") and location["Key"].endswith(".json")
    (deployment_id, deployment), = resources_of(template, "Custom::CDKBucketDeployment").items()
    assert deployment_id in resource["DependsOn"]
    # Only the deploy-time values are in the template; the definition itself ships as an asset.
    (markers,) = deployment["Properties"]["SourceMarkers"]
    assert sorted(markers.values(), key=json.dumps) == [{"Ref": "AWS::AccountId"}, {"Ref": "AWS::Region"}]
    assert '"Steps"' not in json.dumps(template)
    assert deployment["Properties"]["DestinationBucketKeyPrefix"] == "pipeline-definitions/mlp-test-model-build/"
    assert load_json(tmp_path / "validation-report.json")["pluginReports"][0]["violations"] == []
