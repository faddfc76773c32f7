"""The app as a whole: stage layout, tags, cdk-nag, cfn-lint, determinism, offline synth and snapshots."""

from __future__ import annotations

import ast
import filecmp
import hashlib
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import aws_cdk as cdk
import constructs
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from app import COMPLIANCE_PACKS_CONTEXT, cdk_json_context
from config import load_config
from stacks.platform_stage import ENVIRONMENT_TAG, PlatformStage
from stacks.serving_stack import ServingStack
from tests.conftest import ROOT, AwsCallAttempted, load_json
from tests.definition_checks import recorded_snapshot

SNAPSHOTS = Path(__file__).parent / "snapshots"


# --- layout ---------------------------------------------------------------------------------------------


def test_one_stage_per_environment_holds_the_stacks(sandbox, examples):
    assert isinstance(sandbox.stage, PlatformStage)
    assert sandbox.stack_ids == ["Network", "Foundation", "ModelBuild", "Studio", "Monitoring"]
    assert [s.stack_name for s in sandbox.stage.stacks] == [
        "MlPlatform-sandbox-Network", "MlPlatform-sandbox-Foundation", "MlPlatform-sandbox-ModelBuild",
        "MlPlatform-sandbox-Studio", "MlPlatform-sandbox-Monitoring",
    ]  # fmt: skip
    dev = examples["dev"].stage
    assert {(s.account, s.region) for s in dev.stacks} == {("111111111111", "eu-west-1")}


def test_sandbox_is_account_agnostic(sandbox):
    for stack in sandbox.stage.stacks:
        assert cdk.Token.is_unresolved(stack.account) and cdk.Token.is_unresolved(stack.region)


def test_construct_package_does_not_shadow_the_constructs_library():
    assert Path(constructs.__file__).parent.parent.name == "site-packages"
    assert not (ROOT / "constructs").exists()


def stack_typed_props(cls: type) -> list[str]:
    """The constructor props of ``cls`` whose type is (or contains) a ``cdk.Stack``."""

    def stacks_in(hint) -> bool:
        if isinstance(hint, type) and issubclass(hint, cdk.Stack):
            return True
        return any(stacks_in(arg) for arg in typing.get_args(hint))

    return [name for name, hint in typing.get_type_hints(cls.__init__).items() if stacks_in(hint)]


def test_stacks_take_constructs_and_values_not_other_stacks(sandbox):
    class Leaning(cdk.Stack):
        def __init__(self, scope, id_: str, *, other: cdk.Stack | None = None) -> None: ...

    assert stack_typed_props(Leaning) == ["other"]
    stack_classes = {type(s) for s in sandbox.stage.stacks} | {ServingStack}
    assert len(stack_classes) == 6
    assert {c.__name__: stack_typed_props(c) for c in stack_classes} == {c.__name__: [] for c in stack_classes}


