"""The batch-scoring pipeline's definition as the serving stack embeds it (``${Placeholders}`` for deploy-time values)."""

from __future__ import annotations

from pathlib import Path

from config.schema import BatchScoringConfig
from pipeline_code.definitions.cache import PIPELINE_CODE, cached

_BUILDER_SOURCES = [Path(__file__).resolve(), PIPELINE_CODE / "batch_pipeline.py"]


def build_batch_definition(*, pipeline_name: str, input_prefix: str, output_prefix: str, settings: BatchScoringConfig) -> str:
    """The definition; placeholders: ``ModelName``, ``DataBucket``, ``VolumeKmsKeyArn``, ``OutputKmsKeyArn``."""
    from pipeline_code import batch_pipeline, pipeline  # the SDK: imported only when building

    built = batch_pipeline.get_batch_pipeline(
        session=pipeline.offline_session(default_bucket="${DataBucket}"),
        pipeline_name=pipeline_name,
        model_name="${ModelName}",
        input_data_url=f"s3://${{DataBucket}}/{input_prefix}",
        output_data_url=f"s3://${{DataBucket}}/{output_prefix}",
        volume_kms_key="${VolumeKmsKeyArn}",
        output_kms_key="${OutputKmsKeyArn}",
        settings=batch_pipeline.BatchSettings(
            instance_type=settings.instance_type,
            instance_count=settings.instance_count,
            max_payload_mb=settings.max_payload_mb,
            max_concurrent_transforms=settings.max_concurrent_transforms,
        ),
    )
    return pipeline.definition_json(built)


cached_batch_definition = cached(build_batch_definition, sources=_BUILDER_SOURCES)
