"""IAM size limits, per role, over every stack that attaches policies to it.

IAM refuses a role whose inline policies together exceed 10,240 characters, a managed policy over
6,144 characters and (by default) more than 10 managed policies on one role, whitespace not counted.
CDK splits a role's own default policy when it grows, but it cannot see what other stacks attach, so
this counts the resolved policies of every role across the stacks of an environment with the
longest names the configuration allows.
"""

from __future__ import annotations

import pytest
import yaml

from config.loader import DEFAULT_CONFIG_DIR
from config.schema import ENV_NAME_PATTERN
from tests.conftest import approved_context, synthesize
from tests.iam_eval import collect_role_policies, policy_size, resolver_for

INLINE_LIMIT, MANAGED_LIMIT, MANAGED_PER_ROLE = 10_240, 6_144, 10
LONGEST_NAME = "a" + "b" * 19  # ENV_NAME_PATTERN allows 20 characters


@pytest.fixture(scope="module")
def longest(tmp_path_factory):
    """The dev example (every feature that grants: MLflow, serving, Model Monitor) under the longest name."""
    assert ENV_NAME_PATTERN.match(LONGEST_NAME) and not ENV_NAME_PATTERN.match(LONGEST_NAME + "b")
    config_dir = tmp_path_factory.mktemp("config.longest")
    dev = yaml.safe_load((DEFAULT_CONFIG_DIR / "dev.yaml").read_text(encoding="utf-8"))
    dev["name"] = LONGEST_NAME
    dev.setdefault("monitoring", {})["model_monitor"] = {"enabled": True}
    (config_dir / f"{LONGEST_NAME}.yaml").write_text(yaml.safe_dump(dev), encoding="utf-8")
    group = f"mlp-{LONGEST_NAME}-models"
    baseline = f"s3://mlp-{LONGEST_NAME}-reports/mlp-{LONGEST_NAME}-model-build/exec-1/data-quality-baseline"
    package = {
        "arn": f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/{group}/3",
        "version": 3,
        "group": group,
        "creation_time": "2026-11-20T09:30:00Z",
        "data_quality_statistics": f"{baseline}/statistics.json",
        "data_quality_constraints": f"{baseline}/constraints.json",
    }
    return synthesize(
        tmp_path_factory.mktemp("cdk.out.longest"), LONGEST_NAME, config_dir, context=approved_context(LONGEST_NAME, package)
    )


def test_the_longest_environment_has_every_stack(longest):
    assert {"Studio", "Serving", "Monitoring", "ModelBuild"} <= set(longest.stack_ids)


def test_every_role_stays_within_iam_policy_limits(longest):
    roles = collect_role_policies(resolver_for(longest))
    problems = []
    for name, role in sorted(roles.items()):
        if role.inline_size >= INLINE_LIMIT:
            problems.append(f"{role.logical_id}: inline policies {role.inline_size} characters")
        problems += [
            f"{role.logical_id}: managed policy of {policy_size(doc)} characters" for doc in role.managed if policy_size(doc) >= MANAGED_LIMIT
        ]
        if len(role.managed) + len(role.aws_managed) > MANAGED_PER_ROLE:
            problems.append(f"{role.logical_id}: {len(role.managed) + len(role.aws_managed)} managed policies")
    assert problems == [], "\n".join(problems)
    # The personas are the roles granted to from the most stacks: their grants from other stacks are managed.
    lead = next(r for r in roles.values() if r.logical_id.startswith("StudioLeadRole"))
    assert len(lead.managed) >= 2


def test_the_size_check_sees_policies_attached_from_other_stacks():
    from tests.iam_eval import Resolver

    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::" + "b" * 60 + "/*"}
    templates = {
        "A": {"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {}}}, "Outputs": {"Name": {"Value": {"Ref": "R"}}}},
        "B": {
            "Resources": {
                f"P{i}": {
                    "Type": "AWS::IAM::Policy",
                    "Properties": {
                        "PolicyName": f"p{i}",
                        "Roles": [{"Fn::GetStackOutput": {"StackName": "A", "OutputName": "Name"}}],
                        "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement] * 20},
                    },
                }
                for i in range(6)
            }
        },
    }
    (role,) = collect_role_policies(Resolver(templates)).values()
    assert len(role.inline) == 6 and role.inline_size > INLINE_LIMIT
