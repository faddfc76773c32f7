"""Network stack: private-only VPC, flow logs, security groups and the VPC endpoints Studio and jobs need."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from config import load_config
from stacks.network_stack import NetworkStack
from tests.conftest import as_list, resources_of

INTERFACE_SERVICES = {
    "sagemaker.api",
    "sagemaker.runtime",
    "studio",
    "notebook",
    "experiments",
    "sts",
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "kms",
    "ssm",
    "events",
}


def service_suffix(service_name) -> str:
    """``com.amazonaws.<region>.sts`` / ``aws.sagemaker.<region>.studio`` -> ``sts`` / ``studio``."""
    parts = service_name["Fn::Join"][1]
    return parts[-1].lstrip(".")


def workload_group_id(template_json: dict) -> str:
    groups = resources_of(template_json, "AWS::EC2::SecurityGroup")
    return next(k for k, v in groups.items() if v["Properties"]["GroupDescription"].startswith("SageMaker Studio"))


def endpoint_group_id(template_json: dict) -> str:
    groups = resources_of(template_json, "AWS::EC2::SecurityGroup")
    return next(k for k, v in groups.items() if v["Properties"]["GroupDescription"].startswith("VPC interface endpoints"))


def test_vpc_has_private_subnets_only_and_no_internet_route(sandbox):
    t = sandbox.template_json("Network")
    subnets = resources_of(t, "AWS::EC2::Subnet")
    assert len(subnets) == 2
    for subnet in subnets.values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
        assert {"Key": "aws-cdk:subnet-type", "Value": "Isolated"} in subnet["Properties"]["Tags"]
    for kind in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::Route"):
        assert not resources_of(t, kind), f"{kind} must not exist without NAT"


def test_vpc_default_security_group_loses_its_rules_at_deploy(sandbox):
    """Nothing uses the default group; CDK's custom resource revokes its allow-all rules (CloudFormation cannot)."""
    t = sandbox.template_json("Network")
    (restrict,) = resources_of(t, "Custom::VpcRestrictDefaultSG").values()
    (vpc_id,) = resources_of(t, "AWS::EC2::VPC")
    assert restrict["Properties"]["DefaultSecurityGroupId"] == {"Fn::GetAtt": [vpc_id, "DefaultSecurityGroup"]}
    # Its function logs to a log group of ours on the logs key; its role has no AWS-managed policy.
    (handler,) = resources_of(t, "AWS::Lambda::Function").values()
    (key_id,) = resources_of(t, "AWS::KMS::Key")
    group_id = handler["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert t["Resources"][group_id]["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    role = t["Resources"][handler["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert "ManagedPolicyArns" not in role
    (logs,) = [p for p in role["Policies"] if p["PolicyName"] == "Logs"]
    assert logs["PolicyDocument"]["Statement"][0]["Resource"] == {"Fn::GetAtt": [group_id, "Arn"]}


def test_flow_logs_go_to_an_encrypted_log_group_with_retention(network, sandbox):
    t = sandbox.template_json("Network")
    (key_id,) = resources_of(t, "AWS::KMS::Key")
    (group_id,) = [k for k in resources_of(t, "AWS::Logs::LogGroup") if k.startswith("FlowLogGroup")]
    network.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]}, "RetentionInDays": 90, "LogGroupName": "/mlp-sandbox/vpc-flow-logs"},
    )
    network.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs", "LogGroupName": {"Ref": group_id}},
    )


def test_logs_key_lets_only_this_environments_log_groups_use_it(sandbox):
    t = sandbox.template_json("Network")
    ((key_id, key),) = resources_of(t, "AWS::KMS::Key").items()
    assert key["Properties"]["EnableKeyRotation"] is True
    data_actions = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"}
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    users = [s for s in statements if data_actions & set(as_list(s["Action"]))]
    # The key's one user: CloudWatch Logs of this region, for log groups under /mlp-sandbox/ in this account.
    assert len(users) == 1 and users[0]["Effect"] == "Allow"
    assert users[0]["Principal"] == {"Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}
    assert users[0]["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": {
                "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":logs:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}, ":log-group:/mlp-sandbox/*"]]
            }
        }
    }
    # The account administers the key but cannot use it; no IAM policy of the stack grants its use either.
    assert [s["Sid"] for s in statements if s not in users] == ["KeyAdministration"]
    assert not [p for p in resources_of(t, "AWS::IAM::Policy").values() if key_id in json.dumps(p)]
    # And the log groups encrypted with it are this environment's.
    groups = [g["Properties"] for g in resources_of(t, "AWS::Logs::LogGroup").values() if key_id in json.dumps(g["Properties"].get("KmsKeyId"))]
    assert groups and all(g["LogGroupName"].startswith("/mlp-sandbox/") for g in groups)


