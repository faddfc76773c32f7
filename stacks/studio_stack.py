"""Studio deployment unit: the VPC-only domain, user profiles, shared spaces and MLflow."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from config.schema import StudioConfig
from ml_constructs.mlflow_server import MlflowTrackingServer
from ml_constructs.network import PrivateNetwork
from ml_constructs.studio_domain import AppDefaults, StudioDomain, StudioUserSpec
from stacks.foundation_stack import MLFLOW_PREFIX, FoundationResources


class StudioStack(cdk.Stack):
    """Where data scientists work.

    :param network: private subnets and the workload security group.
    :param logs_key: the environment's CloudWatch Logs key (its policy admits log groups named ``/<resource_prefix>/*``).
    :param foundation: the foundation's keys, buckets and the persona roles.
    :param settings: the environment's ``studio`` configuration.
    :param resource_prefix: ``mlp-<env>``: the domain's name and the parameters' path.
    :param removal_policy: for the cleanup's log group. Default: ``RETAIN``. (The home EFS
        follows ``settings.home_efs_on_delete``.)
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: PrivateNetwork,
        logs_key: kms.IKey,
        foundation: FoundationResources,
        settings: StudioConfig,
        resource_prefix: str,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        # Grants made here become policies of this stack (no cycle with the foundation).
        persona_roles = {
            "data_scientist": foundation.studio_user_role.imported_into(self, "DataScientistRole"),
            "lead": foundation.studio_lead_role.imported_into(self, "LeadRole"),
        }
        self.domain = StudioDomain(
            self,
            "Domain",
            domain_name=resource_prefix,
            vpc=network.vpc,
            subnets=network.workload_subnets.subnets,
            security_group=network.workload_security_group,
            encryption_key=foundation.studio_key.key,
            default_role=persona_roles["data_scientist"],
            apps=AppDefaults(
                instance_type=settings.default_instance_type,
                idle_timeout_minutes=settings.idle_timeout_minutes,
                git_repositories=list(settings.git_repositories),
                jupyterlab_lifecycle_config_arns=list(settings.jupyterlab_lifecycle_config_arns),
                code_editor_lifecycle_config_arns=list(settings.code_editor_lifecycle_config_arns),
            ),
            sharing_output_s3_uri=foundation.data_bucket.s3_url("studio-sharing/"),
            sharing_key=foundation.data_key.key,
            notebook_output_sharing=settings.notebook_output_sharing,
            users=[StudioUserSpec(name=u.name, role=persona_roles[u.persona]) for u in settings.users],
            shared_spaces={space.name: space.owner for space in settings.shared_spaces},
            removal_policy=removal_policy,
            cleanup_log_group_name=f"/{resource_prefix}/studio-cleanup",
            cleanup_log_key=logs_key,
            delete_home_efs=settings.home_efs_on_delete == "delete",
        )

        for role in persona_roles.values():
            self.domain.grant_studio_use(role)

        self.mlflow = None
        if settings.mlflow.enabled and foundation.mlflow_role is not None:
            self.mlflow = MlflowTrackingServer(
                self,
                "Mlflow",
                server_name=f"{resource_prefix}-mlflow",
                artifact_store_uri=foundation.model_bucket.s3_url(MLFLOW_PREFIX),
                role=foundation.mlflow_role.role,
                size=settings.mlflow.size,
            )
            # The pipeline and the jobs it runs log their runs too.
            pipeline_roles = [
                foundation.pipeline_role.imported_into(self, "PipelineRole"),
                foundation.job_role.imported_into(self, "JobRole"),
            ]
            for role in (*persona_roles.values(), *pipeline_roles):
                self.mlflow.grant_use(role)
            cdk.CfnOutput(self, "MlflowTrackingServerArn", value=self.mlflow.server_arn, description="MLflow tracking URI for mlflow.set_tracking_uri")

        for name, value, what in [
            ("domain-id", self.domain.domain_id, "Studio domain id"),
            ("domain-url", self.domain.domain_url, "Studio domain URL"),
        ]:
            ssm.StringParameter(self, f"{name.title().replace('-', '')}Parameter", parameter_name=f"/{resource_prefix}/studio/{name}", string_value=value, description=what)
            cdk.CfnOutput(self, name.title().replace("-", ""), value=value, description=what)
