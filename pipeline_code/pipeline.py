"""The model-build SageMaker Pipeline, built offline and deterministically.

::

    PreprocessData ─► TrainModel ─────┐
      (processing)    (spot training)  ├─► EvaluateModel ─► CheckAccuracy ─┬─ accuracy ≥ threshold ─► RegisterModel
                   or TuneModel ──────┘     (processing,     (condition)    │
                      (Bayesian HPO)         EvaluationReport)              └─ otherwise ─────────────► FailOnLowAccuracy

With ``data_quality_baseline=True`` a ``DataQualityBaseline`` step (SageMaker Model Monitor's
analyzer) also runs after PreprocessData, on the raw training features, and RegisterModel carries
its statistics and constraints (see ``get_pipeline``).

``get_pipeline`` takes every name, role, bucket, key, network setting and code
location as an argument and never calls AWS: build it with ``offline_session``.
Values only known at deploy time are passed as CloudFormation placeholders
(``${Name}``), which the SDK copies into the definition untouched; the stack
wraps the JSON in ``Fn::Sub``. Run-time settings are pipeline parameters.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

# The SDK's config-file notices and "field popped from the definition" warnings on every synth are
# nothing a platform user can act on (its deprecation banner is turned off in __init__.py).
for _logger in ("sagemaker", "sagemaker.config"):
    logging.getLogger(_logger).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="Running within a PipelineSession", category=UserWarning)

import boto3  # noqa: E402
import sagemaker.image_uris  # noqa: E402
import sagemaker.utils  # noqa: E402
from sagemaker.drift_check_baselines import DriftCheckBaselines  # noqa: E402
from sagemaker.inputs import TrainingInput  # noqa: E402
from sagemaker.model_metrics import MetricsSource, ModelMetrics  # noqa: E402
from sagemaker.model_monitor import DatasetFormat  # noqa: E402
from sagemaker.network import NetworkConfig  # noqa: E402
from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor  # noqa: E402
from sagemaker.sklearn.estimator import SKLearn  # noqa: E402
from sagemaker.model import Model  # noqa: E402
from sagemaker.tuner import HyperparameterTuner, IntegerParameter  # noqa: E402
from sagemaker.workflow.check_job_config import CheckJobConfig  # noqa: E402
from sagemaker.workflow.condition_step import ConditionStep  # noqa: E402
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo  # noqa: E402
from sagemaker.workflow.execution_variables import ExecutionVariables  # noqa: E402
from sagemaker.workflow.fail_step import FailStep  # noqa: E402
from sagemaker.workflow.functions import Join, JsonGet  # noqa: E402
from sagemaker.workflow.model_step import ModelStep  # noqa: E402
from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString  # noqa: E402
from sagemaker.workflow.pipeline import Pipeline  # noqa: E402
from sagemaker.workflow.pipeline_context import PipelineSession  # noqa: E402
from sagemaker.workflow.properties import PropertyFile  # noqa: E402
from sagemaker.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep  # noqa: E402
from sagemaker.workflow.retry import (  # noqa: E402
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TuningStep  # noqa: E402

SKLEARN_VERSION = "1.2-1"
# Built against this region, then made region-neutral (see ``definition_json``).
BUILD_REGION = "us-east-1"
PROCESSING = "/opt/ml/processing"
CONTENT_TYPES = ["text/csv", "application/json"]
METRIC_DEFINITIONS = [
    {"Name": "train:accuracy", "Regex": r"Train Accuracy: ([0-9\.]+)"},
    {"Name": "validation:accuracy", "Regex": r"Validation Accuracy: ([0-9\.]+)"},
]
# The random forest's hyperparameters and the ranges tuning searches.
DEFAULT_HYPERPARAMETERS = {"n-estimators": 200, "max-depth": 15, "min-samples-split": 4, "min-samples-leaf": 1}
TUNING_RANGES = {
    "n-estimators": IntegerParameter(50, 400),
    "max-depth": IntegerParameter(3, 30),
    "min-samples-split": IntegerParameter(2, 20),
    "min-samples-leaf": IntegerParameter(1, 10),
}
REGISTER_STEP = "RegisterModel"
SERVING_CODE_DIR = "/opt/ml/model/code"
# Optional Model Monitor data-quality baseline (``data_quality_baseline=True``).
DATA_QUALITY_STEP = "DataQualityBaseline"
# preprocess.py's features-only copy of the training split, in its "baseline" output: header row,
# raw feature values in serving order, no target (what a captured CSV request holds, minus the header).
BASELINE_FEATURES_FILE = "train_features.csv"
# The analyzer image lives in a different account per region: the stack maps it (model_monitor_image_uri).
MODEL_MONITOR_IMAGE_PLACEHOLDER = "${ModelMonitorImageUri}"


@dataclass(frozen=True)
class JobNetwork:
    """Subnets and security groups every job runs in."""

    subnet_ids: list[str]
    security_group_ids: list[str]

    def network_config(self) -> NetworkConfig:
        """The jobs' network: these subnets and groups, traffic between instances encrypted."""
        return NetworkConfig(
            subnets=list(self.subnet_ids),
            security_group_ids=list(self.security_group_ids),
            encrypt_inter_container_traffic=True,
            enable_network_isolation=False,
        )


