"""The optional Model Monitor data-quality baseline: the QualityCheck step, its registration, its image.

Off by default (tests/test_pipeline_definition.py pins that definition); these tests build it with
``data_quality_baseline=True`` and check the step against the SageMaker API, its network and keys,
its input (the features-only file preprocess.py writes), what RegisterModel records, the image
placeholder and its CloudFormation mapping.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from config.schema import PipelineConfig
from ml_constructs.sagemaker_pipeline import (
    PLACEHOLDER,
    PSEUDO_PARAMETERS,
    SageMakerPipeline,
    framework_image_uri,
    model_monitor_image_uri,
    model_monitor_repository_arn,
)
from pipeline_code.definitions.model_build import build_definition, cached_definition
from tests.definition_checks import api_problems
from tests.test_pipeline_definition import GENERATED_NAMES, STEP_OPERATIONS, all_steps, step_graph

PIPELINE = "mlp-sandbox-model-build"
GROUP = "mlp-sandbox-models"
CHECK = "DataQualityBaseline"
SAMPLE = Path(__file__).resolve().parent.parent / "pipeline_code" / "data" / "sample.csv"  # target: churn_risk
PREPROCESS_BASELINE = {"Get": "Steps.PreprocessData.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"}
KNOWN_PLACEHOLDERS = {
    "AWS::AccountId", "AWS::Partition", "AWS::Region", "ArtifactBucket", "ReportsBucket", "DataBucket",
    "JobRoleName", "VolumeKmsKeyArn", "OutputKmsKeyArn", "SubnetId0", "SubnetId1",
    "SecurityGroupId", "CodeBucket", "PreprocessCodeKey", "EvaluateCodeKey", "TrainSourceKey", "SklearnImageUri",
}  # fmt: skip


def build(data_quality_baseline: bool = True, **settings) -> str:
    return build_definition(
        pipeline_name=PIPELINE,
        model_package_group_name=GROUP,
        settings=PipelineConfig(**settings),
        subnet_count=2,
        data_quality_baseline=data_quality_baseline,
    )


@pytest.fixture(scope="module")
def train_text() -> str:
    return build()


@pytest.fixture(scope="module")
def train_definition(train_text) -> dict:
    return json.loads(train_text)


@pytest.fixture(scope="module")
def tune_text() -> str:
    return build(training_mode="tune")


@pytest.fixture(scope="module")
def tune_definition(tune_text) -> dict:
    return json.loads(tune_text)


@pytest.fixture(scope="module")
def off_text() -> str:
    return build(data_quality_baseline=False)


@pytest.fixture(scope="module")
def check(train_definition) -> dict:
    return all_steps(train_definition["Steps"])[CHECK]


def sdk_model_monitor_table() -> dict:
    import sagemaker

    return json.loads((Path(sagemaker.__file__).parent / "image_uri_config" / "model-monitor.json").read_text())


# ------------------------------------------------------------------------------------- the switch


def test_switch_is_off_by_default_and_then_adds_nothing(off_text):
    off = off_text
    assert off == build_definition(pipeline_name=PIPELINE, model_package_group_name=GROUP, settings=PipelineConfig(), subnet_count=2)
    assert '"QualityCheck"' not in off and "ModelMonitorImageUri" not in off and "train_features.csv" not in off


def test_the_switch_is_part_of_the_definition_cache_key(tmp_path, train_text, off_text, no_recorded_definitions):
    def cached(on: bool) -> str:
        return cached_definition(
            cache_dir=tmp_path, pipeline_name=PIPELINE, model_package_group_name=GROUP,
            settings=PipelineConfig(), subnet_count=2, data_quality_baseline=on,
        )  # fmt: skip

    off = cached(False)
    assert off == off_text
    assert cached(True) == train_text
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert cached(False) == off  # a hit, not the other entry


# --------------------------------------------------------------------------------- step and graph


@pytest.mark.parametrize("fixture", ["train_definition", "tune_definition"])
def test_check_runs_after_preprocessing_and_registration_waits_for_it(request, fixture):
    definition = request.getfixturevalue(fixture)
    train = "TrainModel" if fixture == "train_definition" else "TuneModel"
    assert [s["Name"] for s in definition["Steps"]] == ["PreprocessData", CHECK, train, "EvaluateModel", "CheckAccuracy"]
    graph = step_graph(definition)
    assert graph[CHECK] == {"PreprocessData"}
    assert graph[train] == {"PreprocessData"}  # training does not wait for the baseline
    assert CHECK in graph["RegisterModel"]


@pytest.mark.parametrize("fixture", ["train_definition", "tune_definition"])
def test_every_reference_resolves_and_the_graph_has_no_cycles(request, fixture):
    definition = request.getfixturevalue(fixture)
    steps = all_steps(definition["Steps"])
    graph = step_graph(definition)
    for name, parents in graph.items():
        assert parents <= set(steps), f"{name} reads unknown steps {parents - set(steps)}"
    # Kahn's algorithm: every step can be ordered after the steps it reads from.
    remaining = {name: set(parents) for name, parents in graph.items()}
    while remaining:
        ready = [name for name, parents in remaining.items() if not parents]
        assert ready, f"cycle among {sorted(remaining)}"
        for name in ready:
            del remaining[name]
        for parents in remaining.values():
            parents.difference_update(ready)


@pytest.mark.parametrize("fixture", ["train_definition", "tune_definition"])
def test_every_job_step_matches_the_sagemaker_api(request, fixture):
    operations = {**STEP_OPERATIONS, "QualityCheck": "CreateProcessingJob"}
    checked = set()
    for name, step in all_steps(request.getfixturevalue(fixture)["Steps"]).items():
        operation = operations.get(step["Type"])
        if operation is None:
            continue
        problems = api_problems(operation, step["Arguments"], ignore=GENERATED_NAMES)
        assert problems == [], f"{name} ({operation}): {problems}"
        checked.add(name)
    assert CHECK in checked and "RegisterModel" in checked and len(checked) == 5


def test_check_is_a_first_data_quality_baseline(check):
    assert check["Type"] == "QualityCheck"
    assert check["CheckType"] == "DATA_QUALITY"
    # Nothing to compare with yet: compute this training data's baseline and make it the package's.
    assert check["SkipCheck"] is True and check["RegisterNewBaseline"] is True
    assert check["ModelPackageGroupName"] == GROUP
    assert check["SuppliedBaselineStatistics"] is None and check["SuppliedBaselineConstraints"] is None
    assert "CacheConfig" not in check
    cached = all_steps(json.loads(build(cache_days=7))["Steps"])[CHECK]
    assert cached["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P7D"}


def test_check_job_runs_in_the_vpc_with_kms_and_the_job_role(check, train_definition):
    args = check["Arguments"]
    preprocess = all_steps(train_definition["Steps"])["PreprocessData"]["Arguments"]
    assert args["NetworkConfig"] == preprocess["NetworkConfig"] == {
        "VpcConfig": {"Subnets": ["${SubnetId0}", "${SubnetId1}"], "SecurityGroupIds": ["${SecurityGroupId}"]},
        "EnableInterContainerTrafficEncryption": True,
        "EnableNetworkIsolation": False,
    }
    cluster = args["ProcessingResources"]["ClusterConfig"]
    assert cluster["VolumeKmsKeyId"] == "${VolumeKmsKeyArn}"
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${OutputKmsKeyArn}"
    assert args["RoleArn"] == preprocess["RoleArn"] == "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${JobRoleName}"
    assert cluster["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}
    assert cluster["InstanceCount"] == {"Get": "Parameters.ProcessingInstanceCount"}


@pytest.mark.filterwarnings("ignore:is_sparse is deprecated:DeprecationWarning")  # scikit-learn 1.2 on pandas 2
def test_check_reads_the_features_only_file_preprocessing_writes(check, tmp_path, capsys):
    from pipeline_code import pipeline
    from pipeline_code.steps import preprocess

    (s3_input,) = [i["S3Input"] for i in check["Arguments"]["ProcessingInputs"]]
    # The file itself: the "baseline" prefix also holds baseline.json, which is not a data set.
    assert s3_input["S3Uri"] == {"Std:Join": {"On": "/", "Values": [PREPROCESS_BASELINE, "train_features.csv"]}}
    assert (s3_input["S3DataType"], s3_input["S3InputMode"]) == ("S3Prefix", "File")
    env = check["Arguments"]["Environment"]
    assert env["dataset_source"] == s3_input["LocalPath"] == "/opt/ml/processing/input/baseline_dataset_input"
    assert json.loads(env["dataset_format"]) == {"csv": {"header": True, "output_columns_position": "START"}}
    assert env["publish_cloudwatch_metrics"] == "Disabled"

    # preprocess.py writes that file into its "baseline" output: a header, raw features, no target.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sample.csv").write_bytes(SAMPLE.read_bytes())
    code = preprocess.main(["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"), "--target-column", "churn_risk"])
    assert code == 0, capsys.readouterr().err
    features = tmp_path / "out" / "baseline" / pipeline.BASELINE_FEATURES_FILE
    header = features.read_text().splitlines()[0].replace('"', "").split(",")
    assert "churn_risk" not in header and len(header) == 10


def test_check_writes_statistics_and_constraints_per_execution_to_the_reports_bucket(check):
    (output,) = check["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["LocalPath"] == check["Arguments"]["Environment"]["output_path"] == "/opt/ml/processing/output"
    assert output["S3Output"]["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        "s3:/", "${ReportsBucket}", PIPELINE, {"Get": "Execution.PipelineExecutionId"}, "data-quality-baseline"]}}  # fmt: skip


def test_registration_carries_the_model_monitor_baseline_and_keeps_the_profile(train_definition):
    register = all_steps(train_definition["Steps"])["RegisterModel"]["Arguments"]
    assert register["DriftCheckBaselines"] == {
        "ModelDataQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": {"Get": f"Steps.{CHECK}.BaselineUsedForDriftCheckStatistics"}},
            "Constraints": {"ContentType": "application/json", "S3Uri": {"Get": f"Steps.{CHECK}.BaselineUsedForDriftCheckConstraints"}},
        }
    }
    metrics = register["ModelMetrics"]
    # The platform's own profile (drift_check.py's input) is still registered, as the data statistics.
    assert metrics["ModelDataQuality"] == {
        "Statistics": {"ContentType": "application/json", "S3Uri": {"Std:Join": {"On": "/", "Values": [PREPROCESS_BASELINE, "baseline.json"]}}}
    }
    assert metrics["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"


def test_the_rest_of_the_pipeline_is_unchanged(train_definition, off_text):
    off = json.loads(off_text)
    on = {k: v for k, v in all_steps(train_definition["Steps"]).items() if k not in (CHECK, "CheckAccuracy", "RegisterModel")}
    assert on == {k: v for k, v in all_steps(off["Steps"]).items() if k not in ("CheckAccuracy", "RegisterModel")}
    assert train_definition["Parameters"] == off["Parameters"]
    register_on = all_steps(train_definition["Steps"])["RegisterModel"]["Arguments"]
    register_off = all_steps(off["Steps"])["RegisterModel"]["Arguments"]
    ignore = ("ModelMetrics", "DriftCheckBaselines")
    assert {k: v for k, v in register_on.items() if k not in ignore} == {k: v for k, v in register_off.items() if k not in ignore}


# ---------------------------------------------------------------------------------------- the image


def test_analyzer_image_is_a_placeholder_and_the_build_region_is_gone(check, train_text, tune_definition):
    assert check["Arguments"]["AppSpecification"] == {"ImageUri": "${ModelMonitorImageUri}"}
    for text in (train_text, json.dumps(tune_definition)):
        assert "us-east-1" not in text and "dkr.ecr" not in text
        assert set(re.findall(r"\$\{([^}]+)\}", text)) == KNOWN_PLACEHOLDERS | {"ModelMonitorImageUri"}


def test_an_unexpected_analyzer_image_is_refused():
    from pipeline_code import pipeline

    class Stub:
        def definition(self) -> str:
            step = {"Name": CHECK, "Type": "QualityCheck", "Arguments": {"AppSpecification": {"ImageUri": "example.com/other"}}}
            return json.dumps({"Steps": [step]})

    with pytest.raises(ValueError, match="unexpected analyzer image example.com/other"):
        pipeline.definition_json(Stub())


def test_two_builds_are_byte_identical(train_text, tune_text):
    assert build() == train_text
    assert build(training_mode="tune") == tune_text


# --------------------------------------------------------------------- model_monitor_image_uri (CDK)


def _resolve(value, region: str, url_suffix: str, mappings: dict):
    """Evaluate the intrinsics a rendered image URI uses, as CloudFormation would in ``region``."""
    if isinstance(value, dict):
        ((function, argument),) = value.items()
        if function == "Ref":
            return {"AWS::Region": region, "AWS::URLSuffix": url_suffix, "AWS::Partition": "aws"}[argument]
        if function == "Fn::FindInMap":
            name, key, attribute = (_resolve(a, region, url_suffix, mappings) for a in argument)
            return mappings[name][key][attribute]
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(_resolve(p, region, url_suffix, mappings) for p in parts)
        raise AssertionError(f"unexpected intrinsic {function}")
    return value


def _render(make_value, **stack_kwargs) -> tuple[dict, dict]:
    stack = cdk.Stack(cdk.App(), "S", **stack_kwargs)
    cdk.CfnOutput(stack, "Value", value=make_value(stack))
    template = Template.from_stack(stack).to_json()
    return template["Outputs"]["Value"]["Value"], template.get("Mappings", {})


def test_model_monitor_image_uri_looks_the_account_up_in_a_mapping_of_the_sdks_regions():
    rendered, mappings = _render(model_monitor_image_uri)
    (entry,) = sdk_model_monitor_table()["versions"].values()
    assert mappings == {"ModelMonitorImageRegistries": {r: {"account": a} for r, a in entry["registries"].items()}}
    assert {"Fn::FindInMap": ["ModelMonitorImageRegistries", {"Ref": "AWS::Region"}, "account"]} in rendered["Fn::Join"][1]
    assert rendered["Fn::Join"][1][-1].endswith("/sagemaker-model-monitor-analyzer")  # untagged, as the SDK names it


@pytest.mark.parametrize(("region", "url_suffix"), [("us-east-1", "amazonaws.com"), ("eu-west-1", "amazonaws.com"),
                                                    ("ap-southeast-2", "amazonaws.com"), ("cn-north-1", "amazonaws.com.cn")])  # fmt: skip
def test_model_monitor_image_uri_resolves_to_what_the_sdk_retrieves(region, url_suffix):
    from sagemaker import image_uris

    rendered, mappings = _render(model_monitor_image_uri)
    assert _resolve(rendered, region, url_suffix, mappings) == image_uris.retrieve(framework="model-monitor", region=region)


def test_model_monitor_repository_arn_names_the_regional_registry():
    rendered, mappings = _render(model_monitor_repository_arn)
    resolved = _resolve(rendered, "eu-west-1", "amazonaws.com", mappings)
    account = sdk_model_monitor_table()["versions"][""]["registries"]["eu-west-1"]
    assert resolved == f"arn:aws:ecr:eu-west-1:{account}:repository/sagemaker-model-monitor-analyzer"


def test_model_monitor_mapping_is_made_once_and_leaves_the_framework_mapping_alone():
    def both(stack):
        first, second = model_monitor_image_uri(stack), model_monitor_image_uri(stack)
        assert stack.resolve(first) == stack.resolve(second)
        return cdk.Fn.join(" ", [first, model_monitor_repository_arn(stack), framework_image_uri(stack, framework="sklearn", version="1.2-1")])

    _, mappings = _render(both)
    assert set(mappings) == {"ModelMonitorImageRegistries", "SklearnImageRegistries"}
    assert mappings["SklearnImageRegistries"]["us-east-1"] == {"account": "683313688378"}


def test_model_monitor_image_uri_refuses_a_region_without_the_image():
    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="111111111111", region="xx-nowhere-1"))
    with pytest.raises(ValueError, match=r"no Model Monitor analyzer image in region xx-nowhere-1; available in: af-south-1, "):
        model_monitor_image_uri(stack)


def test_the_pipeline_construct_embeds_the_definition_with_the_image_mapped(train_text):
    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    placeholders = set(PLACEHOLDER.findall(train_text)) - PSEUDO_PARAMETERS
    substitutions = {name: "x" for name in placeholders}
    substitutions["ModelMonitorImageUri"] = model_monitor_image_uri(stack)
    SageMakerPipeline(
        stack, "Pipeline", pipeline_name=PIPELINE, definition=train_text, substitutions=substitutions,
        role=iam.Role.from_role_name(stack, "Role", "pipeline-role"), description="test",
    )  # fmt: skip
    template = Template.from_stack(stack).to_json()
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"]
    body, variables = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert body == train_text
    assert {"Fn::FindInMap": ["ModelMonitorImageRegistries", "eu-west-1", "account"]} in variables["ModelMonitorImageUri"]["Fn::Join"][1]
