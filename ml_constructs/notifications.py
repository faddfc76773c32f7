"""SNS topic encrypted with its own customer key, for platform notifications."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from ml_constructs.keys import PlatformKey


class NotificationTopic(Construct):
    """An SNS topic (TLS only, KMS-encrypted) with optional email subscriptions.

    :param alias: alias of the topic's key, without ``alias/``.
    :param display_name: shown as the sender of email notifications.
    :param emails: addresses to subscribe. Default: none.
    :param removal_policy: for the key. Default: ``RETAIN``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        alias: str,
        display_name: str,
        emails: list[str] = (),
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, id_)
        self.key = PlatformKey(self, "Key", alias=alias, description=f"Notifications: {display_name}", removal_policy=removal_policy)
        self.topic = sns.Topic(self, "Resource", display_name=display_name, master_key=self.key.key, enforce_ssl=True)
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.topic_arn = self.topic.topic_arn

    def grant_publish(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` publish to the topic (and use its key to encrypt the message)."""
        # Not topic.grant_publish: it grants kms:GenerateDataKey* where the key's explicit actions suffice.
        self.key.grant_encrypt_decrypt(grantee)
        return iam.Grant.add_to_principal(grantee=grantee, actions=["sns:Publish"], resource_arns=[self.topic_arn])

    def allow_service_to_publish(self, service: str) -> None:
        """Let an AWS service (e.g. ``cloudwatch.amazonaws.com``) publish here for this account.

        The key statement carries no condition: services call KMS through SNS without the source
        headers a condition could check, and a failed delivery would be silent.
        """
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Allow{service.split('.')[0].title()}Publish",
                principals=[iam.ServicePrincipal(service)],
                actions=["sns:Publish"],
                resources=[self.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            )
        )
        self.key.grant_to_service(service, actions=["kms:Decrypt", "kms:GenerateDataKey"])

    def notify_on(self, rule: events.Rule, *, message: events.RuleTargetInput | None = None) -> None:
        """Send what ``rule`` matches to this topic.

        The SNS target adds the topic-policy and key-policy statements EventBridge needs.
        """
        rule.add_target(targets.SnsTopic(self.topic, message=message))
