"""The drift-check SageMaker Pipeline, built offline and deterministically.

::

    CheckDrift (processing: the steps/drift_check package)
      reads   CaptureUrl/<EndpointName>/<variant>/yyyy/mm/dd/hh/*.jsonl   (only the window's hour folders)
              the drift-check baseline registered with ModelPackageArn  (DescribeModelPackage, then S3)
      writes  drift-report.json + drift-report.html ─► <reports_url>/<EndpointName>/<execution id>/
              CloudWatch metrics in the settings' namespace, dimension EndpointName

One processing job runs the ``steps/drift_check`` package, meant to be started every hour: the check lists
and reads the capture objects itself (a ProcessingInput would download the endpoint's whole,
ever-growing capture prefix) and finds the baseline through the model package, so the job has no
input but its code. Its window is the ``WindowHours`` before the job starts.

Like the model-build pipeline (``pipeline.py``), ``get_drift_pipeline`` takes every name, key and
location as an argument and never calls AWS: build it with ``pipeline.offline_session`` and turn
it into JSON with ``pipeline.definition_json``. Deploy-time values are CloudFormation placeholders
(``${Name}``) for the stack's ``Fn::Sub``; run-time settings are pipeline parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_code.pipeline import PROCESSING, JobNetwork, _retry_policies, tarball_command
from sagemaker.processing import ProcessingOutput, ScriptProcessor
from sagemaker.workflow.execution_variables import ExecutionVariables
from sagemaker.workflow.functions import Join
from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.steps import ProcessingStep

DRIFT_STEP = "CheckDrift"
REPORT_OUTPUT = "report"
REPORT_DIR = f"{PROCESSING}/report"
DEFAULT_WINDOW_HOURS = 1  # the script's own default: the hour before the job starts
# The script's boto3 clients need a region; set explicitly rather than relying on what the container
# inherits. AWS_REGION, if SageMaker sets it, takes precedence and names the same region.
REGION_ENVIRONMENT = {"AWS_DEFAULT_REGION": "${AWS::Region}"}
# CreateProcessingJob's StoppingCondition.MaxRuntimeInSeconds range.
MAX_RUNTIME_LIMIT_SECONDS = 777_600


@dataclass(frozen=True)
class DriftCheckSettings:
    """How the drift check runs; the names, defaults and allowed values are
    ``config.schema.DriftCheckConfig``'s, which validates them before they get here.

    :param instance_type: default of the ``InstanceType`` pipeline parameter (a processing instance type).
    :param metric_namespace: CloudWatch namespace of the metrics; fixed at build time, so the job
        role's ``cloudwatch:namespace`` condition can name it.
    :param psi_threshold: default of ``PsiThreshold``: a feature (or the predictions) drifted above this PSI.
    :param ks_threshold: default of ``KsThreshold``: a numeric feature drifted above this KS distance.
    :param max_runtime_seconds: the job's time limit. Default: one hour.
    """

    instance_type: str
    metric_namespace: str
    psi_threshold: float
    ks_threshold: float
    max_runtime_seconds: int = 3600

    def __post_init__(self) -> None:
        # Not a configuration key: checked here, its only way in.
        if not 1 <= self.max_runtime_seconds <= MAX_RUNTIME_LIMIT_SECONDS:
            raise ValueError(f"max_runtime_seconds must be 1-{MAX_RUNTIME_LIMIT_SECONDS}, got {self.max_runtime_seconds}")


def get_drift_pipeline(
    *,
    session: PipelineSession,
    pipeline_name: str,
    job_role_arn: str,
    image_uri: str,
    code_url: str,
    network: JobNetwork,
    volume_kms_key: str,
    output_kms_key: str,
    reports_url: str,
    capture_url_default: str,
    endpoint_name_default: str,
    model_package_arn_default: str,
    settings: DriftCheckSettings,
) -> Pipeline:
    """Build the drift-check pipeline.

    :param session: from ``pipeline.offline_session`` (its default bucket goes unused: every
        location is given).
    :param job_role_arn: the processing job's role (ARN-shaped, so the SDK does not look it up).
    :param image_uri: the scikit-learn processing image (numpy, scipy, boto3).
    :param code_url: S3 URI of the drift check's code tarball (the ``drift_check`` package and
        ``stepkit.py``); the job unpacks it and runs ``python3 -m drift_check``.
    :param network: subnets and security groups of the job; traffic between instances is encrypted.
        Network isolation stays off: the script calls S3, SageMaker and CloudWatch.
    :param volume_kms_key: key of the instance's storage volume.
    :param output_kms_key: key the reports are written with.
    :param reports_url: S3 prefix of the reports: ``<reports_url>/<EndpointName>/<execution id>/``.
    :param capture_url_default: default of ``CaptureUrl``: the endpoints' data-capture destination
        (``DataCaptureConfig.DestinationS3Uri``), under which SageMaker writes ``<endpoint>/...``.
    :param endpoint_name_default: default of ``EndpointName``.
    :param model_package_arn_default: default of ``ModelPackageArn``: the served package version,
        whose registered drift-check baseline is the reference.
    :param settings: instance, namespace, thresholds and time limit.
    """
    endpoint_name = ParameterString("EndpointName", default_value=endpoint_name_default)
    model_package_arn = ParameterString("ModelPackageArn", default_value=model_package_arn_default)
    capture_url = ParameterString("CaptureUrl", default_value=capture_url_default)
    window_hours = ParameterInteger("WindowHours", default_value=DEFAULT_WINDOW_HOURS)
    psi_threshold = ParameterFloat("PsiThreshold", default_value=settings.psi_threshold)
    ks_threshold = ParameterFloat("KsThreshold", default_value=settings.ks_threshold)
    instance_type = ParameterString("InstanceType", default_value=settings.instance_type)

    processor = ScriptProcessor(  # SKLearnProcessor without its region lookup: the image URI is an argument
        image_uri=image_uri,
        command=tarball_command("drift_check"),
        role=job_role_arn,
        instance_type=instance_type,
        instance_count=1,  # the script is single-process
        base_job_name=f"{pipeline_name}-drift",
        volume_kms_key=volume_kms_key,
        output_kms_key=output_kms_key,
        max_runtime_in_seconds=settings.max_runtime_seconds,
        env=dict(REGION_ENVIRONMENT),
        network_config=network.network_config(),
        sagemaker_session=session,
    )
    check = ProcessingStep(
        name=DRIFT_STEP,
        step_args=processor.run(
            code=code_url,
            outputs=[
                ProcessingOutput(
                    output_name=REPORT_OUTPUT,
                    source=REPORT_DIR,
                    destination=Join(
                        on="/", values=[reports_url.rstrip("/"), endpoint_name, ExecutionVariables.PIPELINE_EXECUTION_ID]
                    ),
                )
            ],
            arguments=[
                "--capture-s3-uri", capture_url,
                "--endpoint-name", endpoint_name,
                "--model-package-arn", model_package_arn,
                # Container arguments are strings: numbers are converted when the step runs.
                "--window-hours", window_hours.to_string(),
                "--psi-threshold", psi_threshold.to_string(),
                "--ks-threshold", ks_threshold.to_string(),
                "--metric-namespace", settings.metric_namespace,
                "--output-dir", REPORT_DIR,
            ],  # fmt: skip
        ),
        retry_policies=_retry_policies(),
    )
    return Pipeline(
        name=pipeline_name,
        parameters=[endpoint_name, model_package_arn, capture_url, window_hours, psi_threshold, ks_threshold, instance_type],
        steps=[check],
        sagemaker_session=session,
    )
