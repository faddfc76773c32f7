"""Foundation deployment unit: KMS keys, S3 buckets and one IAM role per duty.

Keys, buckets and roles live together because key policies name the roles and
the roles' policies name the keys: split across stacks, that is a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from constructs import Construct

from ml_constructs.buckets import SecureBucket
from ml_constructs.keys import PlatformKey
from ml_constructs.nag import acknowledge_in_packs, skip_checkov
from ml_constructs.network import PrivateNetwork
from ml_constructs.roles import SAGEMAKER, SAGEMAKER_METRIC_NAMESPACES, ApiCall, DutyRole
from ml_constructs.sagemaker_pipeline import framework_repository_arn, model_monitor_repository_arn

SCHEDULER = "scheduler.amazonaws.com"
EVENTS = "events.amazonaws.com"
SAGEMAKER_LOG_GROUPS = "/aws/sagemaker/"
MLFLOW_PREFIX = "mlflow/"
SKLEARN_VERSION = "1.2-1"  # the framework container the steps and models run in
# Data-bucket prefixes the model role reads requests from and writes results to.
ASYNC_INFERENCE_PREFIX = "async-inference/"
BATCH_SCORING_PREFIX = "batch-scoring/"
# Capture-bucket prefix endpoints write requests and responses to; reports-bucket prefix of drift reports.
CAPTURE_PREFIX = "data-capture/"
DRIFT_REPORTS_PREFIX = "drift/"
MODEL_MONITOR_REPORTS_PREFIX = "model-monitor/"


# -- What each role's duty calls (AWS documentation of the duty); tests evaluate the synthesized
# policies of every stack against these. Placeholders: see ``ApiCall``. -----------------------------

SM = "arn:aws:sagemaker:{region}:{account}"
LOGS = "arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker"
S3 = "arn:aws:s3:::"
RUN = "{prefix}-model-build/1a2b3c4d5e6f"  # <pipeline>/<execution id>/ in the models and reports buckets
PASS_TO_SAGEMAKER = {"iam:PassedToService": SAGEMAKER}
# What CreateProcessingJob/CreateTrainingJob carry for the pipeline's jobs (VpcConfig, volume and output keys).
VPC_JOB = {
    "sagemaker:VpcSubnets": "{subnet_ids}",
    "sagemaker:VpcSecurityGroupIds": ["{security_group}"],
    "sagemaker:VolumeKmsKey": "{models_key}",
    "sagemaker:OutputKmsKey": "{models_key}",
    "sagemaker:InterContainerTrafficEncryption": True,
}
# A tuning request as the SDK writes it: whether HyperParameterTuningResourceConfig.VolumeKmsKeyId fills
# sagemaker:VolumeKmsKey is not documented, so the check assumes the worst case, that it does not.
TUNING_JOB = {k: v for k, v in VPC_JOB.items() if k != "sagemaker:VolumeKmsKey"}
FOR_AWS_RESOURCE = {"kms:GrantIsForAWSResource": True}


def _in_vpc_calls() -> tuple[ApiCall, ...]:
    """SageMaker attaching a job or endpoint to the VPC with the role (Give SageMaker access to resources in your VPC)."""
    ec2 = "arn:aws:ec2:{region}:{account}"
    in_vpc = {"ec2:Vpc": "{vpc_arn}"}
    return (
        ApiCall("ec2:CreateNetworkInterface", f"{ec2}:network-interface/eni-0123456789abcdef0"),
        ApiCall("ec2:CreateNetworkInterface", f"{ec2}:subnet/{{subnet}}", in_vpc),
        ApiCall("ec2:CreateNetworkInterface", f"{ec2}:security-group/{{security_group}}", in_vpc),
        ApiCall("ec2:CreateNetworkInterfacePermission", f"{ec2}:network-interface/eni-0123456789abcdef0", in_vpc),
        ApiCall("ec2:DeleteNetworkInterface", f"{ec2}:network-interface/eni-0123456789abcdef0", in_vpc),
        *(ApiCall(f"ec2:Describe{what}", "*") for what in ("DhcpOptions", "NetworkInterfaces", "SecurityGroups", "Subnets", "Vpcs")),
    )


def _container_calls(log_group: str, namespace: str, repository: str = "{sklearn_repository}") -> tuple[ApiCall, ...]:
    """A SageMaker container run with the role: image pull, logs, metrics, encrypted volume (execution-role docs)."""
    stream = f"{LOGS}/{log_group}:log-stream:pipelines-1a2b3c4d5e6f-step-0123456789/algo-1-1700000000"
    return (
        ApiCall("ecr:GetAuthorizationToken", "*"),
        *(ApiCall(f"ecr:{a}", repository) for a in ("BatchCheckLayerAvailability", "BatchGetImage", "GetDownloadUrlForLayer")),
        ApiCall("logs:CreateLogGroup", f"{LOGS}/{log_group}"),
        ApiCall("logs:CreateLogStream", stream),
        ApiCall("logs:PutLogEvents", stream),
        ApiCall("logs:DescribeLogStreams", f"{LOGS}/{log_group}"),
        ApiCall("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": f"/aws/sagemaker/{namespace}"}),
        ApiCall("kms:CreateGrant", "{models_key}", FOR_AWS_RESOURCE),
        *_in_vpc_calls(),
    )


def _mlflow_client_calls(*actions: str) -> tuple[ApiCall, ...]:
    server = f"{SM}:mlflow-tracking-server/{{prefix}}-mlflow"
    return (
        *(ApiCall(f"sagemaker-mlflow:{a}", server, feature="mlflow") for a in actions),
        ApiCall("s3:PutObject", f"{S3}{{model_bucket}}/mlflow/1/0123456789abcdef/artifacts/model/model.pkl", feature="mlflow"),
        ApiCall("kms:GenerateDataKey", "{models_key}", feature="mlflow"),
    )


JOB_ROLE_CALLS = (
    *_container_calls("ProcessingJobs", "ProcessingJobs"),
    *_container_calls("TrainingJobs", "TrainingJobs"),
    ApiCall("s3:ListBucket", f"{S3}{{data_bucket}}", {"s3:prefix": "input/"}),
    ApiCall("s3:GetObject", f"{S3}{{data_bucket}}/input/churn.csv"),
    ApiCall("kms:Decrypt", "{data_key}"),
    ApiCall("s3:ListBucket", f"{S3}{{code_bucket}}", {"s3:prefix": "{preprocess_code_key}"}),
    ApiCall("s3:GetObject", f"{S3}{{code_bucket}}/{{preprocess_code_key}}"),
    ApiCall("s3:PutObject", f"{S3}{{model_bucket}}/{RUN}/train/train.csv"),
    ApiCall("s3:GetObject", f"{S3}{{model_bucket}}/{RUN}/train/train.csv"),
    ApiCall("s3:PutObject", f"{S3}{{model_bucket}}/{RUN}/model/pipelines-1a2b3c4d5e6f-TrainModel-x/output/model.tar.gz"),
    ApiCall("s3:PutObject", f"{S3}{{reports_bucket}}/{RUN}/evaluation/evaluation.json"),
    ApiCall("kms:GenerateDataKey", "{models_key}"),
    ApiCall("kms:Decrypt", "{models_key}"),
    *_mlflow_client_calls("CreateRun", "LogMetric", "LogParam", "LogModel"),
)
MODEL_ROLE_CALLS = (
    *_container_calls("Endpoints", "Endpoints"),
    ApiCall("s3:GetObject", f"{S3}{{model_bucket}}/{RUN}/model/pipelines-1a2b3c4d5e6f-TrainModel-x/output/model.tar.gz"),
    ApiCall("kms:Decrypt", "{models_key}"),
    ApiCall("s3:PutObject", f"{S3}{{capture_bucket}}/data-capture/{{prefix}}-realtime/AllTraffic/2026/11/20/09/capture.jsonl", feature="serving"),
    ApiCall("kms:GenerateDataKey", "{data_key}", feature="serving"),
    ApiCall("s3:GetObject", f"{S3}{{data_bucket}}/async-inference/input/request-1.csv", feature="async"),
    ApiCall("s3:PutObject", f"{S3}{{data_bucket}}/async-inference/output/{{prefix}}-async/request-1.out", feature="async"),
    ApiCall("s3:PutObject", f"{S3}{{data_bucket}}/async-inference/failures/{{prefix}}-async/request-1-error.out", feature="async"),
    ApiCall("sns:Publish", "{async_topic}", feature="async"),
    ApiCall("kms:GenerateDataKey", "{async_topic_key}", feature="async"),
    *(c._replace(feature="batch") for c in _container_calls("TransformJobs", "TransformJobs")),
    ApiCall("s3:GetObject", f"{S3}{{data_bucket}}/batch-scoring/input/scores.csv", feature="batch"),
    ApiCall("s3:PutObject", f"{S3}{{data_bucket}}/batch-scoring/output/scores.csv.out", feature="batch"),
)
MULTI_MODEL_ROLE_CALLS = tuple(
    c._replace(feature="multi_model")
    for c in (
        *_container_calls("Endpoints", "Endpoints"),
        ApiCall("s3:GetObject", f"{S3}{{code_bucket}}/{{multi_model_handlers_key}}"),
        ApiCall("s3:GetObject", f"{S3}{{model_bucket}}/multi-model/churn/v2/model.tar.gz"),
        ApiCall("kms:Decrypt", "{models_key}"),
    )
)
MONITORING_ROLE_CALLS = tuple(
    c if c.feature else c._replace(feature="drift_check")
    for c in (
        *_container_calls("ProcessingJobs", "ProcessingJobs"),
        ApiCall("s3:GetObject", f"{S3}{{code_bucket}}/{{drift_code_key}}"),
        ApiCall("s3:ListBucket", f"{S3}{{capture_bucket}}", {"s3:prefix": "data-capture/{prefix}-realtime/"}),
        ApiCall("s3:GetObject", f"{S3}{{capture_bucket}}/data-capture/{{prefix}}-realtime/AllTraffic/2026/11/20/09/capture.jsonl"),
        ApiCall("kms:Decrypt", "{data_key}"),
        ApiCall("sagemaker:DescribeModelPackage", "{package_arn}"),
        ApiCall("s3:GetObject", f"{S3}{{model_bucket}}/{RUN}/baseline/baseline.json"),
        ApiCall("kms:Decrypt", "{models_key}"),
        ApiCall("s3:PutObject", f"{S3}{{reports_bucket}}/drift/{{prefix}}-realtime/1a2b3c4d5e6f/report.json"),
        ApiCall("kms:GenerateDataKey", "{data_key}"),
        ApiCall("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "{drift_namespace}"}),
        # Model Monitor's data-quality schedule runs with the same role.
        *(c._replace(feature="model_monitor") for c in _container_calls("ProcessingJobs", "Endpoints/data-metrics", "{model_monitor_repository}")),
        ApiCall("s3:GetObject", f"{S3}{{reports_bucket}}/{RUN}/data-quality-baseline/statistics.json", feature="model_monitor"),
        ApiCall("s3:PutObject", f"{S3}{{reports_bucket}}/model-monitor/{{prefix}}-realtime/2026/11/20/09/constraint_violations.json", feature="model_monitor"),
    )
)
_JOB = "pipelines-1a2b3c4d5e6f"
PIPELINE_ROLE_CALLS = (
    ApiCall("sagemaker:CreateProcessingJob", f"{SM}:processing-job/{_JOB}-preprocessdata-0123456789", VPC_JOB),
    ApiCall("sagemaker:CreateTrainingJob", f"{SM}:training-job/{_JOB}-trainmodel-0123456789", VPC_JOB),
    ApiCall("sagemaker:CreateHyperParameterTuningJob", f"{SM}:hyper-parameter-tuning-job/{_JOB}-tunemodel", TUNING_JOB, "tuning"),
    ApiCall("sagemaker:AddTags", f"{SM}:processing-job/{_JOB}-preprocessdata-0123456789"),
    ApiCall("sagemaker:DescribeProcessingJob", f"{SM}:processing-job/{_JOB}-preprocessdata-0123456789"),
    ApiCall("sagemaker:DescribeTrainingJob", f"{SM}:training-job/{_JOB}-trainmodel-0123456789"),
    ApiCall("sagemaker:DescribeHyperParameterTuningJob", f"{SM}:hyper-parameter-tuning-job/{_JOB}-tunemodel", feature="tuning"),
    ApiCall("sagemaker:ListTrainingJobsForHyperParameterTuningJob", f"{SM}:hyper-parameter-tuning-job/{_JOB}-tunemodel", feature="tuning"),
    ApiCall("sagemaker:StopTrainingJob", f"{SM}:training-job/{_JOB}-trainmodel-0123456789"),
    ApiCall("iam:PassRole", "{job_role}", PASS_TO_SAGEMAKER),
    ApiCall("s3:GetObject", f"{S3}{{reports_bucket}}/{RUN}/evaluation/evaluation.json"),
    ApiCall("kms:Decrypt", "{models_key}"),
    ApiCall("kms:CreateGrant", "{models_key}", FOR_AWS_RESOURCE),
    ApiCall("sagemaker:DescribeModelPackageGroup", f"{SM}:model-package-group/{{prefix}}-models"),
    ApiCall("sagemaker:CreateModelPackage", f"{SM}:model-package/{{prefix}}-models/4", {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}),
    # Experiments: the experiment config records each execution (Pipelines and SageMaker Experiments).
    ApiCall("sagemaker:DescribeExperiment", f"{SM}:experiment/{{prefix}}-model-build"),
    ApiCall("sagemaker:CreateExperiment", f"{SM}:experiment/{{prefix}}-model-build"),
    ApiCall("sagemaker:CreateTrial", f"{SM}:experiment/{{prefix}}-model-build"),
    ApiCall("sagemaker:CreateTrial", f"{SM}:experiment-trial/1a2b3c4d5e6f"),
    ApiCall("sagemaker:DescribeTrial", f"{SM}:experiment-trial/1a2b3c4d5e6f"),
    ApiCall("sagemaker:CreateTrialComponent", f"{SM}:experiment-trial-component/{_JOB}-trainmodel-0123456789-aws-training-job"),
    ApiCall("sagemaker:DescribeTrialComponent", f"{SM}:experiment-trial-component/{_JOB}-trainmodel-0123456789-aws-training-job"),
    ApiCall("sagemaker:AssociateTrialComponent", f"{SM}:experiment-trial/1a2b3c4d5e6f"),
    ApiCall("sagemaker:AssociateTrialComponent", f"{SM}:experiment-trial-component/{_JOB}-trainmodel-0123456789-aws-training-job"),
    ApiCall("sagemaker:AddAssociation", f"{SM}:experiment-trial-component/{_JOB}-trainmodel-0123456789-aws-training-job"),
    ApiCall("sagemaker:AddAssociation", f"{SM}:artifact/0123456789abcdef0123456789abcdef"),
    ApiCall("sagemaker:CreateExperiment", f"{SM}:experiment/{{prefix}}-batch-scoring", feature="batch"),
    ApiCall("sagemaker:CreateTransformJob", f"{SM}:transform-job/{_JOB}-transformdata-0123456789",
            {"sagemaker:VolumeKmsKey": "{models_key}", "sagemaker:OutputKmsKey": "{data_key}"}, "batch"),  # fmt: skip
    ApiCall("sagemaker:DescribeTransformJob", f"{SM}:transform-job/{_JOB}-transformdata-0123456789", feature="batch"),
    ApiCall("iam:PassRole", "{monitoring_role}", PASS_TO_SAGEMAKER, "drift_check"),
    ApiCall("sagemaker:CreateExperiment", f"{SM}:experiment/{{prefix}}-drift-check", feature="drift_check"),
    ApiCall("sagemaker:CreateProcessingJob", f"{SM}:processing-job/{_JOB}-checkdrift-0123456789",
            {**VPC_JOB, "sagemaker:OutputKmsKey": "{data_key}"}, "drift_check"),  # fmt: skip
    *_mlflow_client_calls("CreateRun", "LogMetric", "SearchRuns"),
)
SCHEDULER_ROLE_CALLS = (
    ApiCall("sagemaker:StartPipelineExecution", f"{SM}:pipeline/{{prefix}}-model-build"),
    ApiCall("sagemaker:StartPipelineExecution", f"{SM}:pipeline/{{prefix}}-batch-scoring", feature="batch"),
    ApiCall("sagemaker:StartPipelineExecution", f"{SM}:pipeline/{{prefix}}-drift-check", feature="drift_check"),
)
_EXECUTION = f"{SM}:pipeline/{{prefix}}-model-build/execution/1a2b3c4d5e6f"
STUDIO_USER_ROLE_CALLS = (
    # JupyterLab and Code Editor in the domain (Studio's execution-role documentation).
    ApiCall("sagemaker:CreateApp", f"{SM}:app/{{domain_id}}/bob/jupyterlab/default"),
    ApiCall("sagemaker:DescribeApp", f"{SM}:app/{{domain_id}}/bob/jupyterlab/default"),
    ApiCall("sagemaker:DeleteApp", f"{SM}:app/{{domain_id}}/bob/jupyterlab/default"),
    ApiCall("sagemaker:CreateSpace", f"{SM}:space/{{domain_id}}/bob-experiments"),
    ApiCall("sagemaker:DescribeDomain", f"{SM}:domain/{{domain_id}}"),
    ApiCall("sagemaker:DescribeUserProfile", f"{SM}:user-profile/{{domain_id}}/bob"),
    ApiCall("sagemaker:ListApps", "*"),
    ApiCall("sagemaker:ListSpaces", "*"),
    ApiCall("kms:Decrypt", "{studio_key}"),
    ApiCall("kms:CreateGrant", "{studio_key}", FOR_AWS_RESOURCE),
    # Data exploration.
    ApiCall("s3:ListBucket", f"{S3}{{data_bucket}}", {"s3:prefix": "input/"}),
    ApiCall("s3:GetObject", f"{S3}{{data_bucket}}/input/churn.csv"),
    ApiCall("s3:PutObject", f"{S3}{{data_bucket}}/scratch/bob/features.parquet"),
    ApiCall("kms:GenerateDataKey", "{data_key}"),
    ApiCall("s3:GetObject", f"{S3}{{reports_bucket}}/{RUN}/evaluation/evaluation.json"),
    ApiCall("kms:Decrypt", "{models_key}"),
    # Experiments as jobs inside the VPC, with the job role.
    ApiCall("sagemaker:CreateTrainingJob", f"{SM}:training-job/bob-experiment-1", VPC_JOB),
    ApiCall("sagemaker:DescribeTrainingJob", f"{SM}:training-job/bob-experiment-1"),
    ApiCall("iam:PassRole", "{job_role}", PASS_TO_SAGEMAKER),
    ApiCall("kms:CreateGrant", "{models_key}", FOR_AWS_RESOURCE),
    *_in_vpc_calls(),
    # Studio's Pipelines pages: list, open a run, its graph, steps and parameters; start one.
    ApiCall("sagemaker:ListPipelines", "*"),
    ApiCall("sagemaker:DescribePipeline", f"{SM}:pipeline/{{prefix}}-model-build"),
    ApiCall("sagemaker:ListPipelineExecutions", f"{SM}:pipeline/{{prefix}}-model-build"),
    ApiCall("sagemaker:StartPipelineExecution", f"{SM}:pipeline/{{prefix}}-model-build"),
    ApiCall("sagemaker:DescribePipelineExecution", _EXECUTION),
    ApiCall("sagemaker:ListPipelineExecutionSteps", _EXECUTION),
    ApiCall("sagemaker:DescribePipelineDefinitionForExecution", _EXECUTION),
    ApiCall("sagemaker:ListPipelineParametersForExecution", _EXECUTION),
    # The job logs the run's steps link to.
    ApiCall("logs:DescribeLogGroups", "*"),
    ApiCall("logs:DescribeLogStreams", f"{LOGS}/TrainingJobs"),
    ApiCall("logs:GetLogEvents", f"{LOGS}/TrainingJobs:log-stream:{_JOB}-trainmodel-0123456789/algo-1-1700000000"),
    ApiCall("logs:FilterLogEvents", f"{LOGS}/ProcessingJobs"),
    # Studio's model registry pages.
    ApiCall("sagemaker:ListModelPackageGroups", "*"),
    ApiCall("sagemaker:ListModelPackages", "*"),
    ApiCall("sagemaker:DescribeModelPackageGroup", f"{SM}:model-package-group/{{prefix}}-models"),
    ApiCall("sagemaker:DescribeModelPackage", f"{SM}:model-package/{{prefix}}-models/3"),
    # The endpoints.
    ApiCall("sagemaker:InvokeEndpoint", f"{SM}:endpoint/{{prefix}}-realtime", feature="serving"),
    # MLflow: the UI, tracking and the model registry (MLflow client and SageMaker's MLflow IAM docs).
    ApiCall("sagemaker:CreatePresignedMlflowTrackingServerUrl", f"{SM}:mlflow-tracking-server/{{prefix}}-mlflow", feature="mlflow"),
    *_mlflow_client_calls(
        "AccessUI", "CreateExperiment", "CreateRun", "LogMetric", "LogBatch", "SearchRuns", "CreateRegisteredModel",
        "CreateModelVersion", "SearchRegisteredModels", "SearchModelVersions", "GetLatestModelVersions",
        "GetDownloadURIForModelVersionArtifacts", "SetRegisteredModelAlias", "GetModelVersionByAlias",
        "DeleteRegisteredModelAlias", "SetModelVersionTag", "UpdateModelVersion",
    ),
    ApiCall("s3:GetObject", f"{S3}{{model_bucket}}/mlflow/1/0123456789abcdef/artifacts/model/model.pkl", feature="mlflow"),
)
STUDIO_LEAD_ROLE_CALLS = (
    *STUDIO_USER_ROLE_CALLS,
    # A lead approves (or rejects) a registered version from Studio's registry page.
    ApiCall("sagemaker:UpdateModelPackage", f"{SM}:model-package/{{prefix}}-models/3", {"sagemaker:ModelApprovalStatus": "Approved"}),
    # ...and publishes archives to the multi-model endpoint.
    ApiCall("s3:PutObject", f"{S3}{{model_bucket}}/multi-model/churn/v2/model.tar.gz"),
    ApiCall("kms:GenerateDataKey", "{models_key}"),
)
MLFLOW_ROLE_CALLS = tuple(
    c._replace(feature="mlflow")
    for c in (
        ApiCall("s3:ListBucket", f"{S3}{{model_bucket}}", {"s3:prefix": "mlflow/1/"}),
        ApiCall("s3:PutObject", f"{S3}{{model_bucket}}/mlflow/1/0123456789abcdef/artifacts/model/model.pkl"),
        ApiCall("s3:GetObject", f"{S3}{{model_bucket}}/mlflow/1/0123456789abcdef/artifacts/model/model.pkl"),
        ApiCall("kms:GenerateDataKey", "{models_key}"),
        ApiCall("kms:Decrypt", "{models_key}"),
    )
)
# By the construct id of the role in this stack.
ROLE_CALLS = {
    "StudioUserRole": STUDIO_USER_ROLE_CALLS,
    "StudioLeadRole": STUDIO_LEAD_ROLE_CALLS,
    "PipelineExecutionRole": PIPELINE_ROLE_CALLS,
    "JobRole": JOB_ROLE_CALLS,
    "ModelExecutionRole": MODEL_ROLE_CALLS,
    "MultiModelRole": MULTI_MODEL_ROLE_CALLS,
    "MonitoringJobRole": MONITORING_ROLE_CALLS,
    "SchedulerRole": SCHEDULER_ROLE_CALLS,
    "MlflowRole": MLFLOW_ROLE_CALLS,
}


@dataclass(frozen=True)
class FoundationResources:
    """What the other stacks use from the foundation: its constructs and the names its roles are scoped to.

    The other stacks take this, not the foundation stack, so each depends on the constructs it uses.
    """

    data_key: PlatformKey
    models_key: PlatformKey
    studio_key: PlatformKey
    data_bucket: SecureBucket
    model_bucket: SecureBucket
    capture_bucket: SecureBucket
    reports_bucket: SecureBucket
    studio_user_role: DutyRole
    studio_lead_role: DutyRole
    pipeline_role: DutyRole
    job_role: DutyRole
    model_role: DutyRole
    multi_model_role: DutyRole
    monitoring_role: DutyRole
    scheduler_role: DutyRole
    # None when the environment has no MLflow tracking server.
    mlflow_role: DutyRole | None
    model_build_pipeline_name: str
    model_package_group_name: str
    multi_model_prefix: str


class FoundationStack(cdk.Stack):
    """Encryption keys, buckets and duty roles shared by every platform feature.

    :param network: the environment's private network (VPC, subnets, workload security group).
    :param resource_prefix: ``mlp-<env>``, used in key aliases and allowed resource names.
    :param destroy_stateful_resources: delete keys and buckets (with their objects) on stack
        delete. Default: ``False`` (retained).
    :param mlflow_enabled: create the MLflow tracking server's role (its artifact store is the
        model bucket's ``mlflow/`` prefix). Default: ``True``.
    :param models_shared_with_accounts: accounts that deploy this environment's registered models:
        they may read the model-build pipeline's artifacts and decrypt them through S3. Default: none.
    :param multi_model_prefix: models-bucket prefix the multi-model endpoint loads archives from
        (its role reads only that). Default: ``multi-model/``.
    :param drift_metric_namespace: the only CloudWatch namespace the drift check may publish to.
        Default: ``MlPlatform/Drift``.
    :param model_monitor_enabled: the model-build jobs compute Model Monitor baselines and the
        monitoring role runs Model Monitor schedules (pull its image, read those baselines, write
        its reports and metrics). Default: ``False``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: PrivateNetwork,
        resource_prefix: str,
        destroy_stateful_resources: bool = False,
        models_shared_with_accounts: list[str] = (),
        mlflow_enabled: bool = True,
        multi_model_prefix: str = "multi-model/",
        drift_metric_namespace: str = "MlPlatform/Drift",
        model_monitor_enabled: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        # Keys: kept on update and delete, deleted (30-day window) when their create rolls back, as
        # nothing was encrypted with them yet. Buckets stay RETAIN (SecureBucket): generated names
        # never block a retry, and log deliveries may already have reached them.
        removal = cdk.RemovalPolicy.DESTROY if destroy_stateful_resources else cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
        # Names the roles below are scoped to; the model-build stack creates what they name.
        self.model_build_pipeline_name = f"{resource_prefix}-model-build"
        self.model_package_group_name = f"{resource_prefix}-models"

        def key(id_: str, alias: str, what: str) -> PlatformKey:
            return PlatformKey(
                self, id_, alias=f"{resource_prefix}/{alias}", description=f"{what} of {resource_prefix}", removal_policy=removal
            )

        self.data_key = key("DataKey", "data", "Training data, captured requests and reports")
        self.models_key = key("ModelsKey", "models", "Model artifacts, checkpoints and job volumes")
        self.studio_key = key("StudioKey", "studio", "Studio home file system and app volumes")
        # Whoever deploys the Studio domain (CloudFormation's role) has SageMaker, EFS and EC2 use the key.
        self.studio_key.allow_use_via_services_for_account(["sagemaker", "elasticfilesystem", "ec2"])
        # CreateEndpoint checks the caller (CloudFormation's role) may have SageMaker use the endpoint
        # configuration's keys: the models key for instance volumes, the data key for captured and async data.
        self.models_key.allow_use_via_services_for_account(["sagemaker"])
        self.data_key.allow_use_via_services_for_account(["sagemaker"])

        def bucket(id_: str, encryption_key: PlatformKey) -> SecureBucket:
            return SecureBucket(
                self,
                id_,
                encryption_key=encryption_key,
                access_logs=self.access_log_bucket,
                destroy_on_delete=destroy_stateful_resources,
            )

        # S3 server access logging writes to an SSE-KMS bucket when the customer key's policy admits the
        # logging service (aws-cdk PR #25350 dropped CDK's check after verifying delivery; an AWS-managed key
        # could not be used). CDK adds that statement for each bucket logging here; the bucket policy limits
        # delivery to this account's buckets. The account reads the logs through S3 only.
        self.access_logs_key = key("AccessLogsKey", "access-logs", "S3 server access logs")
        self.access_logs_key.allow_decrypt_via_service_for_account("s3")
        self.access_log_bucket = SecureBucket(
            self,
            "AccessLogBucket",
            encryption_key=self.access_logs_key,
            expiration_days=365,
            destroy_on_delete=destroy_stateful_resources,
        )
        skip_checkov(self.access_log_bucket.bucket, "CKV_AWS_18", "The access-log bucket itself: logging its access would log each log delivery")
        self.data_bucket = bucket("DataBucket", self.data_key)
        self.model_bucket = bucket("ModelBucket", self.models_key)
        self.capture_bucket = bucket("CaptureBucket", self.data_key)
        self.reports_bucket = bucket("ReportsBucket", self.data_key)
        for secure_bucket in (self.access_log_bucket, self.data_bucket, self.model_bucket, self.capture_bucket, self.reports_bucket):
            acknowledge_in_packs(
                secure_bucket.bucket,
                "S3BucketReplicationEnabled",
                "Versioned, retained bucket in one region; cross-region replication doubles storage and KMS cost "
                "and needs a replica key and bucket in a second region, so it is an opt-in for regulated "
                "environments that require it (not yet offered as a configuration switch: next step).",
            )

        def role(id_: str, description: str, *principals: str, pin: bool = False) -> DutyRole:
            return DutyRole(
                self,
                id_,
                service_principals=list(principals),
                description=f"{description} ({resource_prefix})",
                resource_prefix=resource_prefix,
                pin_source_account=pin,
            )

        self.studio_user_role = role("StudioUserRole", "Studio user execution role (data scientists)", SAGEMAKER)
        self.studio_lead_role = role("StudioLeadRole", "Studio lead execution role (reviews and approves models)", SAGEMAKER)
        self.pipeline_role = role("PipelineExecutionRole", "SageMaker Pipelines execution role", SAGEMAKER)
        self.job_role = role("JobRole", "Processing and training job role", SAGEMAKER)
        self.model_role = role("ModelExecutionRole", "Model (endpoint and transform) execution role", SAGEMAKER)
        self.multi_model_role = role("MultiModelRole", "Multi-model endpoint execution role", SAGEMAKER)
        self.monitoring_role = role("MonitoringJobRole", "Drift check job role", SAGEMAKER)
        self.scheduler_role = role("SchedulerRole", "EventBridge and Scheduler role", SCHEDULER, EVENTS, pin=True)
        # The tracking server's role lives here because the models key's policy names it.
        self.mlflow_role = role("MlflowRole", "SageMaker MLflow tracking server role", SAGEMAKER) if mlflow_enabled else None
        if self.mlflow_role is not None:
            self.model_bucket.grant_read_write(self.mlflow_role, prefix=MLFLOW_PREFIX)

        subnet_ids = network.workload_subnets.subnet_ids
        security_group_ids = [network.workload_security_group.security_group_id]

        # Jobs: read data, write artifacts and reports, run inside the VPC.
        self.data_bucket.grant_read(self.job_role)
        self.model_bucket.grant_read_write(self.job_role)
        self.reports_bucket.grant_read_write(self.job_role)
        self.models_key.grant_use_by_aws_resources(self.job_role)
        network.grant_manage_job_network_interfaces(self.job_role)
        self.job_role.allow_write_logs(log_group_prefix=f"{SAGEMAKER_LOG_GROUPS}ProcessingJobs")
        self.job_role.allow_write_logs(log_group_prefix=f"{SAGEMAKER_LOG_GROUPS}TrainingJobs")
        self.job_role.allow_put_metrics(namespaces=[SAGEMAKER_METRIC_NAMESPACES])

        sklearn_repository = framework_repository_arn(self, framework="sklearn", version=SKLEARN_VERSION)
        self.job_role.allow_pull_images(repository_arns=[sklearn_repository])

        # Models: read the pipeline's model artifacts, write captured requests, read asynchronous and
        # batch requests and write their results, run inside the VPC.
        self.model_artifacts_prefix = f"{self.model_build_pipeline_name}/*/model/"
        self.model_baseline_prefix = f"{self.model_build_pipeline_name}/*/baseline/"  # the drift check's profile
        self.model_bucket.grant_read(self.model_role, prefix=self.model_artifacts_prefix)
        self.capture_bucket.grant_write(self.model_role, prefix=CAPTURE_PREFIX)
        self.data_bucket.grant_read(self.model_role, prefix=f"{ASYNC_INFERENCE_PREFIX}input/")
        self.data_bucket.grant_write(self.model_role, prefix=f"{ASYNC_INFERENCE_PREFIX}output/")
        self.data_bucket.grant_write(self.model_role, prefix=f"{ASYNC_INFERENCE_PREFIX}failures/")
        self.data_bucket.grant_read(self.model_role, prefix=f"{BATCH_SCORING_PREFIX}input/")
        self.data_bucket.grant_write(self.model_role, prefix=f"{BATCH_SCORING_PREFIX}output/")
        # Multi-model endpoint: reads archives under its prefix only.
        self.multi_model_prefix = multi_model_prefix
        self.model_bucket.grant_read(self.multi_model_role, prefix=multi_model_prefix)
        for serving_role in (self.model_role, self.multi_model_role):
            self.models_key.grant_use_by_aws_resources(serving_role)
            network.grant_manage_job_network_interfaces(serving_role)
            serving_role.allow_pull_images(repository_arns=[sklearn_repository])
            serving_role.allow_write_logs(log_group_prefix=f"{SAGEMAKER_LOG_GROUPS}Endpoints")
            serving_role.allow_put_metrics(namespaces=[SAGEMAKER_METRIC_NAMESPACES])
        self.model_role.allow_write_logs(log_group_prefix=f"{SAGEMAKER_LOG_GROUPS}TransformJobs")

        # Drift check: read captured traffic and the registered baselines, write reports and metrics.
        monitoring = self.monitoring_role
        self.capture_bucket.grant_read(monitoring, prefix=CAPTURE_PREFIX)
        self.model_bucket.grant_read(monitoring, prefix=self.model_baseline_prefix)
        self.reports_bucket.grant_write(monitoring, prefix=DRIFT_REPORTS_PREFIX)
        monitoring.allow_describe_model_packages(group_name=self.model_package_group_name)
        # Its own drift namespace, and SageMaker's (job metrics; Model Monitor's data-quality metrics).
        monitoring.allow_put_metrics(namespaces=[drift_metric_namespace, SAGEMAKER_METRIC_NAMESPACES])
        self.models_key.grant_use_by_aws_resources(monitoring)
        network.grant_manage_job_network_interfaces(monitoring)
        monitoring.allow_pull_images(repository_arns=[sklearn_repository])
        monitoring.allow_write_logs(log_group_prefix=f"{SAGEMAKER_LOG_GROUPS}ProcessingJobs")
        if model_monitor_enabled:
            model_monitor_repository = model_monitor_repository_arn(self)
            self.job_role.allow_pull_images(repository_arns=[model_monitor_repository])  # the baseline step
            monitoring.allow_pull_images(repository_arns=[model_monitor_repository])
            self.reports_bucket.grant_read(monitoring, prefix=f"{self.model_build_pipeline_name}/*/data-quality-baseline/")
            self.reports_bucket.grant_write(monitoring, prefix=MODEL_MONITOR_REPORTS_PREFIX)

        # Pipelines: launch VPC-bound jobs with the job and model roles, read what steps wrote.
        self.pipeline_role.allow_run_sagemaker_jobs(subnet_ids=subnet_ids, security_group_ids=security_group_ids)
        self.job_role.grant_pass_role(self.pipeline_role)
        self.model_role.grant_pass_role(self.pipeline_role)
        self.monitoring_role.grant_pass_role(self.pipeline_role)
        self.model_bucket.grant_read(self.pipeline_role)
        self.reports_bucket.grant_read(self.pipeline_role)
        self.data_bucket.grant_read(self.pipeline_role)
        self.models_key.grant_use_by_aws_resources(self.pipeline_role)
        # Every pipeline definition carries an experiment config: each execution is recorded as a trial.
        self.pipeline_role.allow_track_pipeline_experiments()

        # Studio personas: explore data, run VPC-bound experiments, start pipelines; leads also
        # review and approve the registry's model packages.
        for studio_role in (self.studio_user_role, self.studio_lead_role):
            self.data_bucket.grant_read_write(studio_role)
            self.model_bucket.grant_read(studio_role)
            self.reports_bucket.grant_read(studio_role)
            self.studio_key.grant_encrypt_decrypt(studio_role)
            self.studio_key.grant_use_by_aws_resources(studio_role)  # app volumes use the domain key
            studio_role.allow_run_sagemaker_jobs(subnet_ids=subnet_ids, security_group_ids=security_group_ids)
            studio_role.allow_start_pipelines()
            self.job_role.grant_pass_role(studio_role)
            self.model_role.grant_pass_role(studio_role)
            self.models_key.grant_use_by_aws_resources(studio_role)
            network.grant_manage_job_network_interfaces(studio_role)
            # Studio's pipeline and registry pages, and the job and endpoint logs they link to.
            studio_role.allow_browse_pipelines_and_logs(log_group_prefix=SAGEMAKER_LOG_GROUPS)
        self.studio_user_role.allow_describe_model_packages(group_name=self.model_package_group_name)
        self.studio_lead_role.allow_review_model_packages(group_name=self.model_package_group_name)
        # Leads publish model archives to the multi-model endpoint.
        self.model_bucket.grant_write(self.studio_lead_role, prefix=multi_model_prefix)
        if mlflow_enabled:
            # MLflow clients upload run artifacts to the artifact store with their own credentials.
            for mlflow_user in (self.studio_user_role, self.studio_lead_role, self.pipeline_role, self.job_role):
                self.model_bucket.grant_read_write(mlflow_user, prefix=MLFLOW_PREFIX)

        # Accounts the registry is shared with must be able to fetch what its packages point to: the model
        # artifacts their endpoints load and the feature profile their drift checks compare traffic with
        # (<pipeline>/<execution>/model/..., .../baseline/...), not the training splits beside them.
        self.model_bucket.grant_read_to_accounts(
            list(models_shared_with_accounts), prefixes=[self.model_artifacts_prefix, self.model_baseline_prefix]
        )

        # Scheduler and EventBridge rules: start the environment's pipelines, nothing else.
        self.scheduler_role.allow_start_pipelines()

        for name, value, what in [
            ("DataBucketName", self.data_bucket.bucket_name, "Training data"),
            ("ModelBucketName", self.model_bucket.bucket_name, "Model artifacts"),
            ("CaptureBucketName", self.capture_bucket.bucket_name, "Endpoint data capture"),
            ("ReportsBucketName", self.reports_bucket.bucket_name, "Evaluation and drift reports"),
            ("StudioUserRoleArn", self.studio_user_role.role_arn, "Studio data scientist execution role"),
            ("StudioLeadRoleArn", self.studio_lead_role.role_arn, "Studio lead execution role"),
            ("PipelineExecutionRoleArn", self.pipeline_role.role_arn, "Pipeline execution role"),
            ("ModelExecutionRoleArn", self.model_role.role_arn, "Endpoint and batch-transform model role"),
        ]:
            cdk.CfnOutput(self, name, value=value, description=what)

        self.resources = FoundationResources(
            data_key=self.data_key,
            models_key=self.models_key,
            studio_key=self.studio_key,
            data_bucket=self.data_bucket,
            model_bucket=self.model_bucket,
            capture_bucket=self.capture_bucket,
            reports_bucket=self.reports_bucket,
            studio_user_role=self.studio_user_role,
            studio_lead_role=self.studio_lead_role,
            pipeline_role=self.pipeline_role,
            job_role=self.job_role,
            model_role=self.model_role,
            multi_model_role=self.multi_model_role,
            monitoring_role=self.monitoring_role,
            scheduler_role=self.scheduler_role,
            mlflow_role=self.mlflow_role,
            model_build_pipeline_name=self.model_build_pipeline_name,
            model_package_group_name=self.model_package_group_name,
            multi_model_prefix=self.multi_model_prefix,
        )