def imported_top_level_modules(source: str) -> set[str]:
    """The top-level package of every absolute import in ``source`` (``from config.schema import X`` gives ``config``)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_import_scan_sees_every_form_of_import():
    source = "import config\nimport os, config.schema as s\nfrom config.schema import A\ndef f():\n    from config import load_config\n"
    assert imported_top_level_modules(source) == {"config", "os"}
    assert imported_top_level_modules("from . import config\nfrom .config import x\n") == set()


def test_reusable_constructs_never_import_the_environment_config():
    """Constructs take props; the stacks translate the configuration into them."""
    modules = sorted((ROOT / "ml_constructs").rglob("*.py"))
    assert ROOT / "ml_constructs" / "endpoints.py" in modules
    offenders = [str(m.relative_to(ROOT)) for m in modules if {"config", "stacks"} & imported_top_level_modules(m.read_text(encoding="utf-8"))]
    assert offenders == [], f"modules under ml_constructs/ import the environment config or the stacks: {offenders}"


# --- tags -----------------------------------------------------------------------------------------------


def taggable(resource_type: str) -> bool:
    if resource_type.startswith("Custom::") or resource_type == "AWS::CDK::Metadata":
        return False
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type)
    return "Tags" in schema.schema.get("properties", {})


def tag_map(tags) -> dict:
    return tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}


def test_config_tags_are_on_every_taggable_resource(examples):
    expected = {ENVIRONMENT_TAG: "dev", **load_config("dev").tags}
    checked = 0
    for stack_id in examples["dev"].stack_ids:
        for name, resource in examples["dev"].template_json(stack_id)["Resources"].items():
            if taggable(resource["Type"]):
                tags = tag_map(resource["Properties"].get("Tags", []))
                assert expected.items() <= tags.items(), f"{name} ({resource['Type']}) lacks {expected}"
                checked += 1
    assert checked > 30


# --- cdk-nag --------------------------------------------------------------------------------------------


def test_cdk_nag_finds_nothing_unacknowledged(every_synth):
    """Every session synth runs the four packs (tests/conftest.py); none leaves a finding unacknowledged."""
    for synth in every_synth:
        plugins = load_json(synth.outdir / "validation-report.json")["pluginReports"]
        assert {"AwsSolutions", "NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321"} <= {p["pluginName"] for p in plugins}
        for plugin in plugins:  # CDK's own "CloudFormation Validate" joins when it has something to say
            assert plugin["conclusion"] == "success", plugin["pluginName"]
            assert plugin["violations"] == [], plugin["pluginName"]


def test_each_acknowledgement_is_for_one_finding_on_one_role(sandbox):
    report = load_json(sandbox.outdir / "validation-report.json")
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    acknowledged = plugin["suppressedViolations"]
    assert acknowledged
    for finding in acknowledged:
        if "CleanupProvider" not in finding["acknowledgedAt"]:
            assert re.fullmatch(r"AwsSolutions-IAM5\[(Resource|Action)::.+\]", finding["ruleName"]), "granular findings only"
        assert finding["acknowledgedId"] == f"AwsSolutions::{finding['ruleName']}"
        # On the role itself, or on a role imported into the stack whose policy it is.
        # On the role itself, on a role imported into the stack whose policy it is, or on CDK's
        # custom-resource provider framework of the Studio cleanup.
        assert re.fullmatch(
            r"MlPlatform-sandbox/(Foundation/\w+Role/Resource|(ModelBuild|Studio)/\w+Role|Studio/Domain/(CleanupRole|CleanupFrameworkRole|CleanupWaiterRole|CleanupProvider))",
            finding["acknowledgedAt"],
        ), finding["acknowledgedAt"]
        assert len(finding["reason"]) > 60
        for violating in finding["violatingConstructs"]:
            assert violating["constructPath"].startswith(finding["acknowledgedAt"] + "/")


def test_compliance_acknowledgements_are_per_pack_per_construct_with_a_reason(every_synth):
    """NIST/HIPAA/PCI findings are acknowledged one construct at a time (never a stack or the stage), in the pack
    they belong to (a bare id would drop them from the report), each with the reason a reviewer reads."""
    for synth in every_synth:
        plugins = load_json(synth.outdir / "validation-report.json")["pluginReports"]
        for plugin in plugins:
            if plugin["pluginName"] == "AwsSolutions":
                continue
            for finding in plugin["suppressedViolations"]:
                assert finding["acknowledgedId"] == f"{plugin['pluginName']}::{finding['ruleName']}", finding["ruleName"]
                assert len(finding["reason"]) > 60, finding["ruleName"]
                assert finding["acknowledgedAt"].count("/") >= 2, finding["acknowledgedAt"]  # below a stack
                (violating,) = finding["violatingConstructs"]
                assert violating["constructPath"].startswith(finding["acknowledgedAt"] + "/"), violating["constructPath"]


def test_cdk_nag_would_stop_synth_on_a_new_finding(tmp_path):
    """Proves nag is wired the way app.py wires it: an unlogged bucket fails the synth."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    s3.Bucket(stack, "Unlogged")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    rules = {v["ruleName"] for v in load_json(tmp_path / "validation-report.json")["pluginReports"][0]["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


# --- cfn-lint -------------------------------------------------------------------------------------------


def distinct_templates(every_synth) -> list[str]:
    """Every template of every synthesized environment, each distinct content once."""
    distinct: dict[str, str] = {}
    for synth in every_synth:
        for stack_id in synth.stack_ids:
            path = synth.template_path(stack_id)
            distinct.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), str(path))
    return list(distinct.values())


# checkov lives in a virtual env of its own (its boto3 pin conflicts with the platform's); `make test` creates it.
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.mark.parametrize("half", [0, 1])
def test_cfn_lint_reports_nothing_on_any_template(every_synth, half):
    """cfn-lint on every distinct template of every synthesized environment, in two halves so that the two
    workers share it."""
    templates = distinct_templates(every_synth)
    # The sandbox and both examples differ throughout; a package adds Serving and changes Monitoring, and
    # Model Monitor changes more: at least 5 + 5 + 5 + 2 distinct templates.
    assert len(templates) >= 17
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--format", "parseable", "--", *templates[half::2]], capture_output=True, text=True, timeout=300)
    assert result.stdout == "" and result.returncode == 0, result.stdout + result.stderr


