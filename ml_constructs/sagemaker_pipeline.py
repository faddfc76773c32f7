"""``AWS::SageMaker::Pipeline`` from a definition whose deploy-time values are ``${Placeholders}``."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from ml_constructs.nag import acknowledge, acknowledge_wildcards

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
# Resolved by Fn::Sub itself (and, for S3-stored definitions, by these cdk.Aws attributes).
_PSEUDO_ATTRIBUTES = {"AWS::AccountId": "ACCOUNT_ID", "AWS::Partition": "PARTITION", "AWS::Region": "REGION", "AWS::URLSuffix": "URL_SUFFIX"}
PSEUDO_PARAMETERS = set(_PSEUDO_ATTRIBUTES)
# A definition this long would crowd the 1 MB template; bigger ones need an S3 location.
INLINE_LIMIT_BYTES = 400_000
PIPELINE_EXECUTION_STATUS = "SageMaker Model Building Pipeline Execution Status Change"
PIPELINE_METRIC_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"


class SageMakerPipeline(Construct):
    """A SageMaker pipeline, its definition embedded through ``Fn::Sub``.

    :param pipeline_name: the pipeline's name (stable: schedules and people refer to it).
    :param definition: the definition JSON, with ``${Name}`` placeholders for deploy-time values.
    :param substitutions: a value (usually a token) for every placeholder that is not a pseudo parameter.
    :param role: the pipeline execution role.
    :param description: shown in Studio.
    :param large_definition_bucket: where a definition too long to embed (over ``inline_limit_bytes``)
        is written at deploy time, placeholders resolved. Default: none, and such a definition is
        a synth error. Use a bucket whose encryption IAM policies can grant (e.g. the CDK asset bucket).
    :param inline_limit_bytes: longest definition embedded in the template. Default: 400,000 bytes,
        which leaves room under CloudFormation's 1 MB template limit.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        pipeline_name: str,
        definition: str,
        substitutions: dict[str, str],
        role: iam.IRole,
        description: str,
        large_definition_bucket: s3.IBucket | None = None,
        inline_limit_bytes: int = INLINE_LIMIT_BYTES,
    ) -> None:
        super().__init__(scope, id_)
        placeholders = set(PLACEHOLDER.findall(definition)) - PSEUDO_PARAMETERS
        unmapped, unused = sorted(placeholders - set(substitutions)), sorted(set(substitutions) - placeholders)
        if unmapped or unused:
            raise ValueError(f"pipeline {pipeline_name}: placeholders without a value {unmapped}, values without a placeholder {unused}")
        self.pipeline_name = pipeline_name
        size = len(definition.encode())
        self.definition_in_s3 = size > inline_limit_bytes
        if self.definition_in_s3 and large_definition_bucket is None:
            raise ValueError(
                f"pipeline {pipeline_name}: the definition is {size} bytes, more than the {inline_limit_bytes} "
                "embedded in the template, and no large_definition_bucket was given"
            )
        variables = dict(sorted(substitutions.items()))
        if self.definition_in_s3:
            location = self._write_to_s3(definition, variables, large_definition_bucket)
        else:
            # A literal Fn::Sub: cdk.Fn.sub would tokenize the whole definition (1.5 s of synth).
            location = {"PipelineDefinitionBody": {"Fn::Sub": [definition, variables]}}
        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=pipeline_name,
            pipeline_description=description,
            role_arn=role.role_arn,
            pipeline_definition=location,
        )
        if self.definition_in_s3:
            self.resource.node.add_dependency(self.node.find_child("Definition"))
        self.pipeline_arn = cdk.Stack.of(self).format_arn(service="sagemaker", resource="pipeline", resource_name=pipeline_name.lower())

    def _write_to_s3(self, definition: str, variables: dict[str, str], bucket: s3.IBucket) -> dict:
        """Write the definition, placeholders resolved at deploy time, to a content-addressed key."""
        prefix = f"pipeline-definitions/{self.pipeline_name}/"
        name = f"{hashlib.sha256(definition.encode()).hexdigest()[:16]}.json"
        # Each placeholder becomes its own deploy-time value; the body itself ships in the asset.
        values = {**variables, **{p: getattr(cdk.Aws, attribute) for p, attribute in _PSEUDO_ATTRIBUTES.items()}}
        resolved = PLACEHOLDER.sub(lambda m: values[m.group(1)], definition)
        deployment = s3_deployment.BucketDeployment(
            self,
            "Definition",
            destination_bucket=bucket,
            destination_key_prefix=prefix,
            sources=[s3_deployment.Source.data(name, resolved)],
            prune=False,
            retain_on_delete=True,
            memory_limit=256,
        )
        # CDK's own copy handler, with CDK's role: the basic Lambda execution policy, read on the source
        # asset and read/write on the destination bucket's objects (CDK ignores the key prefix here).
        reason = (
            "CDK's BucketDeployment handler, created only for pipeline definitions too long to embed in the "
            "template; it runs during deployment only"
        )
        synthesizer_bucket = cdk.Fn.sub(cdk.DefaultStackSynthesizer.DEFAULT_FILE_ASSETS_BUCKET_NAME.replace("${Qualifier}", cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER))
        acknowledge_wildcards(
            deployment.handler_role,
            resources=[bucket.arn_for_objects(f"{prefix}*"), bucket.arn_for_objects("*"), f"arn:{cdk.Aws.PARTITION}:s3:::{synthesizer_bucket}/*"],
            actions=["s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*"],
            reason=reason,
        )
        acknowledge(
            deployment.handler_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            reason,
        )
        # The handler's runtime is whatever this CDK version ships; it runs only during deployment.
        acknowledge(deployment.handler_role.node.scope, "AwsSolutions-L1", reason)
        return {"PipelineDefinitionS3Location": {"Bucket": bucket.bucket_name, "Key": prefix + name}}

    def start_on_schedule(
        self, id_: str, *, expression: str, role: iam.IRole, description: str, parameters: dict[str, str] | None = None
    ) -> scheduler.CfnSchedule:
        """An EventBridge Scheduler schedule starting this pipeline (``role`` may start it) with ``parameters``."""
        return scheduler.CfnSchedule(
            self,
            id_,
            description=description,
            schedule_expression=expression,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.pipeline_arn,
                role_arn=role.role_arn,
                sage_maker_pipeline_parameters=scheduler.CfnSchedule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[
                        scheduler.CfnSchedule.SageMakerPipelineParameterProperty(name=name, value=value)
                        for name, value in sorted((parameters or {}).items())
                    ]
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=3),
            ),
        )

    def start_on_event(
        self,
        id_: str,
        *,
        event_pattern: dict,
        role: iam.IRole,
        description: str,
        parameters: dict[str, str] | None = None,
        scope: Construct | None = None,
    ) -> events.CfnRule:
        """An EventBridge rule (in ``scope``, default: here) starting this pipeline when ``event_pattern`` matches.

        An L1 rule: CDK's rule targets cannot carry SageMaker pipeline parameters.
        """
        return events.CfnRule(
            scope or self,
            id_,
            description=description,
            event_pattern=event_pattern,
            targets=[
                events.CfnRule.TargetProperty(
                    id="Pipeline",
                    arn=self.pipeline_arn,
                    role_arn=role.role_arn,
                    sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                        pipeline_parameter_list=[
                            events.CfnRule.SageMakerPipelineParameterProperty(name=name, value=value)
                            for name, value in sorted((parameters or {}).items())
                        ]
                    ),
                )
            ],
        )

    # -- metrics: keyword arguments are cloudwatch.MetricOptions over the defaults (Sum over 5 minutes) --

    def metric(self, metric_name: str, **options) -> cloudwatch.Metric:
        """An execution metric of this pipeline (``ExecutionStarted|Succeeded|Failed|Stopped|Duration``)."""
        return cloudwatch.Metric(
            namespace=PIPELINE_METRIC_NAMESPACE, metric_name=metric_name, dimensions_map={"PipelineName": self.pipeline_name},
            **{"statistic": "Sum", "period": cdk.Duration.minutes(5), **options},
        )  # fmt: skip

    def metric_executions_started(self, **options) -> cloudwatch.Metric:
        return self.metric("ExecutionStarted", **options)

    def metric_executions_succeeded(self, **options) -> cloudwatch.Metric:
        return self.metric("ExecutionSucceeded", **options)

    def metric_executions_failed(self, **options) -> cloudwatch.Metric:
        return self.metric("ExecutionFailed", **options)

    def metric_execution_duration(self, **options) -> cloudwatch.Metric:
        """Milliseconds an execution took. Default statistic: ``Maximum``."""
        return self.metric("ExecutionDuration", **{"statistic": "Maximum", **options})

    def on_execution_status_change(self, id_: str, *, statuses: list[str], description: str) -> events.Rule:
        """An EventBridge rule matching this pipeline's executions entering one of ``statuses``."""
        return events.Rule(
            self,
            id_,
            description=description,
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[PIPELINE_EXECUTION_STATUS],
                detail={"pipelineArn": [self.pipeline_arn], "currentPipelineExecutionStatus": statuses},
            ),
        )


