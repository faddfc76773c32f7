"""Lifecycle safety of the templates: retries after a failed first deploy, updates CloudFormation can
perform, cross-stack values that reach their consumers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from config import load_config
from review.cfn_schemas import create_only, explicit_names, value_at
from tests.conftest import MODEL_MONITOR_CHANGES, MODEL_MONITOR_PACKAGE, approved_context, merged, synthesize, synthesize_changed

RETAIN_EXCEPT_ON_CREATE = "RetainExceptOnCreate"


def kept_resources(synth) -> dict[tuple[str, str, str], tuple[str, object]]:
    """(stack, type, logical id) -> (deletion policy, explicit name or None) of every resource kept on delete."""
    kept = {}
    for stack_id in synth.stack_ids:
        for logical_id, resource in synth.template_json(stack_id)["Resources"].items():
            policy = resource.get("DeletionPolicy", "Delete")
            if policy != "Delete":
                names = list(explicit_names(resource).values())
                kept[(stack_id, resource["Type"], logical_id)] = (policy, names[0] if names else None)
    return kept


# Every fixed-name resource the platform keeps on delete, with the policy it must have: a rolled-back
# first create deletes them, so the retry does not fail with "already exists".
FIXED_NAME_KEPT = {
    ("Network", "AWS::Logs::LogGroup", "/{prefix}/vpc-flow-logs"),
    # Named so the logs key's policy (log groups /<prefix>/*) admits it: the cleanup's logs are encrypted with that key.
    ("Studio", "AWS::Logs::LogGroup", "/{prefix}/studio-cleanup"),
    ("ModelBuild", "AWS::SageMaker::ModelPackageGroup", "{prefix}-models"),
}
# Also on the logs key, so named alike: with a new VPC, CDK's default-group restriction; with serving, the multi-model
# group's prefix-list lookup.
NEW_VPC_KEPT = ("Network", "AWS::Logs::LogGroup", "/{prefix}/vpc-default-sg-restriction")
SERVING_KEPT = ("Serving", "AWS::Logs::LogGroup", "/{prefix}/serving/s3-prefix-list-lookup")


@pytest.mark.parametrize("synth", ["sandbox", "serving", "examples"])
def test_fixed_name_resources_kept_on_delete_are_deleted_when_their_create_rolls_back(request, synth):
    synths = request.getfixturevalue(synth)
    for env_synth in synths.values() if isinstance(synths, dict) else [synths]:
        prefix = f"mlp-{env_synth.stage.node.id.removeprefix('MlPlatform-')}"
        kept = kept_resources(env_synth)
        named = {(stack, rtype, name): policy for (stack, rtype, _), (policy, name) in kept.items() if name is not None}
        config = load_config(env_synth.stage.node.id.removeprefix("MlPlatform-"))
        expected = set(FIXED_NAME_KEPT)
        expected |= {NEW_VPC_KEPT} if config.network.existing_vpc is None else set()
        expected |= {SERVING_KEPT} if "Serving" in env_synth.stack_ids else set()
        assert named == {(s, t, n.format(prefix=prefix)): RETAIN_EXCEPT_ON_CREATE for s, t, n in expected}
        # Generated names never collide on a retry: buckets keep plain Retain (a rolled-back create could not
        # delete a bucket log deliveries already reached), keys and the rest are deleted with a failed create.
        unnamed = {key: policy for key, (policy, name) in kept.items() if name is None}
        buckets = {key: unnamed.pop(key) for key in list(unnamed) if key[1] == "AWS::S3::Bucket"}
        assert len(buckets) == 5 and set(buckets.values()) == {"Retain"}
        assert unnamed and set(unnamed.values()) == {RETAIN_EXCEPT_ON_CREATE}, unnamed
        assert all(
            env_synth.template_json(stack)["Resources"][lid].get("UpdateReplacePolicy") == "Retain" for (stack, _, lid) in kept
        )


# --- updates CloudFormation can perform -------------------------------------------------------------------


def references(value) -> set[str]:
    """Logical ids a template value reads (Ref, Fn::GetAtt, and ${Name} inside Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in value:
            body = value["Fn::Sub"][0] if isinstance(value["Fn::Sub"], list) else value["Fn::Sub"]
            found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", body)}
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def replaced_resources(before: dict, after: dict) -> dict[str, list[str]]:
    """Logical id -> why CloudFormation replaces it: a create-only property changes, in its text or
    through a reference to a replaced resource (whose new physical id then flows into it)."""
    old, new = before["Resources"], after["Resources"]
    common = [lid for lid in new if lid in old and old[lid]["Type"] == new[lid]["Type"]]
    replaced: dict[str, list[str]] = {}
    changed = True
    while changed:
        changed = False
        for lid in common:
            if lid in replaced:
                continue
            resource_type, props_old, props_new = new[lid]["Type"], old[lid].get("Properties", {}), new[lid].get("Properties", {})
            why = []
            for path in create_only(resource_type):
                a, b = value_at(props_old, path), value_at(props_new, path)
                if a != b:
                    why.append(f"{'/'.join(path)} changes")
                elif replaced.keys() & references(b):
                    why.append(f"{'/'.join(path)} reads replaced {sorted(replaced.keys() & references(b))}")
            if why:
                replaced[lid] = why
                changed = True
    return replaced


def impossible_updates(before: dict, after: dict) -> list[str]:
    """Updates CloudFormation cannot perform: a named resource replaced under the same name, or a name
    moving to another logical id (CloudFormation creates the new resource before deleting the old)."""
    old, new = before["Resources"], after["Resources"]
    problems = []
    for lid, why in sorted(replaced_resources(before, after).items()):
        names = explicit_names(new[lid])
        if names and names == explicit_names(old[lid]):
            problems.append(f"{lid} ({new[lid]['Type']}) keeps its name {list(names.values())} while {'; '.join(why)}")
    old_names = {(r["Type"], json.dumps(n, sort_keys=True)): lid for lid, r in old.items() for n in explicit_names(r).values()}
    for lid, resource in sorted(new.items()):
        for name in explicit_names(resource).values():
            previous = old_names.get((resource["Type"], json.dumps(name, sort_keys=True)))
            if previous is not None and previous != lid and previous not in new:
                problems.append(f"{lid} ({resource['Type']}) takes the name {name} of {previous}, deleted only after it is created")
    return problems


# Realistic changes to a running environment, from the dev example with serving and Model Monitor on
# (the session's ``model_monitor`` synth). Independent changes share a synth.
PEOPLE_AND_CONTACTS = {
    "studio": {
        "users": [{"name": "alice", "persona": "data_scientist"}, {"name": "carol", "persona": "lead"}],  # bob leaves
        "shared_spaces": [{"name": "team-space", "owner": "carol"}],
        "default_instance_type": "ml.t3.xlarge",
        "idle_timeout_minutes": 240,
        "mlflow": {"enabled": True, "size": "Large"},
    },
    "pipeline": {"notification_emails": ["ml-platform@example.com", "ml-leads@example.com"]},
    "monitoring": {"notification_emails": ["ml-oncall@example.com"], "budget": {"forecast_alert_percent": 90}},
    "tags": {"CostCenter": "ml-research", "Team": "churn"},
}
SETTINGS_AND_SIZES = {
    "pipeline": {
        "processing_instance_type": "ml.m5.2xlarge",
        "training_instance_type": "ml.c5.2xlarge",
        "accuracy_threshold": 0.8,
        "schedule": "rate(14 days)",
    },
    "serving": {
        "realtime": {"instance_type": "ml.c5.large", "data_capture_percentage": 25, "scaling": {"min_capacity": 1, "max_capacity": 6}},
        "asynchronous": {"scaling": {"min_capacity": 0, "max_capacity": 4}},
        "batch": {"instance_type": "ml.m5.xlarge", "schedule": "cron(30 5 * * ? *)"},
    },
    "monitoring": {
        "alarms": {"server_error_rate_percent": 2, "model_latency_p99_ms": 300, "invocations_absent_minutes": 30},
        "budget": {"monthly_limit_usd": 750, "actual_alert_percent": 110},
        "drift_check": {"schedule": "rate(2 hours)", "psi_threshold": 0.25, "instance_type": "ml.m5.xlarge"},
        "model_monitor": {"instance_type": "ml.m5.2xlarge"},
    },
}


@pytest.fixture(scope="module", params=["people_and_contacts", "settings_and_sizes"])
def changed(request, tmp_path_factory):
    changes = {"people_and_contacts": PEOPLE_AND_CONTACTS, "settings_and_sizes": SETTINGS_AND_SIZES}[request.param]
    return synthesize_changed(
        tmp_path_factory.mktemp(f"cdk.out.{request.param}"),
        tmp_path_factory.mktemp(f"config.{request.param}"),
        "dev",
        merged(MODEL_MONITOR_CHANGES, changes),
        context=approved_context("dev", MODEL_MONITOR_PACKAGE),
    )


def test_realistic_config_changes_need_no_replacement_under_the_same_name(model_monitor, changed):
    problems, changed_stacks = {}, 0
    for stack_id in model_monitor.stack_ids:
        before, after = model_monitor.template_json(stack_id), changed.template_json(stack_id)
        changed_stacks += before != after
        if found := impossible_updates(before, after):
            problems[stack_id] = found
    assert changed_stacks >= 3
    assert not problems


def test_the_replacement_check_finds_a_name_kept_across_a_create_only_change():
    def budget(percent: float, name: str) -> dict:
        return {"Resources": {"B": {"Type": "AWS::Budgets::Budget", "Properties": {
            "Budget": {"BudgetName": name}, "NotificationsWithSubscribers": [{"Notification": {"Threshold": percent}}]}}}}  # fmt: skip

    assert impossible_updates(budget(80, "fixed"), budget(90, "fixed"))
    assert not impossible_updates(budget(80, "fixed-1"), budget(90, "fixed-2"))

    def space(owner: str, domain: str) -> dict:
        return {"Resources": {
            "D": {"Type": "AWS::SageMaker::Domain", "Properties": {"DomainName": "d", "KmsKeyId": domain}},
            "S": {"Type": "AWS::SageMaker::Space", "Properties": {"DomainId": {"Fn::GetAtt": ["D", "DomainId"]}, "SpaceName": "s",
                                                                  "OwnershipSettings": {"OwnerUserProfileName": owner}}}}}  # fmt: skip

    # A replaced domain replaces the space in it (a new DomainId), even though the space's text is unchanged.
    assert [p.split(" ")[0] for p in impossible_updates(space("a", "k1"), space("a", "k2"))] == ["D", "S"]
    moved = {"Resources": {"Other": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/x"}}}}
    assert impossible_updates({"Resources": {"Old": moved["Resources"]["Other"]}}, moved)


# --- names at their longest ---------------------------------------------------------------------------------

LONGEST_ENV = "a" * 19 + "z"


def test_names_at_their_longest_still_make_valid_aws_names(tmp_path):
    """The longest environment, user, space and endpoint names the config accepts give names every
    resource accepts (cfn-lint checks each name property against its pattern and length)."""
    user = "u" * 62 + "1"
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / f"{LONGEST_ENV}.yaml").write_text(
        json.dumps({
            "account": "111111111111", "region": "eu-west-1",
            "network": {"new_vpc": {"availability_zones": ["eu-west-1a", "eu-west-1b"]}},
            "studio": {"users": [{"name": user}], "shared_spaces": [{"name": "s" * 52, "owner": user}]},
            "serving": {"realtime": {"endpoint_name": "e" * 63}, "multi_model": {"endpoint_name": "m" * 62 + "1"}},
        }),
        encoding="utf-8",
    )  # fmt: skip
    package = {**MODEL_MONITOR_PACKAGE, "arn": MODEL_MONITOR_PACKAGE["arn"].replace("mlp-dev-models", f"mlp-{LONGEST_ENV}-models")}
    package["group"] = f"mlp-{LONGEST_ENV}-models"
    synth = synthesize(tmp_path / "out", LONGEST_ENV, config_dir, context=approved_context(LONGEST_ENV, package))
    templates = [str(synth.template_path(stack_id)) for stack_id in synth.stack_ids]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--format", "parseable", "--", *templates], capture_output=True, text=True, timeout=300)
    assert result.stdout == "" and result.returncode == 0, result.stdout + result.stderr


# --- cross-stack values ---------------------------------------------------------------------------------


def cross_stack_reads(synth) -> list[tuple[str, str, str, str]]:
    """(consumer stack, producer stack id, producer logical id, "weak"|"strong") for every cross-stack read."""
    by_name = {s.stack_name: s.node.id for s in synth.stage.stacks}
    found: list[tuple[str, str, str]] = []

    def walk(value, consumer: str) -> None:
        if isinstance(value, dict):
            if "Fn::GetStackOutput" in value:
                read = value["Fn::GetStackOutput"]
                found.append((consumer, by_name[read["StackName"]], read["OutputName"], "weak"))
            elif "Fn::ImportValue" in value:
                stack_name, output = value["Fn::ImportValue"].split(":", 1)
                found.append((consumer, by_name[stack_name], output, "strong"))
            for item in value.values():
                walk(item, consumer)
        elif isinstance(value, list):
            for item in value:
                walk(item, consumer)

    for stack_id in synth.stack_ids:
        walk(synth.template_json(stack_id)["Resources"], stack_id)
    reads = []
    for consumer, producer, output, strength in found:
        outputs = synth.template_json(producer)["Outputs"]
        key = output if strength == "weak" else next(k for k, o in outputs.items() if o.get("Export", {}).get("Name", "").endswith(f":{output}"))
        (resource,) = references(outputs[key]["Value"])
        reads.append((consumer, producer, resource, strength))
    return reads


def settable_create_only(template: dict, logical_id: str) -> list[str]:
    resource = template["Resources"][logical_id]
    return ["/".join(p) for p in create_only(resource["Type"]) if value_at(resource.get("Properties", {}), p) is not None]


def test_weakly_read_values_can_never_change_and_the_rest_are_exports(every_synth):
    """A weak read (Fn::GetStackOutput) goes stale when its producer is replaced and the consumer's text stays
    the same (cdk deploy skips it). Weakly read producers set no create-only property, so no config change
    can replace them; the ones that do (VPC, subnets, workload group) are exports, which CloudFormation
    refuses to change while another stack imports them."""
    strong_types = set()
    for synth in every_synth:
        reads = cross_stack_reads(synth)
        assert reads
        for consumer, producer, resource, strength in reads:
            template = synth.template_json(producer)
            fixed = settable_create_only(template, resource)
            if strength == "weak":
                assert not fixed, f"{consumer} reads {producer}.{resource} weakly, but {fixed} can replace it"
            else:
                strong_types.add(template["Resources"][resource]["Type"])
    assert strong_types == {"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::SecurityGroup"}


def test_a_network_change_that_replaces_shared_resources_reaches_every_consumer(examples, tmp_path_factory):
    """A new CIDR replaces the VPC, its subnets and the workload group: every stack reading them reads an export."""
    before = examples["dev"]
    after = synthesize_changed(tmp_path_factory.mktemp("cdk.out.cidr"), tmp_path_factory.mktemp("config.cidr"), "dev",
                               {"network": {"new_vpc": {"cidr": "10.40.0.0/16"}}})  # fmt: skip
    replaced = set(replaced_resources(before.template_json("Network"), after.template_json("Network")))
    read = {(producer, resource): strength for _, producer, resource, strength in cross_stack_reads(after)}
    replaced_and_read = {resource: strength for (producer, resource), strength in read.items() if producer == "Network" and resource in replaced}
    assert len(replaced_and_read) == 4  # the VPC, two subnets, the workload security group
    assert set(replaced_and_read.values()) == {"strong"}