def test_checkov_reports_no_failed_check(serving, model_monitor, examples):
    """checkov's CloudFormation checks, offline: no failed check. What checkov skips is skipped on one resource (its
    metadata), with the reason a reviewer reads. It reads the environments that hold every kind of resource: the
    sandbox serving a model (a superset of the sandbox), dev with Model Monitor, prod (an existing VPC)."""
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed: `make test` (or `make .make/checkov`) creates .venv-checkov")
    checked = distinct_templates([serving, model_monitor, examples["prod"]])
    args = [str(CHECKOV), "--skip-download", "--framework", "cloudformation", "--quiet", "--compact", "-o", "json"]
    checkov = subprocess.run([*args, *(a for t in checked for a in ("-f", t))], capture_output=True, text=True, timeout=300)
    reports, text, at = [], checkov.stdout.strip(), 0
    while at < len(text):  # one JSON document per file, or one list
        document, at = json.JSONDecoder().raw_decode(text, at)
        reports += document if isinstance(document, list) else [document]
        at = len(text) - len(text[at:].lstrip())
    assert reports and checkov.returncode == 0, checkov.stdout[-3000:] + checkov.stderr[-3000:]
    failed = [f"{f['check_id']} {f['resource']} ({f['file_path']})" for r in reports for f in r["results"]["failed_checks"]]
    assert not failed, "\n".join(failed)
    assert sum(r["summary"]["passed"] for r in reports) > 400
    skips = 0
    for template in checked:
        for name, resource in json.loads(Path(template).read_text(encoding="utf-8"))["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]) and len(skip["comment"]) > 60, (name, skip)
                skips += 1
    assert skips > 0


# --- determinism and offline synth ----------------------------------------------------------------------


def test_two_synths_are_byte_identical(sandbox, tmp_path):
    """A second, separate `python app.py` writes exactly the same cloud assembly (templates, assets, manifests)."""
    again = tmp_path / "again"
    # With the compliance packs, as the session synthesized it (the CLI's way of passing context).
    context = {**cdk_json_context(recorded=False), COMPLIANCE_PACKS_CONTEXT: True}
    env = {**os.environ, "CDK_OUTDIR": str(again), "CDK_CONTEXT_JSON": json.dumps(context)}
    subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    comparison = filecmp.dircmp(sandbox.outdir, again)

    def differences(c: filecmp.dircmp) -> list[str]:
        found = c.left_only + c.right_only + c.funny_files
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        found += mismatch + errors
        for sub in c.subdirs.values():
            found += differences(sub)
        return found

    assert differences(comparison) == []
    assert len(list(again.rglob("*.template.json"))) == 5


def test_synth_needs_no_context_lookups(every_synth):
    for synth in every_synth:
        for manifest in synth.outdir.rglob("manifest.json"):
            assert "missing" not in load_json(manifest), f"{manifest} asks the CLI to look something up in AWS"


def test_no_aws_credentials_are_visible():
    assert not [v for v in os.environ if v.startswith("AWS_") and ("KEY" in v or "TOKEN" in v or "PROFILE" in v)]


def test_any_botocore_request_fails_the_test():
    import boto3

    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    with pytest.raises(AwsCallAttempted):
        client.list_buckets()


def test_any_socket_connection_fails_the_test():
    import socket

    with pytest.raises(AwsCallAttempted):
        socket.create_connection(("sts.amazonaws.com", 443), timeout=1)


# --- snapshots ------------------------------------------------------------------------------------------


def _sort_hashed_lists(value):
    # IAM statements list resources in string order, so a new asset hash can reorder them.
    if isinstance(value, dict):
        return {k: sorted(v, key=json.dumps) if k in ("Resource", "s3:prefix") and isinstance(v, list) else _sort_hashed_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sort_hashed_lists(v) for v in value]
    return value


def normalise(template: dict) -> dict:
    """Drop what changes without a change of ours: asset hashes and CDK's version metadata."""
    text = json.dumps(template, indent=1, sort_keys=True)
    text = re.sub(r"[0-9a-f]{64}", "<asset-hash>", text)
    data = _sort_hashed_lists(json.loads(text))
    data.get("Resources", {}).pop("CDKMetadata", None)
    data.pop("Conditions", None) if set(data.get("Conditions", {})) == {"CDKMetadataAvailable"} else None
    return data


@pytest.mark.parametrize(
    ("synth", "stack_id"),
    [("sandbox", "Network"), ("sandbox", "Foundation"), ("sandbox", "ModelBuild"), ("sandbox", "Studio"), ("serving", "Serving"), ("serving", "Monitoring")],
)
def test_snapshot(request, synth, stack_id):
    """Any change to a synthesized template must be deliberate: `UPDATE_SNAPSHOTS=1 make test` to accept it."""
    actual = normalise(request.getfixturevalue(synth).template_json(stack_id))
    recorded = recorded_snapshot(SNAPSHOTS / f"{stack_id}.json", json.dumps(actual, indent=1, sort_keys=True) + "\n")
    assert actual == json.loads(recorded), f"{stack_id} changed; review, then UPDATE_SNAPSHOTS=1 make test"
