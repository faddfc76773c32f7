"""The batch-scoring SageMaker Pipeline, built offline and deterministically.

::

    TransformData (batch transform: InputDataUrl ─► ModelName ─► OutputDataUrl)

One transform job scores every headerless CSV file under ``InputDataUrl`` with an existing SageMaker
model (the stack creates it from the latest approved model package; the job inherits the model's
VPC configuration). Each input line goes to the serving handlers (``steps/inference.py``) as raw
features in training order without the target; the predicted label comes back as one line, which
SageMaker appends to the input line: ``<input-file>.out`` under ``OutputDataUrl`` holds
``feature_1,...,feature_n,label`` per input line.

Like the model-build pipeline (``pipeline.py``), ``get_batch_pipeline`` takes every name, key and
location as an argument and never calls AWS: build it with ``pipeline.offline_session`` and turn
it into JSON with ``pipeline.definition_json``. Deploy-time values are CloudFormation placeholders
(``${Name}``) for the stack's ``Fn::Sub``; run-time settings are pipeline parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_code.pipeline import _retry_policies
from sagemaker.transformer import Transformer
from sagemaker.workflow.parameters import ParameterInteger, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.steps import TransformStep

TRANSFORM_STEP = "TransformData"
CSV = "text/csv"


@dataclass(frozen=True)
class BatchSettings:
    """How the transform job runs; the names, defaults and allowed values are ``config.schema.BatchScoringConfig``'s,
    which validates them (SageMaker's limits included) before they get here.

    :param instance_type: default of the ``InstanceType`` pipeline parameter.
    :param instance_count: default of the ``InstanceCount`` pipeline parameter.
    :param max_payload_mb: largest request sent to the container, in MB; with ``MultiRecord``
        SageMaker packs as many CSV lines into each request as fit. Default: 6 (SageMaker's default).
    :param max_concurrent_transforms: parallel requests per instance. Default 0: left out of the
        request, so SageMaker asks the container's execution-parameters endpoint and otherwise sends
        one request at a time.
    """

    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_payload_mb: int = 6
    max_concurrent_transforms: int = 0


def get_batch_pipeline(
    *,
    session: PipelineSession,
    pipeline_name: str,
    model_name: str,
    input_data_url: str,
    output_data_url: str,
    volume_kms_key: str,
    output_kms_key: str,
    settings: BatchSettings = BatchSettings(),
) -> Pipeline:
    """Build the batch-scoring pipeline.

    :param session: from ``pipeline.offline_session`` (its default bucket goes unused: every
        location is given).
    :param model_name: default of the ``ModelName`` parameter: the SageMaker model that scores.
    :param input_data_url: default of ``InputDataUrl``: S3 prefix whose objects are all scored.
    :param output_data_url: default of ``OutputDataUrl``: where ``<input-file>.out`` is written;
        a later run with the same URL replaces it.
    :param volume_kms_key: key of the instances' storage volumes.
    :param output_kms_key: key of the results.
    :param settings: instance and request settings. Default: ``BatchSettings()``.
    """
    model = ParameterString("ModelName", default_value=model_name)
    input_data = ParameterString("InputDataUrl", default_value=input_data_url)
    output_data = ParameterString("OutputDataUrl", default_value=output_data_url)
    instance_type = ParameterString("InstanceType", default_value=settings.instance_type)
    instance_count = ParameterInteger("InstanceCount", default_value=settings.instance_count)

    transformer = Transformer(
        model_name=model,
        instance_count=instance_count,
        instance_type=instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=output_data,
        output_kms_key=output_kms_key,
        accept=CSV,
        max_concurrent_transforms=settings.max_concurrent_transforms or None,  # the SDK leaves None out
        max_payload=settings.max_payload_mb,
        # Never in the definition (SageMaker names the job); set so the SDK need not describe the model.
        base_transform_job_name=f"{pipeline_name}-transform",
        sagemaker_session=session,
        volume_kms_key=volume_kms_key,
    )
    transform = TransformStep(
        name=TRANSFORM_STEP,
        step_args=transformer.transform(
            data=input_data,
            data_type="S3Prefix",
            content_type=CSV,
            split_type="Line",
            join_source="Input",
        ),
        retry_policies=_retry_policies(),
    )
    return Pipeline(
        name=pipeline_name,
        parameters=[model, input_data, output_data, instance_type, instance_count],
        steps=[transform],
        sagemaker_session=session,
    )
