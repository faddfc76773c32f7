"""Foundation deployment unit: KMS keys, S3 buckets and one IAM role per duty.

Keys, buckets and roles live together because key policies name the roles and
the roles' policies name the keys: split across stacks, that is a cycle.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from ml_constructs.buckets import SecureBucket
from ml_constructs.keys import PlatformKey
from ml_constructs.network import PrivateNetwork
from ml_constructs.roles import SAGEMAKER, SAGEMAKER_METRIC_NAMESPACES, DutyRole
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
        removal = cdk.RemovalPolicy.DESTROY if destroy_stateful_resources else cdk.RemovalPolicy.RETAIN
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

        self.access_log_bucket = SecureBucket(
            self, "AccessLogBucket", expiration_days=365, destroy_on_delete=destroy_stateful_resources
        )
        self.data_bucket = bucket("DataBucket", self.data_key)
        self.model_bucket = bucket("ModelBucket", self.models_key)
        self.capture_bucket = bucket("CaptureBucket", self.data_key)
        self.reports_bucket = bucket("ReportsBucket", self.data_key)

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
        self.model_bucket.grant_read(monitoring, prefix=f"{self.model_build_pipeline_name}/*/baseline/")
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

        # Accounts the registry is shared with must be able to fetch what its packages point to.
        # Only the model artifacts (<pipeline>/<execution>/model/...), not the training splits beside them.
        self.model_bucket.grant_read_to_accounts(
            list(models_shared_with_accounts), prefix=self.model_artifacts_prefix
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
