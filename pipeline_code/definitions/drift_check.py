"""The drift-check pipeline's definition as the monitoring stack embeds it (``drift_pipeline.get_drift_pipeline``)."""

from __future__ import annotations

from pathlib import Path

from config.schema import DriftCheckConfig
from pipeline_code.definitions.cache import PIPELINE_CODE, cached, role_arn_placeholder, subnet_placeholders

_BUILDER_SOURCES = [Path(__file__).resolve(), PIPELINE_CODE / "drift_pipeline.py"]

# What the stack maps each placeholder to (besides SubnetId0..n-1 and the AWS:: pseudo parameters).
PLACEHOLDERS = {
    "JobRoleName": "name of the drift check job's role (the foundation's monitoring job role)",
    "SklearnImageUri": "scikit-learn 1.2-1 processing image",
    "CodeBucket": "bucket of the drift check's code tarball asset",
    "DriftCheckCodeKey": "object key of the drift check's code tarball asset (the job unpacks it and runs the package)",
    "SecurityGroupId": "workload security group",
    "VolumeKmsKeyArn": "key of the job's storage volume",
    "OutputKmsKeyArn": "key the reports are written with (the reports bucket's key)",
    "ReportsBucket": "bucket of the drift reports",
    "CaptureBucket": "bucket the endpoints capture to (default of CaptureUrl)",
    "EndpointName": "endpoint to check (default of EndpointName)",
    "ModelPackageArn": "model package version the endpoint serves (default of ModelPackageArn)",
}


def build_drift_definition(
    *,
    pipeline_name: str,
    subnet_count: int,
    settings: DriftCheckConfig,
    capture_prefix: str,
    reports_prefix: str,
    max_runtime_seconds: int = 3600,
) -> str:
    """The definition; placeholders: ``PLACEHOLDERS``, ``SubnetId0`` .. ``SubnetId<n-1>``, ``AWS::Partition``,
    ``AWS::AccountId``, ``AWS::Region``.

    :param settings: the environment's ``monitoring.drift_check`` (instance, namespace, thresholds).
    :param capture_prefix: the endpoints' capture prefix in ``${CaptureBucket}``: ``CaptureUrl`` defaults
        to ``s3://${CaptureBucket}/<capture_prefix>`` (the endpoint configs' DestinationS3Uri).
    :param reports_prefix: reports go to ``s3://${ReportsBucket}/<reports_prefix>/<endpoint>/<execution id>/``.
    :param max_runtime_seconds: the job's time limit. Default: one hour.
    """
    if subnet_count < 1:
        raise ValueError(f"subnet_count must be at least 1, got {subnet_count}")
    from pipeline_code import drift_pipeline, pipeline  # the SDK: imported only when building

    capture = capture_prefix.strip("/")
    reports = reports_prefix.strip("/")
    built = drift_pipeline.get_drift_pipeline(
        session=pipeline.offline_session(default_bucket="${ReportsBucket}"),
        pipeline_name=pipeline_name,
        job_role_arn=role_arn_placeholder("JobRoleName"),
        image_uri="${SklearnImageUri}",
        code_url="s3://${CodeBucket}/${DriftCheckCodeKey}",
        network=pipeline.JobNetwork(
            subnet_ids=subnet_placeholders(subnet_count), security_group_ids=["${SecurityGroupId}"]
        ),
        volume_kms_key="${VolumeKmsKeyArn}",
        output_kms_key="${OutputKmsKeyArn}",
        reports_url=f"s3://${{ReportsBucket}}/{reports}" if reports else "s3://${ReportsBucket}",
        capture_url_default=f"s3://${{CaptureBucket}}/{capture}" if capture else "s3://${CaptureBucket}",
        endpoint_name_default="${EndpointName}",
        model_package_arn_default="${ModelPackageArn}",
        settings=drift_pipeline.DriftCheckSettings(
            instance_type=settings.instance_type,
            metric_namespace=settings.metric_namespace,
            psi_threshold=settings.psi_threshold,
            ks_threshold=settings.ks_threshold,
            max_runtime_seconds=max_runtime_seconds,
        ),
    )
    return pipeline.definition_json(built)


cached_drift_definition = cached(build_drift_definition, sources=_BUILDER_SOURCES)
