"""S3 bucket with the platform's baseline: KMS, TLS only, versioned, logged, private."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ml_constructs.keys import PlatformKey
from ml_constructs.nag import acknowledge_wildcards

READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
LIST_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket"]
WRITE_ACTIONS = ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:PutObject"]
DELETE_ACTIONS = ["s3:DeleteObject"]


class SecureBucket(Construct):
    """A private, versioned bucket that denies plain-HTTP requests.

    :param encryption_key: customer key for SSE-KMS (with an S3 Bucket Key to cut
        KMS request costs); for an access-log bucket its policy must admit
        ``logging.s3.amazonaws.com``. Default: none, which means SSE-S3.
    :param access_logs: bucket receiving server access logs under ``<id>/``.
        Default: none (only for the access-log bucket itself).
    :param noncurrent_version_days: days before noncurrent versions expire. Default: 90.
    :param expiration_days: days before current objects expire. Default: never.
    :param destroy_on_delete: delete the bucket and its objects with the stack.
        Default: ``False`` (the bucket is retained).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        encryption_key: PlatformKey | None = None,
        access_logs: SecureBucket | None = None,
        noncurrent_version_days: int = 90,
        expiration_days: int | None = None,
        destroy_on_delete: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        # Log delivery through a bucket policy, not the legacy ACL, whatever the app's feature flags say.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.encryption_key = encryption_key
        lifecycle = s3.LifecycleRule(
            id="ExpireNoncurrentVersions",
            noncurrent_version_expiration=cdk.Duration.days(noncurrent_version_days),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
            expiration=cdk.Duration.days(expiration_days) if expiration_days else None,
        )
        self.bucket = s3.Bucket(
            self,
            "Resource",
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key.key if encryption_key else None,
            bucket_key_enabled=True if encryption_key else None,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs.bucket if access_logs else None,
            server_access_logs_prefix=f"{id_}/" if access_logs else None,
            lifecycle_rules=[lifecycle],
            # Not RETAIN_ON_UPDATE_OR_DELETE: the generated name never blocks a retry, and a rolled-back
            # create could not delete a bucket that access logs have already reached.
            removal_policy=cdk.RemovalPolicy.DESTROY if destroy_on_delete else cdk.RemovalPolicy.RETAIN,
            auto_delete_objects=destroy_on_delete,
        )
        self.bucket_name = self.bucket.bucket_name
        self.bucket_arn = self.bucket.bucket_arn

    def s3_url(self, prefix: str = "") -> str:
        """``s3://<bucket>/<prefix>`` for job inputs and outputs."""
        return f"s3://{self.bucket.bucket_name}/{prefix}"

    def grant_read(self, grantee: iam.IGrantable, *, prefix: str = "") -> iam.Grant:
        """Read (and list) objects under ``prefix``. Default: the whole bucket."""
        self._grant_list(grantee, prefix)
        if self.encryption_key:
            self.encryption_key.grant_decrypt(grantee)
        return self._grant_objects(grantee, READ_ACTIONS, prefix)

    def grant_write(self, grantee: iam.IGrantable, *, prefix: str = "") -> iam.Grant:
        """Write objects under ``prefix`` (no delete, no read). Default: the whole bucket."""
        if self.encryption_key:
            # Multipart uploads with SSE-KMS need Decrypt as well as GenerateDataKey.
            self.encryption_key.grant_encrypt_decrypt(grantee)
        return self._grant_objects(grantee, WRITE_ACTIONS, prefix)

    def grant_read_write(self, grantee: iam.IGrantable, *, prefix: str = "") -> iam.Grant:
        """Read, write and delete objects under ``prefix``. Default: the whole bucket."""
        self._grant_list(grantee, prefix)
        if self.encryption_key:
            self.encryption_key.grant_encrypt_decrypt(grantee)
        return self._grant_objects(grantee, READ_ACTIONS + WRITE_ACTIONS + DELETE_ACTIONS, prefix)

    def grant_read_to_accounts(self, accounts: list[str], *, prefixes: list[str]) -> None:
        """Let other accounts read objects under each of ``prefixes`` (and decrypt them through S3)."""
        if not accounts:
            return
        principals = [iam.AccountPrincipal(account) for account in sorted(accounts)]
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SharedAccountsRead",
                principals=principals,
                actions=READ_ACTIONS,
                resources=[self.bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
            )
        )
        if self.encryption_key:
            self.encryption_key.grant_decrypt_to_accounts(accounts, via_service="s3")

    def _grant_objects(self, grantee: iam.IGrantable, actions: list[str], prefix: str) -> iam.Grant:
        objects = self.bucket.arn_for_objects(f"{prefix}*")
        acknowledge_wildcards(
            grantee,
            resources=[objects],
            reason=f"Objects under '{prefix or '(whole bucket)'}' of the {self.node.id}: S3 has no narrower resource "
            "than a key prefix, and the keys are written at run time.",
        )
        return iam.Grant.add_to_principal(grantee=grantee, actions=sorted(actions), resource_arns=[objects])

    def _grant_list(self, grantee: iam.IGrantable, prefix: str) -> None:
        if not prefix:
            iam.Grant.add_to_principal(grantee=grantee, actions=LIST_ACTIONS, resource_arns=[self.bucket.bucket_arn])
            return
        # s3:prefix exists only on ListBucket, so the prefix condition cannot cover GetBucketLocation.
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:GetBucketLocation"], resource_arns=[self.bucket.bucket_arn])
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket"],
            resource_arns=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        )
