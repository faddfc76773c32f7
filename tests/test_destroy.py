"""ops.destroy: the confirmed teardown, against botocore's Stubber (no request leaves the process)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from ops import destroy as teardown
from ops.destroy import DESTROY_ORDER, DestroyError, main, stack_names

ENV = "dev"
VPC = "vpc-0a1b2c3d4e5f60718"
STACK_ARN = "arn:aws:cloudformation:eu-west-1:111111111111:stack/{name}/1"


@pytest.fixture
def stubs():
    """Stubbed CloudFormation, EFS and EC2 clients; every queued answer must be consumed."""
    clients = {
        service: boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
        for service in ("cloudformation", "efs", "ec2", "sagemaker")
    }
    stubbers = {service: Stubber(client) for service, client in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    yield clients, stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def stack(name: str, status: str = "CREATE_COMPLETE", outputs: list | None = None) -> dict:
    found = {"StackName": name, "StackId": STACK_ARN.format(name=name), "StackStatus": status, "CreationTime": "2026-01-01T00:00:00Z"}
    if outputs:
        found["Outputs"] = outputs
    return found


def expect_describe(cfn: Stubber, name: str, status: str | None = "CREATE_COMPLETE", **kwargs) -> None:
    if status is None:
        cfn.add_client_error("describe_stacks", "ValidationError", f"Stack with id {name} does not exist", 400, {"StackName": name})
    else:
        cfn.add_response("describe_stacks", {"Stacks": [stack(name, status, **kwargs)]}, {"StackName": name})


def expect_template(cfn: Stubber, name: str, resources: dict) -> None:
    cfn.add_response("get_template", {"TemplateBody": json.dumps({"Resources": resources})}, {"StackName": name, "TemplateStage": "Original"})


def summary(logical: str, rtype: str, physical: str, status: str = "CREATE_COMPLETE", reason: str | None = None) -> dict:
    found = {"LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": rtype,
             "LastUpdatedTimestamp": "2026-01-01T00:00:00Z", "ResourceStatus": status}  # fmt: skip
    if reason:
        found["ResourceStatusReason"] = reason
    return found


def expect_resources(cfn: Stubber, name: str, summaries: list[dict]) -> None:
    cfn.add_response("list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": name})


def expect_deletion(cfn: Stubber, name: str, polls: int = 1) -> None:
    cfn.add_response("delete_stack", {}, {"StackName": name})
    for _ in range(polls):
        expect_describe(cfn, name, "DELETE_IN_PROGRESS")
    expect_describe(cfn, name, None)


def expect_file_systems(efs: Stubber, ids_and_domains: list[tuple[str, str | None]]) -> None:
    """``(file system id, Studio domain id or None)``: SageMaker tags a domain's home EFS with the domain's ARN."""
    systems = [
        {"OwnerId": "111111111111", "CreationToken": fs, "FileSystemId": fs, "CreationTime": "2026-01-01T00:00:00Z",
         "LifeCycleState": "available", "NumberOfMountTargets": 2, "SizeInBytes": {"Value": 6144}, "PerformanceMode": "generalPurpose",
         "Tags": [{"Key": teardown.SAGEMAKER_EFS_TAG, "Value": f"arn:aws:sagemaker:eu-west-1:111111111111:domain/{domain}"}] if domain else []}
        for fs, domain in ids_and_domains
    ]  # fmt: skip
    efs.add_response("describe_file_systems", {"FileSystems": systems}, {})


def kept_template() -> dict:
    return {
        "DataBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        "DataKey": {"Type": "AWS::KMS::Key", "DeletionPolicy": "RetainExceptOnCreate"},
        "Role": {"Type": "AWS::IAM::Role"},
    }


def run(clients, **kwargs):
    lines = []
    retained = teardown.destroy(ENV, clients.__getitem__, sleep=lambda _: None, out=lines.append, **kwargs)
    return retained, lines


def test_stack_names_and_order_match_the_stage(sandbox):
    """Each stack is deleted before every stack it depends on."""
    names = {s.node.id: s.stack_name for s in sandbox.stage.stacks}
    assert [names[i] for i in DESTROY_ORDER if i in names] == [n for n in stack_names("sandbox") if n.split("-")[-1] in names]
    position = {stack_id: i for i, stack_id in enumerate(DESTROY_ORDER)}
    for s in sandbox.stage.stacks:
        for dependency in s.dependencies:
            assert position[s.node.id] < position[dependency.node.id], (s.node.id, dependency.node.id)


def test_deletes_in_order_skips_missing_stacks_and_lists_what_stays(stubs):
    clients, stub = stubs
    cfn = stub["cloudformation"]
    for name in stack_names(ENV):
        if name.endswith("-Serving"):
            expect_describe(cfn, name, None)
            continue
        expect_describe(cfn, name, outputs=[{"OutputKey": "VpcId", "OutputValue": VPC}] if name.endswith("-Network") else None)
        if name.endswith("-Foundation"):
            expect_template(cfn, name, kept_template())
            expect_resources(cfn, name, [summary("DataBucket", "AWS::S3::Bucket", "mlp-dev-data-abc"),
                                         summary("DataKey", "AWS::KMS::Key", "key-1"), summary("Role", "AWS::IAM::Role", "r")])  # fmt: skip
        else:
            expect_template(cfn, name, {})
            expect_resources(cfn, name, [])
        expect_deletion(cfn, name, polls=2)
    expect_file_systems(stub["efs"], [("fs-home", "d-1"), ("fs-other", None)])
    retained, lines = run(clients, remove_leftovers=False)
    assert [line for line in lines if line.endswith("deleting ...")] == [f"{n}: deleting ..." for n in stack_names(ENV) if not n.endswith("-Serving")]
    assert "MlPlatform-dev-Serving: not deployed, skipped" in lines
    assert retained.resources == [("MlPlatform-dev-Foundation", "AWS::S3::Bucket", "mlp-dev-data-abc"),
                                  ("MlPlatform-dev-Foundation", "AWS::KMS::Key", "key-1")]  # fmt: skip
    assert retained.file_systems == ["fs-home"]
    report = retained.report()
    assert "mlp-dev-data-abc" in report and "key-1" in report and "Studio home EFS (users' files): fs-home" in report


def test_a_failed_deletion_stops_and_names_the_resource_with_a_hint_for_the_vpc(stubs):
    clients, stub = stubs
    cfn = stub["cloudformation"]
    for name in stack_names(ENV)[:-1]:
        expect_describe(cfn, name, None)
    network = stack_names(ENV)[-1]
    expect_describe(cfn, network, outputs=[{"OutputKey": "VpcId", "OutputValue": VPC}])
    expect_template(cfn, network, {})
    expect_resources(cfn, network, [])
    cfn.add_response("delete_stack", {}, {"StackName": network})
    expect_describe(cfn, network, "DELETE_FAILED")
    expect_resources(cfn, network, [summary("NetworkVpcWorkloadSubnet1", "AWS::EC2::Subnet", "subnet-1", "DELETE_FAILED",
                                            "has dependencies and cannot be deleted")])  # fmt: skip
    with pytest.raises(DestroyError) as caught:
        run(clients, remove_leftovers=False)
    message = str(caught.value)
    assert "MlPlatform-dev-Network could not be deleted: NetworkVpcWorkloadSubnet1 (AWS::EC2::Subnet): has dependencies" in message
    assert "--remove-sagemaker-leftovers" in message


def test_sagemaker_leftovers_are_removed_from_the_vpc_only_when_asked(stubs):
    clients, stub = stubs
    cfn, efs, ec2 = stub["cloudformation"], stub["efs"], stub["ec2"]
    for name in stack_names(ENV)[:-1]:
        expect_describe(cfn, name, None)
    network = stack_names(ENV)[-1]
    expect_describe(cfn, network, outputs=[{"OutputKey": "VpcId", "OutputValue": VPC}])
    expect_template(cfn, network, {"FlowLogGroup": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "RetainExceptOnCreate"}})
    expect_resources(cfn, network, [summary("FlowLogGroup", "AWS::Logs::LogGroup", "/mlp-dev/vpc-flow-logs")])
    # The deleted domain d-1's home EFS has one mount target in this VPC and one elsewhere (left alone); the live
    # domain d-2 of another team in the same VPC keeps its home EFS mount targets and NFS groups.
    sagemaker = stub["sagemaker"]
    expect_file_systems(efs, [("fs-home", "d-1"), ("fs-team", None), ("fs-live", "d-2")])
    sagemaker.add_client_error("describe_domain", "ResourceNotFound", "Domain d-1 not found", 400, {"DomainId": "d-1"})
    sagemaker.add_response("describe_domain", {"DomainId": "d-2"}, {"DomainId": "d-2"})
    mine = {"MountTargetId": "fsmt-0a1b2c3d", "FileSystemId": "fs-home", "SubnetId": "subnet-0a1b2c3d", "LifeCycleState": "available", "VpcId": VPC}
    other = {**mine, "MountTargetId": "fsmt-9f8e7d6c", "SubnetId": "subnet-9f8e7d6c", "VpcId": "vpc-other"}
    efs.add_response("describe_mount_targets", {"MountTargets": [mine, other]}, {"FileSystemId": "fs-home"})
    efs.add_response("delete_mount_target", {}, {"MountTargetId": "fsmt-0a1b2c3d"})
    efs.add_response("describe_mount_targets", {"MountTargets": [{**mine, "LifeCycleState": "deleting"}, other]}, {"FileSystemId": "fs-home"})
    efs.add_response("describe_mount_targets", {"MountTargets": [other]}, {"FileSystemId": "fs-home"})
    inbound = {"GroupId": "sg-in", "GroupName": "security-group-for-inbound-nfs-d-1", "Description": "nfs", "VpcId": VPC,
               "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": "sg-out"}]}],
               "IpPermissionsEgress": []}  # fmt: skip
    outbound = {"GroupId": "sg-out", "GroupName": "security-group-for-outbound-nfs-d-1", "Description": "nfs", "VpcId": VPC,
                "IpPermissions": [],
                "IpPermissionsEgress": [{"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": "sg-in"}]}]}  # fmt: skip
    filters = [{"Name": "vpc-id", "Values": [VPC]}, {"Name": "group-name", "Values": list(teardown.SAGEMAKER_NFS_GROUPS)}]
    live = {**inbound, "GroupId": "sg-live", "GroupName": "security-group-for-inbound-nfs-d-2"}
    ec2.add_response("describe_security_groups", {"SecurityGroups": [inbound, outbound, live]}, {"Filters": filters})
    ec2.add_response("revoke_security_group_ingress", {}, {"GroupId": "sg-in", "IpPermissions": inbound["IpPermissions"]})
    ec2.add_response("revoke_security_group_egress", {}, {"GroupId": "sg-out", "IpPermissions": outbound["IpPermissionsEgress"]})
    ec2.add_response("delete_security_group", {}, {"GroupId": "sg-in"})
    ec2.add_response("delete_security_group", {}, {"GroupId": "sg-out"})
    expect_deletion(cfn, network)
    expect_file_systems(efs, [("fs-home", "d-1")])
    retained, lines = run(clients, remove_leftovers=True)
    removed = [line for line in lines if ": removed " in line]
    assert removed == [
        f"{network}: removed EFS mount target fsmt-0a1b2c3d (fs-home, subnet-0a1b2c3d)",
        f"{network}: removed security group sg-in (security-group-for-inbound-nfs-d-1)",
        f"{network}: removed security group sg-out (security-group-for-outbound-nfs-d-1)",
    ]
    assert retained.resources == [(network, "AWS::Logs::LogGroup", "/mlp-dev/vpc-flow-logs")]
    assert retained.file_systems == ["fs-home"]  # the users' files are never deleted here


def test_the_environment_name_must_be_typed_again_before_any_aws_call():
    def no_client(*_args):
        raise AssertionError("no AWS client before confirmation")

    assert main(["--env", ENV], client_factory=no_client, ask=lambda _prompt: "prod") == teardown.EXIT_NOT_CONFIRMED
    assert main(["--env", ENV, "--confirm", "de"], client_factory=no_client) == teardown.EXIT_NOT_CONFIRMED


def test_confirmed_teardown_reports_failures_as_exit_2(stubs, capsys):
    clients, stub = stubs
    first = stack_names(ENV)[0]
    stub["cloudformation"].add_client_error("describe_stacks", "AccessDenied", "not allowed", 403, {"StackName": first})
    code = main(["--env", ENV], client_factory=lambda service, region, profile: clients[service], ask=lambda _prompt: ENV)
    assert code == teardown.EXIT_FAILED
    assert "not allowed" in capsys.readouterr().err


def test_the_network_waits_until_lambda_releases_the_cleanup_functions_interfaces(stubs):
    """The Studio cleanup functions ran in the VPC: their interfaces hold the workload group for some minutes."""
    clients, stub = stubs
    cfn, ec2 = stub["cloudformation"], stub["ec2"]
    for name in stack_names(ENV)[:-1]:
        expect_describe(cfn, name, None)
    network = stack_names(ENV)[-1]
    expect_describe(cfn, network, outputs=[{"OutputKey": "VpcId", "OutputValue": VPC}, {"OutputKey": "WorkloadSecurityGroupId", "OutputValue": "sg-work"}])
    expect_template(cfn, network, {})
    expect_resources(cfn, network, [])
    filters = [{"Name": "group-id", "Values": ["sg-work"]}, {"Name": "interface-type", "Values": ["lambda"]}]
    interface = {"NetworkInterfaceId": "eni-0a1b2c3d", "InterfaceType": "lambda", "Status": "in-use", "VpcId": VPC}
    ec2.add_response("describe_network_interfaces", {"NetworkInterfaces": [interface]}, {"Filters": filters})
    ec2.add_response("describe_network_interfaces", {"NetworkInterfaces": [{**interface, "Status": "available"}]}, {"Filters": filters})
    ec2.add_response("describe_network_interfaces", {"NetworkInterfaces": []}, {"Filters": filters})
    expect_deletion(cfn, network)  # only once they are gone
    expect_file_systems(stub["efs"], [])
    _, lines = run(clients, remove_leftovers=False)
    waits = [line for line in lines if "waiting for Lambda" in line]
    assert waits == [f"{network}: waiting for Lambda to release 1 network interface(s) of the deleted cleanup functions ..."]
    assert lines.index(waits[0]) < lines.index(f"{network}: deleting ...")
