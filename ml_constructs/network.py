"""Private network for VPC-only Studio and VPC-bound SageMaker jobs: no route to the internet needed."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from ml_constructs.nag import acknowledge, acknowledge_in_packs, acknowledge_wildcards

# Interface endpoints a VPC-only Studio domain and VPC-bound jobs need (private DNS on).
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "SageMakerStudio": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_STUDIO,
    "SageMakerNotebook": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_NOTEBOOK,
    # Managed MLflow tracking servers are reached through the experiments endpoint.
    "SageMakerExperiments": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_EXPERIMENTS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "CloudWatchLogs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "CloudWatchMonitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "EventBridge": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
}

NFS_PORT = 2049
HTTPS = ec2.Port.tcp(443)


@dataclass(frozen=True)
class NewVpcSpec:
    """A VPC to create. ``availability_zones`` avoids an AZ lookup when the stack has an account."""

    cidr: str
    az_count: int
    nat_gateways: int
    availability_zones: list[str] | None = None


@dataclass(frozen=True)
class ExistingVpcSpec:
    """A VPC to import; one AZ and one route table per subnet, in order."""

    vpc_id: str
    subnet_ids: list[str]
    availability_zones: list[str]
    route_table_ids: list[str]
    create_s3_gateway_endpoint: bool = True
    create_interface_endpoints: bool = True


def _accept_named_zone(subnet: cdk.CfnResource) -> None:
    """Zones named in config are hard-coded on purpose (an AZ lookup would need credentials)."""
    subnet.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3010"]}})


class PrivateNetwork(Construct):
    """VPC, workload and endpoint security groups, VPC endpoints and flow logs.

    :param vpc: a ``NewVpcSpec`` (created here) or an ``ExistingVpcSpec`` (imported).
    :param flow_log_group: KMS-encrypted log group receiving the VPC's flow logs.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: NewVpcSpec | ExistingVpcSpec,
        flow_log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, id_)
        self.vpc = self._vpc(vpc)
        selection = (
            {"subnet_type": self._workload_subnet_type(vpc)}
            if isinstance(vpc, NewVpcSpec)
            else {"subnets": self.vpc.private_subnets}
        )
        self.workload_subnet_selection = ec2.SubnetSelection(**selection)
        self.workload_subnets = self.vpc.select_subnets(**selection)

        self.workload_security_group = ec2.SecurityGroup(
            self,
            "WorkloadSecurityGroup",
            vpc=self.vpc,
            description="SageMaker Studio apps, jobs and endpoints",
            allow_all_outbound=False,
        )
        self._allow_within_group(self.workload_security_group)

        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="VPC interface endpoints: HTTPS from platform workloads only",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            self.workload_security_group, ec2.Port.tcp(443), "HTTPS from platform workloads"
        )
        self.workload_security_group.add_egress_rule(
            self.endpoint_security_group, ec2.Port.tcp(443), "HTTPS to AWS service endpoints"
        )

        existing = vpc if isinstance(vpc, ExistingVpcSpec) else None
        self.s3_endpoint = (
            self.vpc.add_gateway_endpoint(
                "S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.workload_subnet_selection]
            )
            if existing is None or existing.create_s3_gateway_endpoint
            else None
        )
        # HTTPS to any address: the S3 gateway is only addressable through its managed prefix
        # list, whose id needs an AWS lookup. Without a NAT gateway nothing else is routable.
        self.workload_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS (S3 gateway endpoint; internet only through NAT)"
        )
        self.interface_endpoints = {
            name: self.vpc.add_interface_endpoint(
                f"{name}Endpoint",
                service=service,
                private_dns_enabled=True,
                subnets=self.workload_subnet_selection,
                security_groups=[self.endpoint_security_group],
                open=False,
            )
            for name, service in INTERFACE_ENDPOINTS.items()
            if existing is None or existing.create_interface_endpoints
        }

        stack = cdk.Stack.of(self)
        delivery_role = iam.Role(
            self,
            "FlowLogDeliveryRole",
            description="Delivers this VPC's flow logs to CloudWatch Logs",
            assumed_by=iam.ServicePrincipal(
                "vpc-flow-logs.amazonaws.com",
                # Confused-deputy guard: only flow logs of this account may use the role.
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(service="ec2", resource="vpc-flow-log", resource_name="*")},
                },
            ),
        )
        self.flow_log = ec2.FlowLog(
            self,
            "FlowLog",
            resource_type=ec2.FlowLogResourceType.from_vpc(self.vpc),
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group, delivery_role),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

    @property
    def vpc_arn(self) -> str:
        return self.vpc.vpc_arn

    def grant_manage_job_network_interfaces(self, grantee: iam.IGrantable) -> None:
        """Let SageMaker, acting with ``grantee``'s role, attach jobs and endpoints to this VPC."""
        # Describe calls support no resource-level permissions.
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            resource_arns=["*"],
        )
        # Each EC2 action is authorized per resource, with the condition keys the service authorization
        # reference lists for that resource: CreateNetworkInterface checks the new interface (which has
        # no ec2:Vpc key) and the subnet and security groups it goes into (which have one). So the VPC
        # condition sits on the subnet and security group; the interface itself can only land there.
        stack = cdk.Stack.of(self)

        def ec2_arn(kind: str) -> str:
            return stack.format_arn(service="ec2", resource=kind, resource_name="*")

        in_this_vpc = {"ArnEquals": {"ec2:Vpc": self.vpc.vpc_arn}}
        interfaces = ec2_arn("network-interface")
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["ec2:CreateNetworkInterface"],
            resource_arns=[ec2_arn("security-group"), ec2_arn("subnet")],
            conditions=in_this_vpc,
        )
        iam.Grant.add_to_principal(grantee=grantee, actions=["ec2:CreateNetworkInterface"], resource_arns=[interfaces])
        # Existing interfaces carry ec2:Vpc: only this VPC's may be shared with SageMaker or deleted.
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            resource_arns=[interfaces],
            conditions=in_this_vpc,
        )
        acknowledge_wildcards(
            grantee,
            resources=["*", interfaces, ec2_arn("security-group"), ec2_arn("subnet")],
            reason="EC2 Describe* calls support no resource-level permissions, and network interfaces "
            "SageMaker creates have unknown ids; they can only be created in this VPC's subnets and security "
            "groups (ec2:Vpc condition), and only this VPC's may be shared or deleted.",
        )

    def _vpc(self, spec: NewVpcSpec | ExistingVpcSpec) -> ec2.IVpc:
        if isinstance(spec, ExistingVpcSpec):
            return ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=spec.vpc_id,
                availability_zones=spec.availability_zones,
                private_subnet_ids=spec.subnet_ids,
                private_subnet_route_table_ids=spec.route_table_ids,
            )
        # No mask for the workload subnets: CDK divides what the CIDR leaves evenly between the AZs,
        # so every CIDR size the config allows fits.
        subnets = [ec2.SubnetConfiguration(name="Workload", subnet_type=self._workload_subnet_type(spec))]
        if spec.nat_gateways:
            # Public subnets hold only the NAT gateways; nothing else is placed there.
            subnets.append(ec2.SubnetConfiguration(name="Egress", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=28))
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(spec.cidr),
            max_azs=None if spec.availability_zones else spec.az_count,
            availability_zones=spec.availability_zones,
            nat_gateways=spec.nat_gateways,
            subnet_configuration=subnets,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            # The default group admits all traffic within it and out: nothing of the platform uses it, so its
            # rules are removed (a CDK custom resource at deploy time; CloudFormation cannot edit that group).
            restrict_default_security_group=True,
        )
        if spec.availability_zones:
            for subnet in vpc.private_subnets + vpc.isolated_subnets + vpc.public_subnets:
                _accept_named_zone(subnet.node.default_child)
        return vpc

    @staticmethod
    def _workload_subnet_type(spec: NewVpcSpec) -> ec2.SubnetType:
        return ec2.SubnetType.PRIVATE_WITH_EGRESS if spec.nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED

    @staticmethod
    def _allow_within_group(group: ec2.SecurityGroup) -> None:
        rules = [
            (ec2.Port.tcp(NFS_PORT), "NFS to the Studio home EFS"),
            (ec2.Port.all_tcp(), "Studio apps and distributed training within the group"),
            (ec2.Port.udp(500), "IKE for inter-container traffic encryption"),
            (ec2.Port(protocol=ec2.Protocol.ESP, string_representation="ESP"), "ESP for inter-container traffic encryption"),
        ]
        for port, description in rules:
            group.add_ingress_rule(group, port, description)
            group.add_egress_rule(group, port, description)