@dataclass(frozen=True)
class CodeLocations:
    """S3 URIs of the step code tarballs: preprocess.py and evaluate.py (each with stepkit.py, run by
    ``tarball_command``) and the training source (train.py, inference.py, stepkit.py)."""

    preprocess_code: str
    evaluate_code: str
    train_source_tarball: str


def tarball_command(module: str) -> list[str]:
    """A processing container command that runs ``module`` from the job's code tarball.

    SageMaker downloads the code object to ``/opt/ml/processing/input/code/`` and appends its path to
    the command (``$0`` here), then the job's arguments (``"$@"``). The tarball is unpacked into a
    fresh directory, from which ``python3 -m`` finds the module and the ``stepkit.py`` beside it: what
    the SDK's FrameworkProcessor does with a generated ``runproc.sh``, which it would upload while
    the definition is built.
    """
    return ["/bin/sh", "-c", f'set -e; cd "$(mktemp -d)"; tar -xzf "$0"; exec python3 -m {module} "$@"']


@dataclass(frozen=True)
class TuningSettings:
    """Hyperparameter tuning instead of a single training job."""

    max_jobs: int = 10
    max_parallel_jobs: int = 2
    early_stopping: bool = True


@dataclass(frozen=True)
class PipelineDefaults:
    """Defaults of the run-time pipeline parameters."""

    input_data_url: str
    target_column: str = "label"
    processing_instance_type: str = "ml.m5.xlarge"
    processing_instance_count: int = 1
    training_instance_type: str = "ml.m5.xlarge"
    accuracy_threshold: float = 0.7
    approval_status: str = "PendingManualApproval"


@dataclass(frozen=True)
class RegistrySettings:
    """Where and how approved candidates are registered."""

    model_package_group_name: str
    inference_instance_types: list[str] = field(default_factory=lambda: ["ml.m5.large"])
    transform_instance_types: list[str] = field(default_factory=lambda: ["ml.m5.large"])


# SDK defaults for the build: telemetry off (it would call STS and S3). Passed explicitly, so no
# machine-wide or user SDK config file can leak into the definition.
OFFLINE_SDK_CONFIG: dict = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
_validate_sdk_config = sagemaker.utils.validate_sagemaker_config


def _validate_sdk_config_once(sagemaker_config: dict | None = None) -> None:
    # SDK 2.x re-checks its whole JSON schema on every config lookup (about 60 per build, 10 s);
    # OFFLINE_SDK_CONFIG was checked once when the session was created.
    if sagemaker_config is not OFFLINE_SDK_CONFIG:
        _validate_sdk_config(sagemaker_config)


sagemaker.utils.validate_sagemaker_config = _validate_sdk_config_once


