"""Network deployment unit: VPC, security groups, VPC endpoints, flow logs and the logs key."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from config.schema import LOG_RETENTION_DAYS, NetworkConfig
from ml_constructs.keys import PlatformKey
from ml_constructs.nag import skip_checkov
from ml_constructs.network import ExistingVpcSpec, NewVpcSpec, PrivateNetwork


class NetworkStack(cdk.Stack):
    """Private network for the platform; every other stack builds on it.

    :param network: the environment's ``network`` configuration.
    :param resource_prefix: prefix for the log group and key alias (``mlp-<env>``).
    :param removal_policy: for the logs key and the flow-log group. Default: ``RETAIN_ON_UPDATE_OR_DELETE``
        (the log group's name is fixed: a copy left by a rolled-back create would block the retry).
    """

    @property
    def availability_zones(self) -> list[str]:
        """Configured zones when given: CDK would otherwise look them up, which needs credentials."""
        return self._configured_azs or super().availability_zones

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: NetworkConfig,
        resource_prefix: str,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        **kwargs,
    ) -> None:
        self._configured_azs = _configured_azs(network)
        super().__init__(scope, id_, **kwargs)
        log_group_name = f"/{resource_prefix}/vpc-flow-logs"
        self.logs_key = PlatformKey(
            self,
            "LogsKey",
            alias=f"{resource_prefix}/logs",
            description=f"CloudWatch Logs of the {resource_prefix} ML platform",
            removal_policy=removal_policy,
        )
        # Only actions whose requests carry an encryption context: kms:DescribeKey has none, so under
        # this condition it could never be allowed (and CloudWatch Logs does not need it).
        self.logs_key.grant_to_service(
            f"logs.{self.region}.amazonaws.com",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": cdk.Arn.format(
                        cdk.ArnComponents(
                            service="logs",
                            resource="log-group",
                            resource_name=f"/{resource_prefix}/*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        ),
                        self,
                    )
                }
            },
        )
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            log_group_name=log_group_name,
            encryption_key=self.logs_key.key,
            retention=getattr(logs.RetentionDays, LOG_RETENTION_DAYS[network.flow_log_retention_days]),
            removal_policy=removal_policy,
        )
        self.network = PrivateNetwork(self, "Network", vpc=_vpc_spec(network), flow_log_group=flow_log_group)
        self.vpc = self.network.vpc
        self.workload_security_group = self.network.workload_security_group
        self.workload_subnets = self.network.workload_subnets
        self._own_default_group_restriction(f"/{resource_prefix}/vpc-default-sg-restriction", removal_policy)
        # The app's references are weak (Fn::GetStackOutput: no export lock-in) except these. The VPC,
        # its subnets and the workload and endpoint groups (the multi-model group's HTTPS rule names the
        # latter) are the only shared resources with create-only properties (CIDR, zone, VPC) that a config
        # change can replace; a consumer whose template text did not
        # change would keep the old id (cdk deploy skips it). Exports make CloudFormation refuse such a
        # replacement while a stack imports the value, instead of leaving stale ids behind.
        shared_groups = (self.workload_security_group, self.network.endpoint_security_group)
        for shared in (self.vpc, *self.workload_subnets.subnets, *shared_groups):
            if isinstance(shared.node.default_child, cdk.CfnResource):  # an existing VPC's ids are config text
                cdk.CrossStackReferences.of(shared).produce(cdk.ReferenceStrength.STRONG)

        cdk.CfnOutput(self, "VpcId", value=self.vpc.vpc_id, description="VPC of the ML platform")
        cdk.CfnOutput(
            self,
            "WorkloadSecurityGroupId",
            value=self.workload_security_group.security_group_id,
            description="Security group for Studio, jobs and endpoints",
        )
        cdk.CfnOutput(
            self,
            "WorkloadSubnetIds",
            value=cdk.Fn.join(",", self.workload_subnets.subnet_ids),
            description="Private subnets for Studio, jobs and endpoints",
        )

    def _own_default_group_restriction(self, log_group_name: str, removal_policy: cdk.RemovalPolicy) -> None:
        """CDK's provider that empties the new VPC's default security group, on the platform's terms: its role
        without the AWS-managed basic execution policy, its logs in a log group of ours on the logs key."""
        provider = self.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is None:  # an existing VPC: its default group is its owner's
            return
        log_group = logs.LogGroup(
            self,
            "DefaultSecurityGroupRestrictionLogs",
            log_group_name=log_group_name,
            encryption_key=self.logs_key.key,
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=removal_policy,
        )
        role, handler = provider.node.find_child("Role"), provider.node.find_child("Handler")
        role.add_property_deletion_override("ManagedPolicyArns")
        role.add_property_override(
            "Policies.1",
            {
                "PolicyName": "Logs",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": f"{log_group.log_group_arn}",
                        }
                    ],
                },
            },
        )
        handler.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})
        # CDK adds DependsOn on the role next to the GetAtt that already orders them.
        handler.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        reason = "CDK's function emptying the default security group, run only when CloudFormation creates the VPC"
        for check_id, why in (
            ("CKV_AWS_115", "reserving concurrency fails the deploy in accounts at the default quota (unreserved may not drop below 10)"),
            ("CKV_AWS_116", "a failed run fails the CloudFormation operation, where an operator looks; nothing would replay a dead letter"),
            ("CKV_AWS_117", "it calls EC2's API, for which the VPC has no interface endpoint (and no internet path)"),
        ):
            skip_checkov(handler, check_id, f"{reason}; {why}")


def _configured_azs(network: NetworkConfig) -> list[str] | None:
    if network.existing_vpc is not None:
        return list(network.existing_vpc.availability_zones)
    if network.new_vpc is not None and network.new_vpc.availability_zones:
        return list(network.new_vpc.availability_zones)
    return None


def _vpc_spec(network: NetworkConfig) -> NewVpcSpec | ExistingVpcSpec:
    if network.existing_vpc is not None:
        e = network.existing_vpc
        return ExistingVpcSpec(
            vpc_id=e.vpc_id,
            subnet_ids=list(e.subnet_ids),
            availability_zones=list(e.availability_zones),
            route_table_ids=list(e.route_table_ids),
            create_s3_gateway_endpoint=e.create_s3_gateway_endpoint,
            create_interface_endpoints=e.create_interface_endpoints,
        )
    n = network.new_vpc
    assert n is not None  # NetworkConfig fills in a default new VPC
    return NewVpcSpec(
        cidr=n.cidr,
        az_count=n.az_count,
        nat_gateways=n.nat_gateways,
        availability_zones=list(n.availability_zones) if n.availability_zones else None,
    )
