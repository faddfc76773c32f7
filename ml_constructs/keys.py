"""Customer-managed KMS key whose policy names the principals that may use it."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# Management only: the account can administer (and so recover) the key, but using
# it for cryptography needs a statement that names the principal.
KEY_ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]
DECRYPT_ACTIONS = ["kms:Decrypt", "kms:DescribeKey"]
ENCRYPT_DECRYPT_ACTIONS = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
]


class PlatformKey(Construct):
    """A symmetric KMS key with yearly rotation, an alias and a scoped key policy.

    Grants add a statement to the key policy *and* to the grantee's policy, both
    scoped to this key, so usage is visible from either side in a review.

    :param alias: alias name without the ``alias/`` prefix.
    :param description: what the key protects.
    :param removal_policy: what happens on stack delete. Default: ``RETAIN``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        alias: str,
        description: str,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, id_)
        admin = iam.PolicyStatement(
            sid="KeyAdministration",
            principals=[iam.AccountRootPrincipal()],
            actions=KEY_ADMIN_ACTIONS,
            resources=["*"],  # in a key policy "*" means this key
        )
        self.key = kms.Key(
            self,
            "Resource",
            alias=f"alias/{alias}",
            description=description,
            enable_key_rotation=True,
            policy=iam.PolicyDocument(statements=[admin]),
            pending_window=cdk.Duration.days(30),
            removal_policy=removal_policy,
        )
        self.key_arn = self.key.key_arn

    def grant_decrypt(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read data encrypted with this key."""
        return self._grant(grantee, DECRYPT_ACTIONS)

    def grant_encrypt_decrypt(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read and write data encrypted with this key."""
        return self._grant(grantee, ENCRYPT_DECRYPT_ACTIONS)

    def grant_use_by_aws_resources(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` create KMS grants for AWS services acting for it.

        SageMaker needs this to encrypt the EBS volumes of the jobs and endpoints
        it launches with the grantee's role; ``kms:GrantIsForAWSResource`` keeps
        the grants to AWS services.
        """
        conditions = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[grantee.grant_principal],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions=conditions,
            )
        )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["kms:CreateGrant"],
            resource_arns=[self.key.key_arn],
            conditions=conditions,
        )

    def allow_use_via_services_for_account(self, services: list[str]) -> None:
        """Let principals of this account (per their IAM policies) use the key, only through ``services``.

        What CloudFormation's deployment role needs to create, e.g., a Studio domain whose home EFS
        and app volumes use this key: SageMaker, EFS and EC2 call KMS on its behalf. Grants are
        limited to AWS resources.
        """
        stack = cdk.Stack.of(self)
        via = {
            "StringEquals": {"kms:CallerAccount": stack.account},
            "ForAnyValue:StringEquals": {"kms:ViaService": [f"{service}.{stack.region}.amazonaws.com" for service in services]},
        }
        account = iam.AccountRootPrincipal()
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AccountUsesViaServices",
                principals=[account],
                actions=["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
                resources=["*"],
                conditions=via,
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AccountGrantsViaServices",
                principals=[account],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={**via, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )

    def allow_decrypt_via_service_for_account(self, service: str) -> None:
        """Let principals of this account (per their IAM policies) decrypt with the key, only through ``service``."""
        stack = cdk.Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"AccountDecryptsVia{service.title()}",
                principals=[iam.AccountRootPrincipal()],
                actions=DECRYPT_ACTIONS,
                resources=["*"],
                conditions={
                    "StringEquals": {"kms:CallerAccount": stack.account, "kms:ViaService": f"{service}.{stack.region}.amazonaws.com"}
                },
            )
        )

    def grant_decrypt_to_accounts(self, accounts: list[str], *, via_service: str) -> None:
        """Let other accounts decrypt with this key, only through ``via_service`` (e.g. ``s3``) in this region."""
        stack = cdk.Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"SharedAccountsDecryptVia{via_service.title()}",
                principals=[iam.AccountPrincipal(account) for account in sorted(accounts)],
                actions=DECRYPT_ACTIONS,
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"{via_service}.{stack.region}.amazonaws.com"}},
            )
        )

    def grant_to_service(self, service: str, *, actions: list[str], conditions: dict | None = None) -> None:
        """Let an AWS service principal use the key, under ``conditions``."""
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(service)],
                actions=sorted(actions),
                resources=["*"],
                conditions=conditions,
            )
        )

    def _grant(self, grantee: iam.IGrantable, actions: list[str]) -> iam.Grant:
        return iam.Grant.add_to_principal_and_resource(
            grantee=grantee,
            actions=actions,
            resource_arns=[self.key.key_arn],
            resource=self.key,
            resource_self_arns=["*"],
        )