def offline_session(*, default_bucket: str) -> PipelineSession:
    """A pipeline session that cannot reach AWS: dummy credentials, a fixed region, a preset bucket."""
    boto_session = boto3.Session(
        region_name=BUILD_REGION, aws_access_key_id="offline", aws_secret_access_key="offline"  # noqa: S106
    )
    session = PipelineSession(
        boto_session=boto_session, default_bucket=default_bucket, sagemaker_config=OFFLINE_SDK_CONFIG
    )
    # default_bucket() would list or create the bucket; a resolved name short-circuits it.
    session._default_bucket = default_bucket  # noqa: SLF001
    return session


def get_pipeline(
    *,
    session: PipelineSession,
    pipeline_name: str,
    job_role_arn: str,
    artifact_bucket: str,
    reports_bucket: str,
    volume_kms_key: str,
    output_kms_key: str,
    network: JobNetwork,
    code: CodeLocations,
    image_uri: str,
    defaults: PipelineDefaults,
    registry: RegistrySettings,
    tuning: TuningSettings | None = None,
    max_run_seconds: int = 3600,
    max_wait_seconds: int = 7200,
    cache_days: int = 0,
    data_quality_baseline: bool = False,
) -> Pipeline:
    """Build the model-build pipeline.

    :param tuning: run hyperparameter tuning (``TuneModel``) instead of one training job. Default: train.
    :param max_run_seconds: longest a training job may run. Default: one hour.
    :param max_wait_seconds: longest to wait for spot capacity plus run time (≥ ``max_run_seconds``).
    :param cache_days: reuse a step's earlier result with identical arguments for this many days.
        Default: 0 (no caching; an input URL may hold new data).
    :param data_quality_baseline: also compute a SageMaker Model Monitor data-quality baseline
        (``DataQualityBaseline``: statistics.json and constraints.json of the raw training features,
        written under the reports bucket next to the evaluation) and register it with the model as
        ``DriftCheckBaselines.ModelDataQuality``; the platform's ``baseline.json`` profile then moves
        to ``ModelMetrics.ModelDataQuality.Statistics``. For accounts that still have Model Monitor.
        The analyzer image is the placeholder ``${ModelMonitorImageUri}`` (``definition_json``).
        Default: off, and the definition is the same as without this argument.
    """
    params = _Parameters(defaults)
    network_config = network.network_config()
    # A cached step is reused when its arguments repeat, even if the data behind an S3 URL changed:
    # only worth it when InputDataUrl names immutable dataset versions, hence opt-in.
    cache = CacheConfig(enable_caching=True, expire_after=f"P{cache_days}D") if cache_days else None
    retries = _retry_policies()
    run_prefix = ["s3:/", artifact_bucket, pipeline_name, ExecutionVariables.PIPELINE_EXECUTION_ID]

    def processor(base_job_name: str, module: str) -> ScriptProcessor:
        # SKLearnProcessor without its region lookup: the image URI comes in as an argument.
        return ScriptProcessor(
            image_uri=image_uri,
            command=tarball_command(module),
            role=job_role_arn,
            instance_type=params.processing_instance_type,
            instance_count=params.processing_instance_count,
            base_job_name=base_job_name,
            volume_kms_key=volume_kms_key,
            output_kms_key=output_kms_key,
            network_config=network_config,
            sagemaker_session=session,
        )

    def output(name: str, bucket_prefix: list[Any] | None = None) -> ProcessingOutput:
        return ProcessingOutput(
            output_name=name,
            source=f"{PROCESSING}/output/{name}",
            destination=Join(on="/", values=[*(bucket_prefix or run_prefix), name]),
        )

    preprocess = ProcessingStep(
        name="PreprocessData",
        step_args=processor(f"{pipeline_name}-preprocess", "preprocess").run(
            code=code.preprocess_code,
            inputs=[ProcessingInput(source=params.input_data_url, destination=f"{PROCESSING}/input/data")],
            outputs=[output(name) for name in ("train", "validation", "test", "artifacts", "baseline")],
            arguments=["--target-column", params.target_column],
        ),
        cache_config=cache,
        retry_policies=retries,
    )
    split = preprocess.properties.ProcessingOutputConfig.Outputs
    reports_prefix = ["s3:/", reports_bucket, pipeline_name, ExecutionVariables.PIPELINE_EXECUTION_ID]

    data_quality = None
    if data_quality_baseline:
        data_quality = QualityCheckStep(
            name=DATA_QUALITY_STEP,
            quality_check_config=DataQualityCheckConfig(
                # A file, not the "baseline" prefix: baseline.json sits in the same folder.
                baseline_dataset=Join(on="/", values=[split["baseline"].S3Output.S3Uri, BASELINE_FEATURES_FILE]),
                dataset_format=DatasetFormat.csv(header=True),
                output_s3_uri=Join(on="/", values=[*reports_prefix, "data-quality-baseline"]),
            ),
            check_job_config=CheckJobConfig(
                role=job_role_arn,
                instance_count=params.processing_instance_count,
                instance_type=params.processing_instance_type,
                volume_kms_key=volume_kms_key,
                output_kms_key=output_kms_key,
                base_job_name=f"{pipeline_name}-baseline",
                sagemaker_session=session,
                network_config=network_config,
            ),
            # Nothing to check against yet: each run computes the baseline of the data its model is
            # trained on, and the registered package carries it (BaselineUsedForDriftCheck* are then
            # the calculated files). Checking new training data against the last approved package's
            # baseline would be skip_check=False with model_package_group_name.
            skip_check=True,
            register_new_baseline=True,
            model_package_group_name=registry.model_package_group_name,
            cache_config=cache,
        )

    estimator = SKLearn(
        entry_point="train.py",
        source_dir=code.train_source_tarball,
        framework_version=SKLEARN_VERSION,
        py_version="py3",
        image_uri=image_uri,
        role=job_role_arn,
        instance_type=params.training_instance_type,
        instance_count=1,  # scikit-learn trains on one instance
        base_job_name=f"{pipeline_name}-train",
        hyperparameters={**DEFAULT_HYPERPARAMETERS, "target-column": params.target_column},
        metric_definitions=METRIC_DEFINITIONS,
        enable_sagemaker_metrics=True,
        use_spot_instances=True,
        max_run=max_run_seconds,
        max_wait=max_wait_seconds,
        checkpoint_s3_uri=Join(on="/", values=[*run_prefix, "checkpoints"]),
        output_path=Join(on="/", values=[*run_prefix, "model"]),
        volume_kms_key=volume_kms_key,
        output_kms_key=output_kms_key,
        subnets=list(network.subnet_ids),
        security_group_ids=list(network.security_group_ids),
        encrypt_inter_container_traffic=True,
        disable_profiler=True,
        sagemaker_session=session,
    )
    channels = {
        name: TrainingInput(s3_data=split[name].S3Output.S3Uri, content_type="text/csv")
        for name in ("train", "validation")
    }
    channels["preprocessor"] = TrainingInput(s3_data=split["artifacts"].S3Output.S3Uri)

    if tuning is None:
        train = TrainingStep(
            name="TrainModel", step_args=estimator.fit(inputs=channels), cache_config=cache, retry_policies=retries
        )
        model_data = train.properties.ModelArtifacts.S3ModelArtifacts
    else:
        tuner = HyperparameterTuner(
            estimator=estimator,
            objective_metric_name="validation:accuracy",
            objective_type="Maximize",
            hyperparameter_ranges=TUNING_RANGES,
            metric_definitions=METRIC_DEFINITIONS,
            strategy="Bayesian",
            max_jobs=tuning.max_jobs,
            max_parallel_jobs=tuning.max_parallel_jobs,
            early_stopping_type="Auto" if tuning.early_stopping else "Off",
            base_tuning_job_name=f"{pipeline_name[:20]}-tune",
        )
        train = TuningStep(
            name="TuneModel", step_args=tuner.fit(inputs=channels), cache_config=cache, retry_policies=retries
        )
        # The best job's artifact, under the output path this execution's tuning jobs write to.
        model_data = Join(
            on="/",
            values=[*run_prefix, "model", train.properties.BestTrainingJob.TrainingJobName, "output", "model.tar.gz"],
        )

    evaluation_report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        name="EvaluateModel",
        step_args=processor(f"{pipeline_name}-evaluate", "evaluate").run(
            code=code.evaluate_code,
            inputs=[
                ProcessingInput(source=model_data, destination=f"{PROCESSING}/model"),
                ProcessingInput(source=split["test"].S3Output.S3Uri, destination=f"{PROCESSING}/test"),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="evaluation",
                    source=f"{PROCESSING}/evaluation",
                    destination=Join(on="/", values=[*reports_prefix, "evaluation"]),
                )
            ],
            arguments=["--target-column", params.target_column],
        ),
        property_files=[evaluation_report],
        cache_config=cache,
        retry_policies=retries,
    )

    # From the steps' properties, so the links stay right when a step's result comes from the cache.
    evaluation_json = Join(
        on="/", values=[evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"]
    )
    baseline_json = Join(on="/", values=[split["baseline"].S3Output.S3Uri, "baseline.json"])
    profile = MetricsSource(s3_uri=baseline_json, content_type="application/json")
    evaluation = MetricsSource(s3_uri=evaluation_json, content_type="application/json")
    if data_quality is None:
        model_metrics = ModelMetrics(model_statistics=evaluation)
        # The preprocessing step's feature profile: what drift checks compare live traffic with.
        drift_check_baselines = DriftCheckBaselines(model_data_statistics=profile)
    else:
        # Model Monitor reads DriftCheckBaselines.ModelDataQuality as one statistics + constraints pair
        # of its own format (a later QualityCheckStep fetches it from the latest approved package), so
        # the pair takes that slot; the platform's profile stays registered, as the model's data statistics.
        monitor = data_quality.properties
        model_metrics = ModelMetrics(model_statistics=evaluation, model_data_statistics=profile)
        drift_check_baselines = DriftCheckBaselines(
            model_data_statistics=MetricsSource(
                s3_uri=monitor.BaselineUsedForDriftCheckStatistics, content_type="application/json"
            ),
            model_data_constraints=MetricsSource(
                s3_uri=monitor.BaselineUsedForDriftCheckConstraints, content_type="application/json"
            ),
        )
    model = Model(
        image_uri=image_uri,
        model_data=model_data,
        # train.py packs the handlers into model.tar.gz: each package version serves with its own code.
        env={"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": SERVING_CODE_DIR},
        # Registration carries no role: whoever deploys the package picks the model execution role.
        role=job_role_arn,
        sagemaker_session=session,
    )
    register = ModelStep(
        name=REGISTER_STEP,
        step_args=model.register(
            content_types=CONTENT_TYPES,
            response_types=CONTENT_TYPES,
            inference_instances=list(registry.inference_instance_types),
            transform_instances=list(registry.transform_instance_types),
            model_package_group_name=registry.model_package_group_name,
            approval_status=params.approval_status,
            model_metrics=model_metrics,
            drift_check_baselines=drift_check_baselines,
        ),
        retry_policies=[p for p in retries if isinstance(p, StepRetryPolicy)],  # no job behind it
    )
    fail = FailStep(
        name="FailOnLowAccuracy",
        error_message=Join(on=" ", values=["Model accuracy is below the threshold", params.accuracy_threshold]),
    )
    check = ConditionStep(
        name="CheckAccuracy",
        conditions=[
            ConditionGreaterThanOrEqualTo(
                left=JsonGet(step_name=evaluate.name, property_file=evaluation_report, json_path="metrics.accuracy.value"),
                right=params.accuracy_threshold,
            )
        ],
        if_steps=[register],
        else_steps=[fail],
    )
    return Pipeline(
        name=pipeline_name,
        parameters=params.all,
        steps=[preprocess, *([data_quality] if data_quality else []), train, evaluate, check],
        sagemaker_session=session,
    )


def definition_json(pipeline: Pipeline) -> str:
    """The pipeline definition as canonical JSON, free of the build region.

    SageMaker's ModelStep names its registration sub-step ``<name>-RegisterModel``;
    the platform's contract is one step called ``RegisterModel``. A quality check's Model Monitor
    analyzer image, which the SDK looks up for the build region, becomes ``${ModelMonitorImageUri}``.
    """
    definition = _region_neutral(json.loads(pipeline.definition()))
    for step in _walk_steps(definition["Steps"]):
        if step["Name"] == f"{REGISTER_STEP}-RegisterModel":
            step["Name"] = REGISTER_STEP
        if step["Type"] == "QualityCheck":
            app = step["Arguments"]["AppSpecification"]
            if app["ImageUri"] != _build_region_model_monitor_image():
                raise ValueError(f"step {step['Name']}: unexpected analyzer image {app['ImageUri']}")
            app["ImageUri"] = MODEL_MONITOR_IMAGE_PLACEHOLDER
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    if BUILD_REGION in text:
        raise ValueError(f"the definition still names the build region {BUILD_REGION}; pass region-neutral values")
    return text


def _region_neutral(value: Any) -> Any:
    """Replace the SDK's copies of the session region (model env, training hyperparameters).

    Also drops ``sagemaker_job_name``, which the SDK stamps with the build time in a tuning job's
    static hyperparameters; SageMaker names the jobs per execution anyway.
    """
    if isinstance(value, dict):
        return {
            key: (
                _REGION_PLACEHOLDERS[item]
                if key in ("SAGEMAKER_REGION", "sagemaker_region") and item in _REGION_PLACEHOLDERS
                else _region_neutral(item)
            )
            for key, item in value.items()
            if key != "sagemaker_job_name"
        }
    if isinstance(value, list):
        return [_region_neutral(item) for item in value]
    return value


# Hyperparameters are JSON-encoded strings; environment values are plain.
_REGION_PLACEHOLDERS = {BUILD_REGION: "${AWS::Region}", json.dumps(BUILD_REGION): json.dumps("${AWS::Region}")}


def _build_region_model_monitor_image() -> str:
    # What DefaultModelMonitor picks (the SDK's bundled table; no AWS call).
    return sagemaker.image_uris.retrieve(framework="model-monitor", region=BUILD_REGION)


def _walk_steps(steps: list[dict]) -> list[dict]:
    found = []
    for step in steps:
        found.append(step)
        arguments = step.get("Arguments", {})
        if step.get("Type") == "Condition":
            found += _walk_steps(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))
    return found


