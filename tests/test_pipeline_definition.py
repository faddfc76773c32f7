"""The model-build pipeline definition: structure, SageMaker API shapes, settings, determinism, offline build."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config.schema import PipelineConfig, TuningConfig
from pipeline_code.definitions.model_build import build_definition
from tests.definition_checks import api_problems, assert_matches_snapshot, assert_no_network_attempt

SNAPSHOT = Path(__file__).parent / "snapshots" / "pipeline-definition.json"
PIPELINE = "mlp-sandbox-model-build"
GROUP = "mlp-sandbox-models"
STEP_OPERATIONS = {
    "Processing": "CreateProcessingJob",
    "Training": "CreateTrainingJob",
    "Tuning": "CreateHyperParameterTuningJob",
    "RegisterModel": "CreateModelPackage",
}
# Names SageMaker Pipelines generates per execution (the SDK drops them from the definition).
GENERATED_NAMES = {"ProcessingJobName", "TrainingJobName", "HyperParameterTuningJobName"}


def build(**settings) -> str:
    return build_definition(
        pipeline_name=PIPELINE, model_package_group_name=GROUP, settings=PipelineConfig(**settings), subnet_count=2
    )


@pytest.fixture(scope="module")
def train_definition() -> dict:
    return json.loads(build())


@pytest.fixture(scope="module")
def tune_definition() -> dict:
    return json.loads(build(training_mode="tune", tuning=TuningConfig(max_jobs=12, max_parallel_jobs=3)))


def all_steps(steps: list[dict]) -> dict[str, dict]:
    found = {}
    for step in steps:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            found.update(all_steps(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]))
    return found


def expressions(value, kind: str) -> list:
    """Every ``{"Get": ...}`` / ``{"Std:JsonGet": ...}`` expression inside ``value``."""
    if isinstance(value, dict):
        return ([value[kind]] if kind in value else []) + [e for v in value.values() for e in expressions(v, kind)]
    if isinstance(value, list):
        return [e for v in value for e in expressions(v, kind)]
    return []


def step_graph(definition: dict) -> dict[str, set[str]]:
    """Step -> steps it reads from (property references, JsonGet, DependsOn)."""
    steps = all_steps(definition["Steps"])
    graph = {}
    for name, step in steps.items():
        # A condition's branches are its children, not its inputs: only its conditions are read.
        inputs = step["Arguments"]["Conditions"] if step["Type"] == "Condition" else step
        refs = {g.split(".")[1] for g in expressions(inputs, "Get") if g.startswith("Steps.")}
        refs |= set(step.get("DependsOn", []))
        graph[name] = refs - {name}
    return graph


@pytest.mark.parametrize("fixture", ["train_definition", "tune_definition"])
def test_steps_and_their_order(request, fixture):
    definition = request.getfixturevalue(fixture)
    train = "TrainModel" if fixture == "train_definition" else "TuneModel"
    assert [s["Name"] for s in definition["Steps"]] == ["PreprocessData", train, "EvaluateModel", "CheckAccuracy"]
    condition = definition["Steps"][3]["Arguments"]
    assert [s["Name"] for s in condition["IfSteps"]] == ["RegisterModel"]
    assert [s["Name"] for s in condition["ElseSteps"]] == ["FailOnLowAccuracy"]
    graph = step_graph(definition)
    assert graph[train] == {"PreprocessData"}
    assert graph["EvaluateModel"] == {"PreprocessData", train}
    assert graph["CheckAccuracy"] == {"EvaluateModel"}


@pytest.mark.parametrize("fixture", ["train_definition", "tune_definition"])
def test_every_reference_resolves_and_there_are_no_cycles(request, fixture):
    definition = request.getfixturevalue(fixture)
    steps = all_steps(definition["Steps"])
    parameters = {p["Name"] for p in definition["Parameters"]}
    for name, step in steps.items():
        for get in expressions(step, "Get"):
            root, ref, *_ = get.split(".")
            if root == "Steps":
                assert ref in steps, f"{name} reads unknown step {ref}"
            elif root == "Parameters":
                assert ref in parameters, f"{name} reads unknown parameter {ref}"
            else:
                assert root == "Execution", get
        for json_get in expressions(step, "Std:JsonGet"):
            _, source, kind, file = json_get["PropertyFile"]["Get"].split(".")
            assert kind == "PropertyFiles"
            assert file in {f["PropertyFileName"] for f in steps[source].get("PropertyFiles", [])}
    graph = step_graph(definition)
    visiting, done = set(), set()

    def visit(node: str) -> None:
        assert node not in visiting, f"cycle through {node}"
        if node in done:
            return
        visiting.add(node)
        for parent in graph[node]:
            visit(parent)
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node)


def test_parameters_and_their_defaults(train_definition):
    parameters = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in train_definition["Parameters"]}
    assert parameters == {
        "InputDataUrl": ("String", "s3://${DataBucket}/input/"),
        "TargetColumn": ("String", "label"),
        "ProcessingInstanceType": ("String", "ml.m5.xlarge"),
        "ProcessingInstanceCount": ("Integer", 1),
        "TrainingInstanceType": ("String", "ml.m5.xlarge"),
        "AccuracyThreshold": ("Float", 0.7),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
    }


@pytest.mark.parametrize("fixture", ["train_definition", "tune_definition"])
def test_every_step_matches_the_sagemaker_api(request, fixture):
    checked = 0
    for name, step in all_steps(request.getfixturevalue(fixture)["Steps"]).items():
        operation = STEP_OPERATIONS.get(step["Type"])
        if operation is None:
            continue
        problems = api_problems(operation, step["Arguments"], ignore=GENERATED_NAMES)
        assert problems == [], f"{name} ({operation}): {problems}"
        checked += 1
    assert checked == 4


def test_jobs_run_in_the_vpc_with_kms_and_encrypted_traffic(train_definition):
    steps = all_steps(train_definition["Steps"])
    vpc = {"Subnets": ["${SubnetId0}", "${SubnetId1}"], "SecurityGroupIds": ["${SecurityGroupId}"]}
    for name in ("PreprocessData", "EvaluateModel"):
        args = steps[name]["Arguments"]
        assert args["NetworkConfig"] == {"VpcConfig": vpc, "EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": False}
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${VolumeKmsKeyArn}"
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${OutputKmsKeyArn}"
        assert args["RoleArn"] == "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${JobRoleName}"
    train = steps["TrainModel"]["Arguments"]
    assert train["VpcConfig"] == vpc
    assert train["EnableInterContainerTrafficEncryption"] is True
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == "${VolumeKmsKeyArn}"
    assert train["OutputDataConfig"]["KmsKeyId"] == "${OutputKmsKeyArn}"


def test_processing_steps_run_their_module_from_the_code_tarball(train_definition):
    steps = all_steps(train_definition["Steps"])
    for name, key, module in (("PreprocessData", "PreprocessCodeKey", "preprocess"), ("EvaluateModel", "EvaluateCodeKey", "evaluate")):
        args = steps[name]["Arguments"]
        # sh -c '<unpack, run the module>' <the downloaded tarball> <arguments...>
        assert args["AppSpecification"] == {
            "ImageUri": "${SklearnImageUri}",
            "ContainerEntrypoint": [
                "/bin/sh", "-c", f'set -e; cd "$(mktemp -d)"; tar -xzf "$0"; exec python3 -m {module} "$@"',
                f"/opt/ml/processing/input/code/${{{key}}}",
            ],
            "ContainerArguments": ["--target-column", {"Get": "Parameters.TargetColumn"}],
        }
        code = next(i for i in args["ProcessingInputs"] if i["InputName"] == "code")
        assert code["S3Input"]["S3Uri"] == f"s3://${{CodeBucket}}/${{{key}}}"


def test_training_is_managed_spot_with_checkpoints_and_metrics(train_definition):
    train = all_steps(train_definition["Steps"])["TrainModel"]["Arguments"]
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert train["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"][-1] == "checkpoints"
    assert {"Get": "Execution.PipelineExecutionId"} in train["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"]
    assert train["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "train:accuracy", "Regex": r"Train Accuracy: ([0-9\.]+)"},
        {"Name": "validation:accuracy", "Regex": r"Validation Accuracy: ([0-9\.]+)"},
    ]
    hyper = train["HyperParameters"]
    assert {k: hyper[k] for k in ("n-estimators", "max-depth", "min-samples-split", "min-samples-leaf")} == {
        "n-estimators": "200", "max-depth": "15", "min-samples-split": "4", "min-samples-leaf": "1",
    }  # fmt: skip
    assert hyper["sagemaker_submit_directory"] == '"s3://${CodeBucket}/${TrainSourceKey}"'
    assert hyper["sagemaker_region"] == '"${AWS::Region}"'
    assert set(train["InputDataConfig"][i]["ChannelName"] for i in range(3)) == {"train", "validation", "preprocessor"}


def test_tuning_is_bayesian_on_validation_accuracy_with_integer_ranges(tune_definition):
    tune = all_steps(tune_definition["Steps"])["TuneModel"]["Arguments"]
    config = tune["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:accuracy"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    ranges = {r["Name"]: (r["MinValue"], r["MaxValue"]) for r in config["ParameterRanges"]["IntegerParameterRanges"]}
    assert set(ranges) == {"n-estimators", "max-depth", "min-samples-split", "min-samples-leaf"}
    assert not config["ParameterRanges"]["ContinuousParameterRanges"]
    definition = tune["TrainingJobDefinition"]
    assert definition["EnableManagedSpotTraining"] is True and definition["VpcConfig"]["Subnets"] == ["${SubnetId0}", "${SubnetId1}"]


def test_tuned_model_is_read_where_the_tuning_jobs_write_it(tune_definition):
    steps = all_steps(tune_definition["Steps"])
    output_path = steps["TuneModel"]["Arguments"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]["Std:Join"]
    # SageMaker writes <S3OutputPath>/<training job name>/output/model.tar.gz.
    expected = {
        "Std:Join": {
            "On": "/",
            "Values": [*output_path["Values"], {"Get": "Steps.TuneModel.BestTrainingJob.TrainingJobName"}, "output", "model.tar.gz"],
        }
    }
    assert output_path["On"] == "/"
    evaluate_input = next(i for i in steps["EvaluateModel"]["Arguments"]["ProcessingInputs"] if i["InputName"] == "input-1")
    assert evaluate_input["S3Input"]["S3Uri"] == expected
    (container,) = steps["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == expected


def test_tuning_early_stopping_can_be_switched_off():
    tune = json.loads(build(training_mode="tune", tuning=TuningConfig(early_stopping=False)))
    assert all_steps(tune["Steps"])["TuneModel"]["Arguments"]["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Off"


def test_accuracy_gate_reads_the_evaluation_report(train_definition):
    steps = all_steps(train_definition["Steps"])
    assert steps["EvaluateModel"]["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    (condition,) = steps["CheckAccuracy"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.accuracy.value"
    assert condition["RightValue"] == {"Get": "Parameters.AccuracyThreshold"}
    assert steps["FailOnLowAccuracy"]["Type"] == "Fail"
    assert "below the threshold" in json.dumps(steps["FailOnLowAccuracy"]["Arguments"]["ErrorMessage"])


def test_registration_carries_metrics_baseline_and_serving_settings(train_definition):
    register = all_steps(train_definition["Steps"])["RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == GROUP
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    spec = register["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == spec["SupportedResponseMIMETypes"] == ["text/csv", "application/json"]
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == ["ml.m5.large"]
    assert spec["SupportedTransformInstanceTypes"] == ["ml.m5.large"]
    (container,) = spec["Containers"]
    # The handlers travel inside model.tar.gz (train.py puts them in code/): no other S3 object needed.
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    assert container["Image"] == "${SklearnImageUri}"
    assert container["ModelDataUrl"] == {"Get": "Steps.TrainModel.ModelArtifacts.S3ModelArtifacts"}
    # Read from the steps' outputs (right even when a step's result comes from the cache).
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics == {
        "ContentType": "application/json",
        "S3Uri": {"Std:Join": {"On": "/", "Values": [
            {"Get": "Steps.EvaluateModel.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}, "evaluation.json"]}},
    }  # fmt: skip
    baseline = register["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]
    assert baseline["S3Uri"]["Std:Join"]["Values"] == [
        {"Get": "Steps.PreprocessData.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"}, "baseline.json",
    ]  # fmt: skip


def test_caching_is_opt_in(train_definition):
    steps = all_steps(train_definition["Steps"])
    assert not any("CacheConfig" in step for step in steps.values())
    cached = all_steps(json.loads(build(cache_days=7))["Steps"])
    for name in ("PreprocessData", "TrainModel", "EvaluateModel"):
        assert cached[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P7D"}


def test_steps_retry_transient_failures(train_definition):
    steps = all_steps(train_definition["Steps"])
    for name in ("PreprocessData", "TrainModel", "EvaluateModel"):
        kinds = {e for policy in steps[name]["RetryPolicies"] for e in policy.get("ExceptionType", [])}
        assert {"Step.THROTTLING", "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT"} <= kinds
    assert steps["RegisterModel"]["RetryPolicies"][0]["ExceptionType"] == ["Step.THROTTLING", "Step.SERVICE_FAULT"]


def test_config_reaches_the_definition():
    definition = json.loads(
        build(target_column="churned", accuracy_threshold=0.9, training_instance_type="ml.c5.2xlarge", max_run_minutes=30, max_wait_minutes=45)
    )
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert parameters["TargetColumn"] == "churned"
    assert parameters["AccuracyThreshold"] == 0.9
    assert parameters["TrainingInstanceType"] == "ml.c5.2xlarge"
    train = all_steps(definition["Steps"])["TrainModel"]["Arguments"]
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 2700}


def test_only_known_placeholders_and_no_build_region(train_definition, tune_definition):
    for definition in (train_definition, tune_definition):
        text = json.dumps(definition)
        assert "us-east-1" not in text
        assert set(re.findall(r"\$\{([^}]+)\}", text)) == {
            "AWS::AccountId", "AWS::Partition", "AWS::Region", "ArtifactBucket", "ReportsBucket", "DataBucket",
            "JobRoleName", "VolumeKmsKeyArn", "OutputKmsKeyArn", "SubnetId0", "SubnetId1",
            "SecurityGroupId", "CodeBucket", "PreprocessCodeKey", "EvaluateCodeKey", "TrainSourceKey", "SklearnImageUri",
        }  # fmt: skip


def test_job_arguments_fit_sagemaker_limits(train_definition):
    for step in all_steps(train_definition["Steps"]).values():
        for argument in step["Arguments"].get("AppSpecification", {}).get("ContainerArguments", []):
            assert len(json.dumps(argument)) <= 256
        for value in step["Arguments"].get("HyperParameters", {}).values():
            assert len(value) <= 2500


def test_two_builds_are_byte_identical():
    assert build() == build()
    assert build(training_mode="tune") == build(training_mode="tune")


def test_building_makes_no_network_attempt(monkeypatch):
    assert_no_network_attempt(monkeypatch, lambda: build(training_mode="tune"))


def test_definition_snapshot(train_definition):
    """A change to the definition must be deliberate: UPDATE_SNAPSHOTS=1 make test to accept it."""
    assert_matches_snapshot(SNAPSHOT, json.dumps(train_definition, indent=1, sort_keys=True) + "\n")


def test_local_run_reads_metrics_with_the_pipelines_regexes():
    from pipeline_code import local_run, pipeline

    assert local_run.METRIC_DEFINITIONS == {d["Name"]: d["Regex"] for d in pipeline.METRIC_DEFINITIONS}