class ServiceOnlySecurityGroup(Construct):
    """A security group that admits nothing and reaches only AWS services, for code the platform does not vet.

    Egress is HTTPS to S3 (the region's AWS-managed prefix list, which is what the S3 gateway
    endpoint routes) and to the VPC's interface endpoints, whose security group admits it. Nothing
    else in the VPC is reachable (unlike from the workload group, which allows all TCP within it).

    The prefix list's id differs per region and needs an AWS call to learn, so a custom resource
    looks it up at deploy time (``ec2:DescribeManagedPrefixLists``); synth stays offline.

    :param network: the VPC and its interface endpoints' security group.
    :param description: of the security group.
    :param removal_policy: for the lookup's log group. Default: ``RETAIN``.
    :param log_group_name: of the lookup's log group. Default: generated by CloudFormation.
    :param log_key: customer key encrypting the lookup's logs (its policy must admit CloudWatch Logs for that
        log group). Default: none, CloudWatch Logs' own encryption.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        network: PrivateNetwork,
        description: str,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        log_group_name: str | None = None,
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.security_group = ec2.SecurityGroup(
            self, "Resource", vpc=network.vpc, description=description, allow_all_outbound=False
        )
        self.security_group_id = self.security_group.security_group_id
        self.s3_prefix_list_id = self._s3_prefix_list_id(removal_policy, log_group_name, log_key)
        self.security_group.add_egress_rule(
            ec2.Peer.prefix_list(self.s3_prefix_list_id), HTTPS, "HTTPS to S3 (through the gateway endpoint)"
        )
        # Both rules of the pair live in this stack: the network stack must not depend on it.
        self.security_group.connections.allow_to(network.endpoint_security_group, HTTPS, "HTTPS to AWS service endpoints")
        # What users of the group depend on, so their traffic flows as soon as they start.
        self.rules = [
            child
            for child in self.node.find_all()
            if isinstance(child, cdk.CfnResource)
            and child.cfn_resource_type in ("AWS::EC2::SecurityGroupEgress", "AWS::EC2::SecurityGroupIngress")
        ]

    def _s3_prefix_list_id(self, removal_policy: cdk.RemovalPolicy, log_group_name: str | None, log_key: kms.IKey | None) -> str:
        stack = cdk.Stack.of(self)
        name = f"com.amazonaws.{stack.region}.s3"
        # CDK's singleton function for AWS SDK calls, with a role of ours (no managed policy).
        role = iam.Role(
            self,
            "PrefixListLookupRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Looks up the region's S3 prefix list id at deploy time",
        )
        log_group = logs.LogGroup(
            self,
            "PrefixListLookupLogs",
            log_group_name=log_group_name,
            encryption_key=log_key,
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=removal_policy,
        )
        log_group.grant_write(role)
        call = cr.AwsSdkCall(
            service="EC2",
            action="describeManagedPrefixLists",
            parameters={"Filters": [{"Name": "prefix-list-name", "Values": [name]}]},
            physical_resource_id=cr.PhysicalResourceId.of(name),
            output_paths=["PrefixLists.0.PrefixListId"],
        )
        lookup = cr.AwsCustomResource(
            self,
            "S3PrefixList",
            on_update=call,  # also runs on create
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["ec2:DescribeManagedPrefixLists"], resources=["*"])]
            ),
            role=role,
            log_group=log_group,
            install_latest_aws_sdk=False,
        )
        # The call's policy, attached to the role.
        acknowledge(lookup, "AwsSolutions-IAM5[Resource::*]", "ec2:DescribeManagedPrefixLists supports no resource-level permissions.")
        # CDK adds DependsOn on the role next to the GetAtt that already orders them.
        function = stack.node.find_child(f"AWS{cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace('-', '')}")
        function.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        reason = "CDK's AWS SDK custom-resource function, run only when CloudFormation creates or updates this group"
        acknowledge_in_packs(
            function,
            "LambdaInsideVPC",
            f"{reason}; it calls EC2's API (no interface endpoint in the VPC, no internet path) and handles no data",
        )
        for rule, why in (
            ("LambdaConcurrency", "reserving concurrency fails the deploy in accounts at the default quota (unreserved may not drop below 10)"),
            ("LambdaDLQ", "a failed call fails the CloudFormation operation, where an operator looks; nothing would replay a dead letter"),
        ):
            acknowledge_in_packs(function, rule, f"{reason}; {why}", packs=("NIST.800.53.R5", "HIPAA.Security"))
        return lookup.get_response_field("PrefixLists.0.PrefixListId")
