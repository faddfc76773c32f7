"""A SageMaker model package group, retained, optionally shared with other accounts."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_constructs.nag import acknowledge_wildcards

SHARED_GROUP_ACTIONS = ["sagemaker:DescribeModelPackageGroup"]
SHARED_PACKAGE_ACTIONS = ["sagemaker:CreateModel", "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"]
REGISTER_ACTIONS = [
    "sagemaker:AddTags",
    "sagemaker:CreateModelPackage",
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:ListModelPackages",
]


class ModelRegistry(Construct):
    """Model package group where the pipeline registers candidates for approval.

    :param group_name: the model package group's name (clients and pipelines use it).
    :param description: what the group holds.
    :param shared_with_accounts: accounts that may describe and list its packages and create
        models from them (staging, production). Default: none.
    :param removal_policy: what happens on stack delete. Default: ``RETAIN_ON_UPDATE_OR_DELETE``
        (it holds the approval history; a group left by a rolled-back create, empty, would block the
        retry under the same name).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        group_name: str,
        description: str,
        shared_with_accounts: list[str] = (),
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        self.group_name = group_name
        self.group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name)
        self.packages_arn = stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group_name}/*")
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Resource",
            model_package_group_name=group_name,
            model_package_group_description=description,
            model_package_group_policy=self._sharing_policy(list(shared_with_accounts)),
        )
        self.group.apply_removal_policy(removal_policy)

    def grant_register(self, grantee: iam.IGrantable, *, allow_pre_approved: bool = False) -> iam.Grant:
        """Let ``grantee`` (the pipeline execution role) register model packages in this group.

        :param allow_pre_approved: let registrations start as ``Approved``. Default: ``False``, so
            whoever can start a pipeline still cannot skip the manual approval.
        """
        if not allow_pre_approved:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="RegisterPendingApprovalOnly",
                    effect=iam.Effect.DENY,
                    actions=["sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage"],
                    resources=[self.packages_arn],
                    conditions={"StringNotEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}},
                )
            )
        acknowledge_wildcards(
            grantee,
            resources=[self.packages_arn],
            reason="Model package versions are numbered by SageMaker at registration; the group prefix is the "
            "narrowest ARN available.",
        )
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=REGISTER_ACTIONS, resource_arns=[self.group_arn, self.packages_arn]
        )

    def _sharing_policy(self, accounts: list[str]) -> dict | None:
        if not accounts:
            return None
        principals = {"AWS": [f"arn:{cdk.Aws.PARTITION}:iam::{account}:root" for account in sorted(accounts)]}
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "SharedAccountsDescribeGroup",
                    "Effect": "Allow",
                    "Principal": principals,
                    "Action": SHARED_GROUP_ACTIONS,
                    "Resource": self.group_arn,
                },
                {
                    "Sid": "SharedAccountsUsePackages",
                    "Effect": "Allow",
                    "Principal": principals,
                    "Action": SHARED_PACKAGE_ACTIONS,
                    "Resource": self.packages_arn,
                },
            ],
        }
