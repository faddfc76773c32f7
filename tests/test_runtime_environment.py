"""Runtime environment: what a model's containers need at run time, in every synthesized template.

A container that downloads code or data itself (a script directory in S3, multi-model archives)
needs its region (hosting sets no AWS_REGION; without SAGEMAKER_REGION the SDK goes to the global
S3 endpoint, which a VPC without NAT cannot reach). A container that is not network-isolated runs
code from S3 next to whatever shares its security group: it gets a group of its own, which admits
nothing and reaches no address range but through prefix lists and security groups.
"""

from __future__ import annotations

import json

from tests.conftest import pipeline_sub, resources_of


def _text(value) -> str:
    """A CloudFormation value as text (tokens rendered as JSON), for prefix checks."""
    return value if isinstance(value, str) else json.dumps(value)


def downloads_itself(container: dict) -> bool:
    """The container fetches code or models from S3 itself, not SageMaker before it starts."""
    submit = (container.get("Environment") or {}).get("SAGEMAKER_SUBMIT_DIRECTORY")
    fetches_code = submit is not None and "s3://" in _text(submit)
    return fetches_code or container.get("Mode") == "MultiModel"


def _models(synth):
    for stack_id in synth.stack_ids:
        template = synth.template_json(stack_id)
        for logical_id, model in resources_of(template, "AWS::SageMaker::Model").items():
            yield stack_id, template, logical_id, model["Properties"]


def _group_ref(value) -> str | None:
    """The logical id of a security group of this template a value refers to (None: imported or literal)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "GroupId":
        return value["Fn::GetAtt"][0]
    return None


def test_every_container_that_downloads_itself_knows_its_region(every_synth):
    checked = 0
    for synth in every_synth:
        for stack_id, _, logical_id, model in _models(synth):
            containers = model.get("Containers") or [model.get("PrimaryContainer")]
            for container in containers:
                if downloads_itself(container):
                    checked += 1
                    region = (container.get("Environment") or {}).get("SAGEMAKER_REGION")
                    assert region, f"{synth.stage.node.id}/{stack_id}/{logical_id}: downloads from S3 without SAGEMAKER_REGION"
    assert checked >= 2, "the multi-model models of the serving synths are checked"


def test_registered_packages_serve_without_downloading(every_synth):
    """Package models take their containers from the registration: those must find their code in the archive."""
    checked = 0
    for synth in every_synth:
        if "ModelBuild" not in synth.stack_ids:
            continue
        body, _ = pipeline_sub(synth.template_json("ModelBuild"))
        for container in _registered_containers(json.loads(body)["Steps"]):
            checked += 1
            assert not downloads_itself(container) or container.get("Environment", {}).get("SAGEMAKER_REGION"), container
    assert checked >= len(every_synth)


def _registered_containers(steps: list[dict]):
    for step in steps:
        if step["Type"] == "RegisterModel":
            yield from step["Arguments"]["InferenceSpecification"]["Containers"]
        yield from _registered_containers(step.get("Arguments", {}).get("IfSteps", []))
        yield from _registered_containers(step.get("Arguments", {}).get("ElseSteps", []))


def test_every_model_without_network_isolation_has_a_security_group_of_its_own(every_synth):
    checked = 0
    for synth in every_synth:
        for stack_id, template, logical_id, model in _models(synth):
            where = f"{synth.stage.node.id}/{stack_id}/{logical_id}"
            if model.get("EnableNetworkIsolation") is True:
                continue
            checked += 1
            groups = model["VpcConfig"]["SecurityGroupIds"]
            owned = [_group_ref(g) for g in groups]
            assert len(groups) == 1 and owned[0] is not None, f"{where}: not isolated, in a shared (imported) security group"
            (group,) = owned
            assert template["Resources"][group]["Type"] == "AWS::EC2::SecurityGroup"
            # No other resource of any template attaches to it.
            users = [
                k for k, r in template["Resources"].items()
                if k != logical_id and group in json.dumps(r.get("Properties", {}))
                and r["Type"] not in ("AWS::EC2::SecurityGroupEgress", "AWS::EC2::SecurityGroupIngress")
            ]  # fmt: skip
            assert not users, f"{where}: its security group {group} is also used by {users}"
            props = template["Resources"][group]["Properties"]
            assert not props.get("SecurityGroupIngress"), f"{where}: its security group admits traffic"
            into = [r for r in resources_of(template, "AWS::EC2::SecurityGroupIngress").values() if _group_ref(r["Properties"]["GroupId"]) == group]
            assert not into, f"{where}: its security group admits traffic: {into}"
            egress = [r["Properties"] for r in resources_of(template, "AWS::EC2::SecurityGroupEgress").values()
                      if _group_ref(r["Properties"]["GroupId"]) == group] + list(props.get("SecurityGroupEgress", []))  # fmt: skip
            assert egress, f"{where}: no egress at all (CDK's placeholder rule only)"
            for rule in egress:
                assert "CidrIp" not in rule and "CidrIpv6" not in rule, f"{where}: egress to an address range: {rule}"
    assert checked >= 2, "the multi-model models of the serving synths are checked"
