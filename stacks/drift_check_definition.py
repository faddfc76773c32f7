"""The drift-check pipeline's definition as a stack embeds it (``${Placeholders}`` for deploy-time values).

Takes plain values, not a configuration model: the defaults are ``DriftCheckSettings``'s. The
SageMaker SDK (1.5 s to import) is imported only when a definition is built, and
``cached_drift_definition`` skips even that while nothing the definition depends on has changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stacks.definition_cache import cached_build, role_arn_placeholder, subnet_placeholders
from stacks.foundation_stack import CAPTURE_PREFIX, DRIFT_REPORTS_PREFIX

_ROOT = Path(__file__).resolve().parent.parent
_BUILDER_SOURCES = [Path(__file__), _ROOT / "pipeline_code" / "pipeline.py", _ROOT / "pipeline_code" / "drift_pipeline.py"]

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
# What the stack maps each placeholder to (besides SubnetId0..n-1 and the AWS:: pseudo parameters).
PLACEHOLDERS = {
    "JobRoleName": "name of the drift check job's role (the foundation's monitoring job role)",
    "SklearnImageUri": "scikit-learn 1.2-1 processing image",
    "CodeBucket": "bucket of the drift_check.py asset",
    "DriftCheckScriptKey": "object key of the drift_check.py asset (its base name is the script name)",
    "SecurityGroupId": "workload security group",
    "VolumeKmsKeyArn": "key of the job's storage volume",
    "OutputKmsKeyArn": "key the reports are written with (the reports bucket's key)",
    "ReportsBucket": "bucket of the drift reports",
    "CaptureBucket": "bucket the endpoints capture to (default of CaptureUrl)",
    "EndpointName": "endpoint to check (default of EndpointName)",
    "ModelPackageArn": "model package version the endpoint serves (default of ModelPackageArn)",
}


def cached_drift_definition(*, cache_dir: Path | None, **arguments: Any) -> str:
    """``build_drift_definition(**arguments)``, reused from ``cache_dir`` while its inputs hold.

    The key covers the arguments, the builder's source and the SDK version, so a stale entry cannot
    be used; the build is deterministic, so a hit is byte-identical to a rebuild.
    """
    return cached_build(
        cache_dir=cache_dir, arguments=arguments, sources=_BUILDER_SOURCES, build=lambda: build_drift_definition(**arguments)
    )

def build_drift_definition(
    *,
    pipeline_name: str,
    subnet_count: int,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    metric_namespace: str = "MlPlatform/Drift",
    psi_threshold: float = 0.2,
    ks_threshold: float = 0.1,
    max_runtime_seconds: int = 3600,
    capture_prefix: str = CAPTURE_PREFIX,
    reports_prefix: str = DRIFT_REPORTS_PREFIX,
) -> str:
    """The definition; placeholders: ``PLACEHOLDERS``, ``SubnetId0`` .. ``SubnetId<n-1>``, ``AWS::Partition``,
    ``AWS::AccountId``, ``AWS::Region``.

    :param capture_prefix: the endpoints' capture prefix in ``${CaptureBucket}``: ``CaptureUrl`` defaults
        to ``s3://${CaptureBucket}/<capture_prefix>`` (the endpoint configs' DestinationS3Uri).
        Default: the foundation's ``CAPTURE_PREFIX``, which the serving stack captures to.
    :param reports_prefix: reports go to ``s3://${ReportsBucket}/<reports_prefix>/<endpoint>/<execution id>/``.
        Default: the foundation's ``DRIFT_REPORTS_PREFIX``, where the monitoring job role may write.
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
        script_url="s3://${CodeBucket}/${DriftCheckScriptKey}",
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
            instance_type=instance_type,
            metric_namespace=metric_namespace,
            psi_threshold=psi_threshold,
            ks_threshold=ks_threshold,
            max_runtime_seconds=max_runtime_seconds,
        ),
    )
    return pipeline.definition_json(built)