def framework_image_uri(scope: Construct, *, framework: str, version: str, image_scope: str = "inference") -> str:
    """Region-neutral image URI of a SageMaker framework container.

    The registry account differs per region; the SageMaker SDK's bundled table becomes a
    CloudFormation mapping, so the same template works in every region it lists.
    """
    account, repository, tag = _framework_registry(scope, framework, version, image_scope)
    stack = cdk.Stack.of(scope)
    return f"{account}.dkr.ecr.{stack.region}.{stack.url_suffix}/{repository}:{tag}"


def framework_repository_arn(scope: Construct, *, framework: str, version: str, image_scope: str = "inference") -> str:
    """ARN of the ECR repository holding a SageMaker framework container (for pull permissions)."""
    account, repository, _ = _framework_registry(scope, framework, version, image_scope)
    return cdk.Stack.of(scope).format_arn(service="ecr", account=account, resource="repository", resource_name=repository)


def model_monitor_image_uri(scope: Construct) -> str:
    """Region-neutral URI of SageMaker Model Monitor's analyzer image (``${ModelMonitorImageUri}``).

    Like ``framework_image_uri``: the registry account per region comes from the SageMaker SDK's
    bundled table (``image_uri_config/model-monitor.json``) as a CloudFormation mapping. Untagged,
    exactly as the SDK names it.
    """
    account, repository = _model_monitor_registry(scope)
    stack = cdk.Stack.of(scope)
    return f"{account}.dkr.ecr.{stack.region}.{stack.url_suffix}/{repository}"