def test_workload_group_allows_nfs_and_tcp_within_itself_only(sandbox):
    t = sandbox.template_json("Network")
    workload = workload_group_id(t)
    ingress = list(resources_of(t, "AWS::EC2::SecurityGroupIngress").values())
    own = [r["Properties"] for r in ingress if r["Properties"]["GroupId"] == {"Fn::GetAtt": [workload, "GroupId"]}]
    assert all(p["SourceSecurityGroupId"] == {"Fn::GetAtt": [workload, "GroupId"]} for p in own)
    ports = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in own}
    assert ("tcp", 2049, 2049) in ports
    assert ("tcp", 0, 65535) in ports


def test_no_security_group_admits_the_internet(sandbox):
    t = sandbox.template_json("Network")
    for group in resources_of(t, "AWS::EC2::SecurityGroup").values():
        assert not group["Properties"].get("SecurityGroupIngress"), "ingress is only ever granted group-to-group"
    for rule in resources_of(t, "AWS::EC2::SecurityGroupIngress").values():
        assert "CidrIp" not in rule["Properties"] and "CidrIpv6" not in rule["Properties"]


def test_endpoint_group_admits_443_from_the_workload_group_only(sandbox):
    t = sandbox.template_json("Network")
    endpoint_group, workload = endpoint_group_id(t), workload_group_id(t)
    rules = [
        r["Properties"]
        for r in resources_of(t, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [endpoint_group, "GroupId"]}
    ]
    assert rules == [
        {
            "Description": "HTTPS from platform workloads",
            "FromPort": 443,
            "ToPort": 443,
            "IpProtocol": "tcp",
            "GroupId": {"Fn::GetAtt": [endpoint_group, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [workload, "GroupId"]},
        }
    ]


def test_interface_endpoints_cover_what_vpc_only_studio_needs(sandbox):
    t = sandbox.template_json("Network")
    endpoints = resources_of(t, "AWS::EC2::VPCEndpoint").values()
    interface = [e["Properties"] for e in endpoints if e["Properties"]["VpcEndpointType"] == "Interface"]
    assert {service_suffix(e["ServiceName"]) for e in interface} == INTERFACE_SERVICES
    endpoint_group = endpoint_group_id(t)
    for e in interface:
        assert e["PrivateDnsEnabled"] is True
        assert e["SecurityGroupIds"] == [{"Fn::GetAtt": [endpoint_group, "GroupId"]}]
        assert len(e["SubnetIds"]) == 2


def test_s3_gateway_endpoint_serves_the_workload_route_tables(sandbox):
    t = sandbox.template_json("Network")
    gateways = [e["Properties"] for e in resources_of(t, "AWS::EC2::VPCEndpoint").values() if e["Properties"]["VpcEndpointType"] == "Gateway"]
    assert len(gateways) == 1
    assert service_suffix(gateways[0]["ServiceName"]) == "s3"
    assert sorted(r["Ref"] for r in gateways[0]["RouteTableIds"]) == sorted(resources_of(t, "AWS::EC2::RouteTable"))


def test_studio_endpoint_uses_the_sagemaker_service_namespace(network):
    network.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {"ServiceName": {"Fn::Join": ["", ["aws.sagemaker.", {"Ref": "AWS::Region"}, ".studio"]]}},
    )


def _network_template(tmp_path: Path, yaml_text: str) -> Template:
    (tmp_path / "custom.yaml").write_text(yaml_text, encoding="utf-8")
    config = load_config("custom", config_dir=tmp_path)
    app = cdk.App()
    stack = NetworkStack(
        app,
        "Network",
        network=config.network,
        resource_prefix=config.resource_prefix,
        env=cdk.Environment(account=config.account, region=config.region),
    )
    return Template.from_stack(stack)


ACCOUNT = 'account: "123456789012"\nregion: eu-west-1\n'


def test_existing_vpc_gets_groups_endpoints_and_flow_logs_but_no_new_vpc(tmp_path):
    template = _network_template(
        tmp_path,
        ACCOUNT
        + "network:\n  existing_vpc:\n    vpc_id: vpc-0a1b2c3d4e5f60718\n"
        "    subnet_ids: [subnet-0a1b2c3d4e5f60711, subnet-0a1b2c3d4e5f60722]\n"
        "    availability_zones: [eu-west-1a, eu-west-1b]\n"
        "    route_table_ids: [rtb-0a1b2c3d4e5f60733, rtb-0a1b2c3d4e5f60744]\n",
    )
    template.resource_count_is("AWS::EC2::VPC", 0)
    template.resource_count_is("AWS::EC2::Subnet", 0)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 14)
    template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {"VpcId": "vpc-0a1b2c3d4e5f60718", "SubnetIds": ["subnet-0a1b2c3d4e5f60711", "subnet-0a1b2c3d4e5f60722"]},
    )
    template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {"VpcEndpointType": "Gateway", "RouteTableIds": ["rtb-0a1b2c3d4e5f60733", "rtb-0a1b2c3d4e5f60744"]},
    )
    template.has_resource_properties("AWS::EC2::FlowLog", {"ResourceId": "vpc-0a1b2c3d4e5f60718"})


