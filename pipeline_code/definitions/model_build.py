"""The model-build pipeline's definition as the model-build stack embeds it (``pipeline.get_pipeline``)."""

from __future__ import annotations

from pathlib import Path

from config.schema import PipelineConfig
from pipeline_code.definitions.cache import cached, role_arn_placeholder, subnet_placeholders

_BUILDER_SOURCES = [Path(__file__).resolve()]


def build_definition(
    *,
    pipeline_name: str,
    model_package_group_name: str,
    settings: PipelineConfig,
    subnet_count: int,
    data_quality_baseline: bool = False,
) -> str:
    """The pipeline definition with ``${Placeholders}`` for every deploy-time value.

    :param data_quality_baseline: add the Model Monitor data-quality baseline step (for accounts that
        still have Model Monitor); the definition then also needs ``${ModelMonitorImageUri}``
        (``ml_constructs.sagemaker_pipeline.model_monitor_image_uri``). Default: off.
    """
    from pipeline_code import pipeline as model_build  # the SDK: imported only when building

    session = model_build.offline_session(default_bucket="${ArtifactBucket}")
    tuning = (
        model_build.TuningSettings(
            max_jobs=settings.tuning.max_jobs,
            max_parallel_jobs=settings.tuning.max_parallel_jobs,
            early_stopping=settings.tuning.early_stopping,
        )
        if settings.training_mode == "tune"
        else None
    )
    pipeline = model_build.get_pipeline(
        session=session,
        pipeline_name=pipeline_name,
        job_role_arn=role_arn_placeholder("JobRoleName"),
        artifact_bucket="${ArtifactBucket}",
        reports_bucket="${ReportsBucket}",
        volume_kms_key="${VolumeKmsKeyArn}",
        output_kms_key="${OutputKmsKeyArn}",
        network=model_build.JobNetwork(
            subnet_ids=subnet_placeholders(subnet_count), security_group_ids=["${SecurityGroupId}"]
        ),
        code=model_build.CodeLocations(
            preprocess_code="s3://${CodeBucket}/${PreprocessCodeKey}",
            evaluate_code="s3://${CodeBucket}/${EvaluateCodeKey}",
            train_source_tarball="s3://${CodeBucket}/${TrainSourceKey}",
        ),
        image_uri="${SklearnImageUri}",
        defaults=model_build.PipelineDefaults(
            input_data_url="s3://${DataBucket}/input/",
            target_column=settings.target_column,
            processing_instance_type=settings.processing_instance_type,
            processing_instance_count=settings.processing_instance_count,
            training_instance_type=settings.training_instance_type,
            accuracy_threshold=settings.accuracy_threshold,
            approval_status=settings.approval_status,
        ),
        registry=model_build.RegistrySettings(
            model_package_group_name=model_package_group_name,
            inference_instance_types=settings.inference_instance_types,
            transform_instance_types=settings.transform_instance_types,
        ),
        tuning=tuning,
        max_run_seconds=settings.max_run_minutes * 60,
        max_wait_seconds=settings.max_wait_minutes * 60,
        cache_days=settings.cache_days,
        data_quality_baseline=data_quality_baseline,
    )
    return model_build.definition_json(pipeline)


cached_definition = cached(build_definition, sources=_BUILDER_SOURCES)
