"""SageMaker managed MLflow tracking server for experiment tracking."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


# What a data scientist's code does through the MLflow client, and the console link to the UI.
# What a data scientist's code does through the MLflow client, and the console link to the UI.
MLFLOW_USE_ACTIONS = [
    "sagemaker-mlflow:AccessUI",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:CreateModelVersion",
    "sagemaker-mlflow:CreateRegisteredModel",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:FinalizeLoggedModel",
    "sagemaker-mlflow:GetExperiment",
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:GetLoggedModel",
    "sagemaker-mlflow:ListLoggedModelArtifacts",
    "sagemaker-mlflow:GetMetricHistory",
    "sagemaker-mlflow:GetModelVersion",
    "sagemaker-mlflow:GetRegisteredModel",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:ListArtifacts",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:LogInputs",
    "sagemaker-mlflow:LogMetric",
    "sagemaker-mlflow:LogLoggedModelParams",
    "sagemaker-mlflow:LogModel",
    "sagemaker-mlflow:LogOutputs",
    "sagemaker-mlflow:LogParam",
    "sagemaker-mlflow:SearchExperiments",
    "sagemaker-mlflow:SearchLoggedModels",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:SetExperimentTag",
    "sagemaker-mlflow:SetLoggedModelTags",
    "sagemaker-mlflow:SetTag",
    "sagemaker-mlflow:UpdateExperiment",
    "sagemaker-mlflow:UpdateRun",
]
# The model registry as the MLflow client and UI use it: find, download, alias, tag and describe versions
# (deletes stay with the server's administrators).
MLFLOW_REGISTRY_ACTIONS = [
    "sagemaker-mlflow:DeleteRegisteredModelAlias",
    "sagemaker-mlflow:GetDownloadURIForModelVersionArtifacts",
    "sagemaker-mlflow:GetLatestModelVersions",
    "sagemaker-mlflow:GetModelVersionByAlias",
    "sagemaker-mlflow:SearchModelVersions",
    "sagemaker-mlflow:SearchRegisteredModels",
    "sagemaker-mlflow:SetModelVersionTag",
    "sagemaker-mlflow:SetRegisteredModelAlias",
    "sagemaker-mlflow:SetRegisteredModelTag",
    "sagemaker-mlflow:UpdateModelVersion",
    "sagemaker-mlflow:UpdateRegisteredModel",
]
DESCRIBE_ACTIONS = ["sagemaker:CreatePresignedMlflowTrackingServerUrl", "sagemaker:DescribeMlflowTrackingServer"]


class MlflowTrackingServer(Construct):
    """An MLflow tracking server whose artifacts live in a platform bucket.

    :param server_name: the tracking server's name (notebooks and pipelines refer to it).
    :param artifact_store_uri: ``s3://bucket/prefix/`` for run artifacts.
    :param role: the server's role, already allowed to read and write the artifact store.
    :param size: ``Small``, ``Medium`` or ``Large``. Default: ``Small``.
    """

    def __init__(
        self, scope: Construct, id_: str, *, server_name: str, artifact_store_uri: str, role: iam.IRole, size: str = "Small"
    ) -> None:
        super().__init__(scope, id_)
        self.server_name = server_name
        self.server = sagemaker.CfnMlflowTrackingServer(
            self,
            "Resource",
            tracking_server_name=server_name,
            artifact_store_uri=artifact_store_uri,
            role_arn=role.role_arn,
            tracking_server_size=size,
            automatic_model_registration=False,
        )
        self.server_arn = self.server.attr_tracking_server_arn

    def grant_use(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` log experiments and runs to this server, use its model registry and open its UI."""
        server_arn = cdk.Stack.of(self).format_arn(service="sagemaker", resource="mlflow-tracking-server", resource_name=self.server_name)
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=sorted(DESCRIBE_ACTIONS + MLFLOW_USE_ACTIONS + MLFLOW_REGISTRY_ACTIONS), resource_arns=[server_arn]
        )