def _retry_policies() -> list:
    # Throttling and capacity shortages are transient: retry with backoff instead of failing the run.
    return [
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.THROTTLING, StepExceptionTypeEnum.SERVICE_FAULT],
            interval_seconds=10,
            backoff_rate=2.0,
            max_attempts=5,
        ),
        SageMakerJobStepRetryPolicy(
            exception_types=[
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
            ],
            interval_seconds=60,
            backoff_rate=2.0,
            max_attempts=3,
        ),
    ]


class _Parameters:
    """Run-time settings, overridable per execution (PascalCase, as SageMaker Projects name them)."""

    def __init__(self, defaults: PipelineDefaults) -> None:
        self.input_data_url = ParameterString("InputDataUrl", default_value=defaults.input_data_url)
        self.target_column = ParameterString("TargetColumn", default_value=defaults.target_column)
        self.processing_instance_type = ParameterString(
            "ProcessingInstanceType", default_value=defaults.processing_instance_type
        )
        self.processing_instance_count = ParameterInteger(
            "ProcessingInstanceCount", default_value=defaults.processing_instance_count
        )
        self.training_instance_type = ParameterString("TrainingInstanceType", default_value=defaults.training_instance_type)
        self.accuracy_threshold = ParameterFloat("AccuracyThreshold", default_value=defaults.accuracy_threshold)
        self.approval_status = ParameterString("ModelApprovalStatus", default_value=defaults.approval_status)

    @property
    def all(self) -> list:
        return list(vars(self).values())