def model_monitor_repository_arn(scope: Construct) -> str:
    """ARN of the ECR repository holding Model Monitor's analyzer image (for pull permissions)."""
    account, repository = _model_monitor_registry(scope)
    return cdk.Stack.of(scope).format_arn(service="ecr", account=account, resource="repository", resource_name=repository)


def _framework_registry(scope: Construct, framework: str, version: str, image_scope: str) -> tuple[str, str, str]:
    registries, repository, tag = _framework_image(framework, version, image_scope)
    account = _registry_account(scope, f"{framework.title()}ImageRegistries", registries, f"{framework} {version} image")
    return account, repository, tag


def _model_monitor_registry(scope: Construct) -> tuple[str, str]:
    # One unversioned image (the SDK's table has a single version, "").
    (entry,) = _sdk_image_table("model-monitor")["versions"].values()
    account = _registry_account(scope, "ModelMonitorImageRegistries", entry["registries"], "Model Monitor analyzer image")
    return account, entry["repository"]


def _registry_account(scope: Construct, mapping_id: str, registries: dict[str, str], image: str) -> str:
    """The registry account for the stack's region, from one CfnMapping per stack (region -> account)."""
    stack = cdk.Stack.of(scope)
    mapping = stack.node.try_find_child(mapping_id) or cdk.CfnMapping(
        stack, mapping_id, mapping={region: {"account": account} for region, account in sorted(registries.items())}
    )
    if not cdk.Token.is_unresolved(stack.region) and stack.region not in registries:
        raise ValueError(f"no {image} in region {stack.region}; available in: {', '.join(sorted(registries))}")
    return mapping.find_in_map(stack.region, "account")


@functools.lru_cache(maxsize=None)
def _sdk_image_table(name: str) -> dict:
    # Read the SDK's table from its file: importing the SDK here would cost a second of synth.
    spec = importlib.util.find_spec("sagemaker")
    assert spec is not None and spec.submodule_search_locations, "the SageMaker Python SDK is not installed"
    return json.loads((Path(spec.submodule_search_locations[0]) / "image_uri_config" / f"{name}.json").read_text())


def _framework_image(framework: str, version: str, image_scope: str) -> tuple[dict[str, str], str, str]:
    table = _sdk_image_table(framework)
    entry = table[image_scope]["versions"][version]
    processor = "cpu"
    py_version = entry["py_versions"][0]
    return entry["registries"], entry["repository"], f"{version}-{processor}-{py_version}"