def test_nat_gateways_put_workloads_in_private_subnets_with_egress(tmp_path):
    template = _network_template(
        tmp_path, ACCOUNT + "network:\n  new_vpc: {az_count: 2, nat_gateways: 1, availability_zones: [eu-west-1a, eu-west-1b]}\n"
    )
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.has_resource_properties(
        "AWS::EC2::Subnet", {"Tags": Match.array_with([{"Key": "aws-cdk:subnet-type", "Value": "Private"}])}
    )
    # Interface endpoints sit in the workload (private) subnets, never in the NAT's public ones.
    json_ = template.to_json()
    public = {k for k, v in resources_of(json_, "AWS::EC2::Subnet").items() if v["Properties"]["MapPublicIpOnLaunch"]}
    assert len(public) == 2
    for e in resources_of(json_, "AWS::EC2::VPCEndpoint").values():
        assert not {s["Ref"] for s in e["Properties"].get("SubnetIds", [])} & public


def test_named_zones_are_used_without_a_lookup(tmp_path):
    template = _network_template(
        tmp_path, ACCOUNT + "network:\n  new_vpc: {az_count: 2, availability_zones: [eu-west-1b, eu-west-1c]}\n"
    )
    zones = sorted(s["Properties"]["AvailabilityZone"] for s in resources_of(template.to_json(), "AWS::EC2::Subnet").values())
    assert zones == ["eu-west-1b", "eu-west-1c"]


@pytest.mark.parametrize("days", [30, 365])
def test_flow_log_retention_follows_config(tmp_path, days):
    template = _network_template(
        tmp_path,
        ACCOUNT + f"network:\n  new_vpc: {{availability_zones: [eu-west-1a, eu-west-1b]}}\n  flow_log_retention_days: {days}\n",
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": days})


def test_flow_log_delivery_role_is_guarded_against_confused_deputies(sandbox):
    t = sandbox.template_json("Network")
    (role,) = [r for k, r in resources_of(t, "AWS::IAM::Role").items() if k.startswith("NetworkFlowLogDeliveryRole")]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1][-1].endswith(":vpc-flow-log/*")
    (flow_log,) = resources_of(t, "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["DeliverLogsPermissionArn"]["Fn::GetAtt"][0].startswith("NetworkFlowLogDeliveryRole")


@pytest.mark.parametrize(
    ("cidr", "az_count", "nat"),
    [("10.0.0.0/22", 4, 4), ("10.0.0.0/22", 2, 0), ("10.0.0.0/16", 1, 1), ("172.16.0.0/19", 4, 0)],
)
def test_every_allowed_vpc_size_synthesizes(tmp_path, cidr, az_count, nat):
    zones = [f"eu-west-1{c}" for c in "abcd"[:az_count]]
    template = _network_template(
        tmp_path,
        ACCOUNT + f"network:\n  new_vpc: {{cidr: '{cidr}', az_count: {az_count}, nat_gateways: {nat}, availability_zones: {zones}}}\n",
    )
    subnets = resources_of(template.to_json(), "AWS::EC2::Subnet").values()
    workload = [s for s in subnets if not s["Properties"]["MapPublicIpOnLaunch"]]
    assert len(workload) == az_count
    assert len(subnets) == az_count * (2 if nat else 1)


@pytest.mark.parametrize(("gateway", "interface", "count"), [(False, True, 13), (True, False, 1), (False, False, 0)])
def test_existing_vpc_can_keep_its_own_endpoints(tmp_path, gateway, interface, count):
    template = _network_template(
        tmp_path,
        ACCOUNT
        + "network:\n  existing_vpc:\n    vpc_id: vpc-0a1b2c3d4e5f60718\n"
        "    subnet_ids: [subnet-0a1b2c3d4e5f60711]\n    availability_zones: [eu-west-1a]\n"
        f"    route_table_ids: [rtb-0a1b2c3d4e5f60733]\n    create_s3_gateway_endpoint: {str(gateway).lower()}\n"
        f"    create_interface_endpoints: {str(interface).lower()}\n",
    )
    endpoints = resources_of(template.to_json(), "AWS::EC2::VPCEndpoint").values()
    assert len(endpoints) == count
    assert sum(e["Properties"]["VpcEndpointType"] == "Gateway" for e in endpoints) == int(gateway)
