"""The delivery pipeline (issue 14): its configuration, its stack, its stages, its hooks and its commands.

The delivery app is synthesized once per session from the shipped ``config/delivery.yaml`` with dev
serving a recorded package and prod's approval withdrawn (both policies visible in one synthesis);
a second, separate ``python delivery_app.py`` runs alongside it for the byte-identity check.
"""

from __future__ import annotations

import filecmp
import fnmatch
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from botocore.stub import Stubber

from app import cdk_json_context, make_app
from config import ConfigError
from config.delivery import DEFAULT_DELIVERY_FILE, load_delivery
from config.loader import DEFAULT_CONFIG_DIR
from delivery_app import PIPELINE_STACK, build_delivery
from ops import record_approved
from ops.approved_model import context_key
from scripts import smoke_check
from stacks.delivery_stack import CLI_VERSION, SYNTH_COMMANDS
from tests.conftest import ROOT, load_json, offline_client, once_per_run, resources_of

DEV_PACKAGE = {
    "arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-dev-models/3",
    "version": 3,
    "group": "mlp-dev-models",
    "creation_time": "2026-11-20T09:30:00Z",
}
WITHDRAWN = "environment prod: no approved model package is left in mlp-prod-models"
CONTEXT = {context_key("dev"): DEV_PACKAGE, record_approved.withdrawn_key("prod"): WITHDRAWN}
ACCOUNTS = {"dev": "111111111111", "prod": "222222222222"}


class Delivery:
    def __init__(self, outdir: Path, again_dir: Path):
        self.outdir, self.again_dir = outdir, again_dir
        self.template = load_json(outdir / f"{PIPELINE_STACK}.template.json")

    @property
    def pipeline(self) -> dict:
        ((_, pipeline),) = resources_of(self.template, "AWS::CodePipeline::Pipeline").items()
        return pipeline["Properties"]

    def stage(self, name: str) -> dict:
        (stage,) = [s for s in self.pipeline["Stages"] if s["Name"] == name]
        return stage

    def action_names(self, stage: str) -> list[str]:
        return [a["Name"] for a in sorted(self.stage(stage)["Actions"], key=lambda a: a["RunOrder"])]

    def stage_templates(self) -> list[Path]:
        return sorted(self.outdir.glob("assembly-*/*.template.json"))

    def stage_template(self, env: str, stack: str) -> dict:
        (path,) = self.outdir.glob(f"assembly-{PIPELINE_STACK}-MlPlatform-{env}/*MlPlatform{env}{stack}*.template.json")
        return load_json(path)


def _synth_in_process(outdir: Path) -> None:
    app = make_app(outdir=str(outdir), context={**cdk_json_context(recorded=False), **CONTEXT})
    build_delivery(app)
    app.synth()


@pytest.fixture(scope="session")
def delivery(tmp_path_factory) -> Delivery:
    def synth_twice(outdir: Path) -> None:
        # The separate process the byte-identity test compares with, started first so both run at once.
        env = {**os.environ, "CDK_OUTDIR": str(_again_dir(outdir)), "CDK_CONTEXT_JSON": json.dumps({**cdk_json_context(recorded=False), **CONTEXT})}
        again = subprocess.Popen([sys.executable, "delivery_app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _synth_in_process(outdir)
        assert again.wait(timeout=300) == 0, again.stdout.read().decode()

    outdir, _ = once_per_run(tmp_path_factory, "cdk.out.delivery", synth_twice)
    return Delivery(outdir, _again_dir(outdir))


def _again_dir(outdir: Path) -> Path:
    return outdir.with_name(f"{outdir.name}-again")


# --- configuration ---------------------------------------------------------------------------------------

VALID_DELIVERY = """\
tooling: {account: "333333333333", region: eu-west-1}
source:
  connection:
    connection_arn: arn:aws:codeconnections:eu-west-1:333333333333:connection/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d
    repository: example-org/ml-platform
"""


def delivery_error(tmp_path: Path, text: str, environments: dict[str, str] | None = None) -> str:
    config_dir = tmp_path / "environments"
    config_dir.mkdir()
    for name, body in (environments or {}).items():
        (config_dir / f"{name}.yaml").write_text(body, encoding="utf-8")
    path = tmp_path / "delivery.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_delivery(path, config_dir=config_dir)
    message = str(caught.value)
    assert "delivery.yaml" in message, "the message names the file"
    return message


def test_the_shipped_example_loads_with_approval_before_the_last_stage():
    plan = load_delivery()
    assert [e.name for e in plan.environments] == ["dev", "prod"]
    assert plan.manual_approval == {"prod"}
    assert plan.source.connection.branch == "main"


def test_approval_defaults_to_the_last_environment(tmp_path):
    envs = {"a1": 'account: "111111111111"\nregion: eu-west-1\n', "b1": 'account: "222222222222"\nregion: eu-west-1\n'}
    config_dir = tmp_path / "environments"
    config_dir.mkdir()
    for name, body in envs.items():
        (config_dir / f"{name}.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "delivery.yaml").write_text(VALID_DELIVERY + "environments: [a1, b1]\n", encoding="utf-8")
    assert load_delivery(tmp_path / "delivery.yaml", config_dir=config_dir).manual_approval == {"b1"}


def test_every_problem_is_reported_at_once(tmp_path):
    envs = {
        "dev": 'account: "111111111111"\nregion: eu-west-1\n',
        "twin": 'account: "111111111111"\nregion: eu-west-1\n',
    }
    text = VALID_DELIVERY + "environments: [dev, staging, sandbox, twin]\nmanual_approval: [prd]\n"
    message = delivery_error(tmp_path, text, envs)
    assert "  - environments[1]: unknown environment 'staging'" in message and "allowed: dev, twin" in message
    assert "  - environments[2]: environment 'sandbox' has no account and region" in message
    assert "  - environments[3]: environment 'twin' deploys to account 111111111111 in eu-west-1, as 'dev' does" in message
    assert "  - manual_approval[0]: 'prd' is not a stage of this pipeline; allowed: one of dev, staging, sandbox, twin" in message


def test_a_malformed_connection_arn_is_refused(tmp_path):
    text = VALID_DELIVERY.replace("connection/0a1b", "connection/zz1b") + "environments: [dev]\n"
    message = delivery_error(tmp_path, text, {"dev": 'account: "111111111111"\nregion: eu-west-1\n'})
    assert "  - source.connection.connection_arn: Value error, " not in message
    assert re.search(r"  - source\.connection\.connection_arn: .*'arn:aws:codeconnections:eu-west-1:333333333333:connection/zz1b", message)
    assert "allowed: 'arn:aws:codeconnections:<region>:<12-digit account>:connection/<uuid>'" in message


def test_structure_errors_name_the_key_and_what_is_allowed(tmp_path):
    text = 'tooling: {account: "3333", region: mars-1}\nsource: {}\nenvironments: []\nnotify: []\n'
    message = delivery_error(tmp_path, text)
    assert "  - tooling.account: " in message and "exactly 12 digits" in message
    assert "  - tooling.region: " in message and "a region name" in message
    assert "  - source: " in message and "exactly one of source.connection and source.s3" in message
    assert "  - environments: got an empty list" in message
    assert "  - notify: unknown key" in message and "allowed keys here: tooling, source, environments" in message


def test_an_s3_source_is_an_alternative_to_a_connection(tmp_path):
    text = 'tooling: {account: "333333333333", region: eu-west-1}\nsource: {s3: {bucket: team-src, key: ml/source.zip}}\nenvironments: [dev]\n'
    plan_dir = tmp_path / "environments"
    plan_dir.mkdir()
    (plan_dir / "dev.yaml").write_text('account: "111111111111"\nregion: eu-west-1\n', encoding="utf-8")
    (tmp_path / "delivery.yaml").write_text(text, encoding="utf-8")
    assert load_delivery(tmp_path / "delivery.yaml", config_dir=plan_dir).source.s3.key == "ml/source.zip"


# --- the pipeline ----------------------------------------------------------------------------------------


def test_pipeline_is_v2_with_source_synth_self_mutation_assets_then_the_environments_in_order(delivery):
    assert delivery.pipeline["PipelineType"] == "V2"
    names = [s["Name"] for s in delivery.pipeline["Stages"]]
    assert names == ["Source", "Build", "UpdatePipeline", "Assets", "MlPlatform-dev", "MlPlatform-prod"]
    assert [e.name for e in load_delivery().environments] == ["dev", "prod"]
    (source,) = delivery.stage("Source")["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["FullRepositoryId"] == "example-org/ml-platform"


def test_self_mutation_deploys_the_pipeline_stack_with_the_pinned_cli(delivery):
    (action,) = delivery.stage("UpdatePipeline")["Actions"]
    project = delivery.template["Resources"][action["Configuration"]["ProjectName"]["Ref"]]
    spec = project["Properties"]["Source"]["BuildSpec"]
    assert f"npm install -g aws-cdk@{CLI_VERSION}" in spec
    assert f"cdk -a . deploy {PIPELINE_STACK} --require-approval=never" in spec
    package_json = load_json(ROOT / "package.json")
    assert package_json["devDependencies"]["aws-cdk"] == CLI_VERSION


def test_assets_are_published_by_one_project(delivery):
    assert [a["Name"] for a in delivery.stage("Assets")["Actions"]] == ["FileAssets"]


def test_manual_approval_exactly_where_configured(delivery):
    def approvals(stage):
        return [a["Name"] for a in delivery.stage(stage)["Actions"] if a["ActionTypeId"]["Category"] == "Approval" and not a["Name"].startswith("ConfirmPermissions")]

    assert approvals("MlPlatform-dev") == []
    assert approvals("MlPlatform-prod") == ["Approve"]
    prod = delivery.action_names("MlPlatform-prod")
    assert prod.index("ConfirmPermissions.Confirm") < prod.index("Approve") < prod.index("Network.Prepare")


def test_every_stage_checks_permission_broadening_before_deploying(delivery):
    for env in ("dev", "prod"):
        names = delivery.action_names(f"MlPlatform-{env}")
        first_deploy = min(i for i, n in enumerate(names) if n.endswith(".Prepare"))
        assert names.index("ConfirmPermissions.Check") < names.index("ConfirmPermissions.Confirm") < first_deploy


def test_each_stage_deploys_the_platform_stage_of_make_deploy_plus_its_delivery_stack(delivery):
    for env, stacks in (("dev", ["Network", "Foundation", "ModelBuild", "Studio", "Serving", "Monitoring", "Delivery"]),
                        ("prod", ["Network", "Foundation", "ModelBuild", "Studio", "Monitoring", "Delivery"])):  # fmt: skip
        deployed = {a["Configuration"]["StackName"] for a in delivery.stage(f"MlPlatform-{env}")["Actions"] if a["Name"].endswith(".Deploy")}
        assert deployed == {f"MlPlatform-{env}-{s}" for s in stacks}


def test_deploys_use_the_bootstrap_roles_of_each_target_account(delivery):
    for env, account in ACCOUNTS.items():
        for action in delivery.stage(f"MlPlatform-{env}")["Actions"]:
            if action["ActionTypeId"]["Category"] != "Deploy":
                continue
            assert _arn(action["RoleArn"]) == f"arn:${{AWS::Partition}}:iam::{account}:role/cdk-hnb659fds-deploy-role-{account}-eu-west-1"
            if action["Name"].endswith(".Prepare"):
                assert _arn(action["Configuration"]["RoleArn"]) == f"arn:${{AWS::Partition}}:iam::{account}:role/cdk-hnb659fds-cfn-exec-role-{account}-eu-west-1"


def _arn(value: dict) -> str:
    if "Fn::Sub" in value:
        return value["Fn::Sub"]
    return "".join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in value["Fn::Join"][1])


def test_no_codebuild_project_is_privileged(delivery):
    projects = resources_of(delivery.template, "AWS::CodeBuild::Project")
    assert len(projects) >= 6
    for name, project in projects.items():
        assert not project["Properties"]["Environment"].get("PrivilegedMode", False), name
        assert project["Properties"]["Environment"]["Image"] == "aws/codebuild/standard:7.0", name


def test_artifact_bucket_is_kms_encrypted_with_rotation_and_logs_its_access(delivery):
    buckets = resources_of(delivery.template, "AWS::S3::Bucket")
    (artifacts,) = [b for name, b in buckets.items() if name.startswith("PipelineArtifactsBucket")]
    (encryption,) = artifacts["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key_id = encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert delivery.template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    logging = artifacts["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"]["Ref"].startswith("AccessLogs")
    (policy,) = [p for p in resources_of(delivery.template, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == logging["DestinationBucketName"]]
    assert any(s.get("Principal") == {"Service": "logging.s3.amazonaws.com"} for s in policy["Properties"]["PolicyDocument"]["Statement"])


def test_cross_account_keys_let_the_target_accounts_read_artifacts(delivery):
    key = next(k for k in resources_of(delivery.template, "AWS::KMS::Key").values() if k["Properties"].get("EnableKeyRotation"))
    principals = json.dumps(key["Properties"]["KeyPolicy"])
    for account in ACCOUNTS.values():
        assert f"cdk-hnb659fds-deploy-role-{account}-eu-west-1" in principals


# --- synth and smoke steps -------------------------------------------------------------------------------


def _buildspec(delivery: Delivery, stage: str, action: str) -> dict:
    (found,) = [a for a in delivery.stage(stage)["Actions"] if a["Name"] == action]
    project = delivery.template["Resources"][found["Configuration"]["ProjectName"]["Ref"]]
    return json.loads(project["Properties"]["Source"]["BuildSpec"])


def test_synth_step_runs_the_readme_commands_and_outputs_cdk_out(delivery):
    spec = _buildspec(delivery, "Build", "Synth")
    assert spec["phases"]["build"]["commands"] == list(SYNTH_COMMANDS)
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- delivery-synth-commands -->\n```sh\n(.*?)```", readme, re.S)
    assert block, "the README's Delivery section lists the synth step's commands"
    assert [line.split("  #")[0].strip() for line in block[1].splitlines()] == list(SYNTH_COMMANDS)


def test_makefile_runs_the_delivery_app_with_the_virtual_envs_python():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^DELIVERY_APP := \$\(PY\) delivery_app\.py$", makefile, re.M)
    assert 'cdk synth --quiet --app "$(DELIVERY_APP)"' in makefile
    assert "$(PY) -m ops.record_approved" in makefile


def test_smoke_check_follows_each_stage_and_invokes_only_where_a_model_is_served(delivery):
    dev = _buildspec(delivery, "MlPlatform-dev", "SmokeCheck")["phases"]["build"]["commands"]
    prod = _buildspec(delivery, "MlPlatform-prod", "SmokeCheck")["phases"]["build"]["commands"]
    assert delivery.action_names("MlPlatform-dev")[-1] == "SmokeCheck"
    assert "--realtime-endpoint mlp-dev-realtime --sample pipeline_code/data/sample.csv --target-column churn_risk" in dev[0]
    assert "--role-arn arn:aws:iam::111111111111:role/mlp-dev-delivery-smoke-check" in dev[0]
    assert "--realtime-endpoint" not in prod[0] and "--model-build-pipeline mlp-prod-model-build" in prod[0]


def test_a_withdrawn_approval_stops_its_stage_first_with_the_message(delivery):
    assert delivery.action_names("MlPlatform-prod")[0] == "NoApprovedModel"
    assert "NoApprovedModel" not in delivery.action_names("MlPlatform-dev")
    commands = _buildspec(delivery, "MlPlatform-prod", "NoApprovedModel")["phases"]["build"]["commands"]
    assert commands == [f"echo '{WITHDRAWN}' >&2", "exit 1"]


# --- approval events -------------------------------------------------------------------------------------


def test_approval_decisions_on_the_platforms_groups_start_the_pipeline(delivery):
    ((_, rule),) = resources_of(delivery.template, "AWS::Events::Rule").items()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"] == {"ModelPackageGroupName": ["mlp-dev-models", "mlp-prod-models"], "ModelApprovalStatus": ["Approved", "Rejected"]}
    assert pattern["account"] == sorted(ACCOUNTS.values())
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::Join"][1][-1]["Ref"].startswith("Pipeline")
    policies = resources_of(delivery.template, "AWS::Events::EventBusPolicy")
    admitted = {p["Properties"]["Statement"]["Principal"]["AWS"] for p in policies.values()}
    assert admitted == {f"arn:aws:iam::{a}:root" for a in ACCOUNTS.values()}
    for policy in policies.values():
        assert policy["Properties"]["EventBusName"] == "default"
        assert policy["Properties"]["Statement"]["Condition"]["StringEquals"]["events:source"] == "aws.sagemaker"


def test_each_environment_forwards_its_own_decisions_to_the_tooling_bus(delivery):
    for env in ACCOUNTS:
        template = delivery.stage_template(env, "Delivery")
        ((_, rule),) = resources_of(template, "AWS::Events::Rule").items()
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["detail"] == {"ModelPackageGroupName": [f"mlp-{env}-models"], "ModelApprovalStatus": ["Approved", "Rejected"]}
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == "arn:aws:events:eu-west-1:333333333333:event-bus/default"
        roles = resources_of(template, "AWS::IAM::Role")
        # The forwarding role may be assumed by EventBridge for this account only (no confused deputy).
        (trust,) = roles[target["RoleArn"]["Fn::GetAtt"][0]]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "events.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNTS[env]}}
        names = {r["Properties"].get("RoleName") for r in roles.values()}
        assert {f"mlp-{env}-delivery-registry-reader", f"mlp-{env}-delivery-smoke-check"} <= names


def test_the_registry_reader_role_only_reads(delivery):
    template = delivery.stage_template("dev", "Delivery")
    reader = next(k for k, r in resources_of(template, "AWS::IAM::Role").items() if r["Properties"].get("RoleName") == "mlp-dev-delivery-registry-reader")
    actions = set()
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": reader} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    assert actions == {"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup", "cloudformation:DescribeStacks"}
    trust = json.dumps(template["Resources"][reader]["Properties"]["AssumeRolePolicyDocument"])
    assert "333333333333" in trust and f"role/{PIPELINE_STACK}-*" in trust


# --- cdk-nag, cfn-lint, determinism ------------------------------------------------------------------------


def test_cdk_nag_checks_the_pipeline_and_every_stack_of_every_stage(delivery):
    report = load_json(delivery.outdir / "validation-report.json")
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert plugin["violations"] == [] and plugin["conclusion"] == "success"
    acknowledged_in = {f["acknowledgedAt"].split("/")[1] for f in plugin["suppressedViolations"]}
    acknowledged_stacks = {"/".join(f["acknowledgedAt"].split("/")[1:3]) for f in plugin["suppressedViolations"]}
    assert {"Pipeline", "MlPlatform-dev", "MlPlatform-prod"} <= acknowledged_in
    assert {"MlPlatform-dev/Foundation", "MlPlatform-prod/Foundation", "MlPlatform-dev/Delivery", "MlPlatform-prod/Delivery"} <= acknowledged_stacks
    for finding in plugin["suppressedViolations"]:
        assert finding["acknowledgedAt"].count("/") >= 2, "acknowledged on a construct, not a stack"
        assert len(finding["reason"]) > 40
        assert finding["acknowledgedId"] == f"AwsSolutions::{finding['ruleName']}"


def test_cfn_lint_reports_nothing_on_the_delivery_templates(delivery):
    templates = [delivery.outdir / f"{PIPELINE_STACK}.template.json", *delivery.stage_templates()]
    assert len(templates) == 14
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--format", "parseable", "--", *map(str, templates)], capture_output=True, text=True, timeout=300)
    assert result.stdout == "" and result.returncode == 0, result.stdout + result.stderr


def test_two_delivery_synths_are_byte_identical(delivery):
    """A separate ``python delivery_app.py`` wrote exactly the same cloud assembly as the in-process synth."""

    def differences(c: filecmp.dircmp) -> list[str]:
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        return c.left_only + c.right_only + mismatch + errors + [d for sub in c.subdirs.values() for d in differences(sub)]

    assert differences(filecmp.dircmp(delivery.outdir, delivery.again_dir)) == []


def test_delivery_synth_needs_no_lookups(delivery):
    for manifest in delivery.outdir.rglob("manifest.json"):
        assert "missing" not in load_json(manifest), f"{manifest} asks the CLI to look something up in AWS"


def test_cdk_nag_reaches_stacks_of_stages_inside_the_pipeline_stack(tmp_path):
    """The delivery app's layout (stage inside the pipeline stack, nag on the app): an unlogged bucket there fails synth."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path))
    stage = cdk.Stage(cdk.Stack(app, "Pipeline"), "MlPlatform-x")
    s3.Bucket(cdk.Stack(stage, "Inner"), "Unlogged")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    violations = load_json(tmp_path / "validation-report.json")["pluginReports"][0]["violations"]
    assert any(c["constructPath"].startswith("Pipeline/MlPlatform-x/Inner/Unlogged") for v in violations for c in v["violatingConstructs"])


def test_a_malformed_withdrawn_record_is_a_clear_error(tmp_path):
    app = make_app(outdir=str(tmp_path), context={**cdk_json_context(recorded=False), record_approved.withdrawn_key("dev"): 3})
    with pytest.raises(ConfigError, match=r"ml-platform:dev:approval-withdrawn.*allowed: a message string"):
        build_delivery(app, delivery_file=DEFAULT_DELIVERY_FILE, config_dir=DEFAULT_CONFIG_DIR)


# --- recording approved packages (ops.record_approved) --------------------------------------------------


def _factory(clients: dict):
    return lambda service, region, role: clients[service]


def _summary(version: int, day: int) -> dict:
    return {
        "ModelPackageGroupName": "mlp-dev-models",
        "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-dev-models/{version}",
        "ModelPackageVersion": version,
        "CreationTime": datetime(2026, 11, day, tzinfo=timezone.utc),
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": "Approved",
    }


def _list_params() -> dict:
    return {"ModelPackageGroupName": "mlp-dev-models", "ModelApprovalStatus": "Approved", "SortBy": "CreationTime",
            "SortOrder": "Descending", "ModelPackageType": "Versioned"}  # fmt: skip


def _dev():
    return load_delivery().environments[0]


def test_recording_takes_the_newest_still_approved_package():
    sagemaker = offline_client("sagemaker")
    with Stubber(sagemaker) as stub:
        # Version 4 was rejected: the listing of approved packages no longer has it, so 3 is served again.
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": [_summary(3, 20), _summary(2, 10)]}, _list_params())
        stub.add_response("describe_model_package", {"ModelPackageName": "mlp-dev-models", "ModelPackageArn": DEV_PACKAGE["arn"],
                          "CreationTime": datetime(2026, 11, 20, tzinfo=timezone.utc), "ModelPackageStatus": "Completed",
                          "ModelPackageStatusDetails": {"ValidationStatuses": []}, "ModelApprovalStatus": "Approved"}, {"ModelPackageName": DEV_PACKAGE["arn"]})  # fmt: skip
        package, withdrawn, summary = record_approved.decide(_dev(), _factory({"sagemaker": sagemaker}))
    assert package == {**DEV_PACKAGE, "creation_time": "2026-11-20T00:00:00Z"} and withdrawn is None
    assert summary.startswith("dev: recorded arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-dev-models/3")


def test_no_approved_package_left_while_serving_stops_the_stage_and_keeps_the_endpoints():
    sagemaker, cloudformation = offline_client("sagemaker"), offline_client("cloudformation")
    with Stubber(sagemaker) as sm, Stubber(cloudformation) as cfn:
        sm.add_response("list_model_packages", {"ModelPackageSummaryList": []}, _list_params())
        sm.add_response("describe_model_package_group", {"ModelPackageGroupName": "mlp-dev-models", "ModelPackageGroupArn":
                        "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/mlp-dev-models", "CreationTime": datetime(2026, 1, 1),
                        "CreatedBy": {}, "ModelPackageGroupStatus": "Completed"}, {"ModelPackageGroupName": "mlp-dev-models"})  # fmt: skip
        cfn.add_response("describe_stacks", {"Stacks": [{"StackName": "MlPlatform-dev-Serving", "CreationTime": datetime(2026, 1, 1),
                         "StackStatus": "UPDATE_COMPLETE"}]}, {"StackName": "MlPlatform-dev-Serving"})  # fmt: skip
        package, withdrawn, _ = record_approved.decide(_dev(), _factory({"sagemaker": sagemaker, "cloudformation": cloudformation}))
    assert package is None
    assert "no approved model package is left in mlp-dev-models" in withdrawn and "endpoints keep serving" in withdrawn
    context = record_approved.apply({context_key("dev"): DEV_PACKAGE, "other": 1}, "dev", package, withdrawn)
    assert context == {"other": 1, record_approved.withdrawn_key("dev"): withdrawn}


def test_before_the_first_deploy_nothing_is_recorded_and_the_stage_deploys_without_serving():
    from botocore.exceptions import ClientError

    def no_role(service, region, role):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform sts:AssumeRole"}}, "AssumeRole")

    package, withdrawn, summary = record_approved.decide(_dev(), no_role)
    assert (package, withdrawn) == (None, None) and "deploying without serving" in summary
    assert record_approved.apply({record_approved.withdrawn_key("dev"): "old"}, "dev", None, None) == {}


def test_record_approved_writes_the_context_file_and_prints_what_it_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(record_approved, "decide", lambda config, factory: ((DEV_PACKAGE, None, "dev: recorded") if config.name == "dev" else (None, WITHDRAWN, "prod: STOP")))
    context_file = tmp_path / "cdk.context.json"
    assert record_approved.main(["--context-file", str(context_file)], client_factory=lambda *a: None) == 0
    assert load_json(context_file) == CONTEXT
    assert capsys.readouterr().out == "dev: recorded\nprod: STOP\n"


# --- smoke check (scripts/smoke_check.py) ---------------------------------------------------------------


def test_smoke_check_passes_starts_a_changed_model_build_and_sends_one_request(capsys):
    import io

    from botocore.response import StreamingBody

    cloudformation, sagemaker, runtime = offline_client("cloudformation"), offline_client("sagemaker"), offline_client("sagemaker-runtime")
    row = smoke_check.sample_row(ROOT / "pipeline_code/data/sample.csv", "churn_risk")
    assert row == "66,53986.38,22,5.00,1,2.8,,basic,monthly,card"
    with Stubber(cloudformation) as cfn, Stubber(sagemaker) as sm, Stubber(runtime) as rt:
        cfn.add_response("describe_stacks", {"Stacks": [{"StackName": "MlPlatform-dev-Serving", "CreationTime": datetime(2026, 1, 1), "StackStatus": "UPDATE_COMPLETE",
                         "Outputs": [{"OutputKey": "RealtimeEndpointName", "OutputValue": "mlp-dev-realtime"}, {"OutputKey": "ModelName", "OutputValue": "m"}]}]},
                         {"StackName": "MlPlatform-dev-Serving"})  # fmt: skip
        sm.add_response("describe_endpoint", {"EndpointName": "mlp-dev-realtime", "EndpointArn": "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/mlp-dev-realtime",
                        "EndpointConfigName": "c", "EndpointStatus": "InService", "CreationTime": datetime(2026, 1, 1), "LastModifiedTime": datetime(2026, 1, 1)},
                        {"EndpointName": "mlp-dev-realtime"})  # fmt: skip
        sm.add_response("describe_pipeline", {"LastModifiedTime": datetime(2026, 11, 21, tzinfo=timezone.utc)}, {"PipelineName": "mlp-dev-model-build"})
        sm.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [{"StartTime": datetime(2026, 11, 20, tzinfo=timezone.utc)}]},
                        {"PipelineName": "mlp-dev-model-build", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1})  # fmt: skip
        sm.add_response("start_pipeline_execution", {"PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/mlp-dev-model-build/execution/x"},
                        {"PipelineName": "mlp-dev-model-build", "PipelineExecutionDescription": "Started by the delivery pipeline: the definition changed"})  # fmt: skip
        rt.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(b"medium\n"), 7), "ResponseMetadata": {"HTTPStatusCode": 200}},
                        {"EndpointName": "mlp-dev-realtime", "ContentType": "text/csv", "Body": row})  # fmt: skip
        clients = {"cloudformation": cloudformation, "sagemaker": sagemaker, "sagemaker-runtime": runtime}
        argv = ["--region", "eu-west-1", "--role-arn", "arn:aws:iam::111111111111:role/r", "--serving-stack", "MlPlatform-dev-Serving",
                "--model-build-pipeline", "mlp-dev-model-build", "--realtime-endpoint", "mlp-dev-realtime",
                "--sample", str(ROOT / "pipeline_code/data/sample.csv"), "--target-column", "churn_risk"]  # fmt: skip
        assert smoke_check.main(argv, client_factory=clients.__getitem__) == 0
    out = capsys.readouterr().out
    assert "endpoints: mlp-dev-realtime (all InService)" in out and "started arn:" in out and "HTTP 200" in out


def test_smoke_check_fails_when_an_endpoint_is_not_in_service(capsys):
    cloudformation, sagemaker = offline_client("cloudformation"), offline_client("sagemaker")
    with Stubber(cloudformation) as cfn, Stubber(sagemaker) as sm:
        cfn.add_response("describe_stacks", {"Stacks": [{"StackName": "s", "CreationTime": datetime(2026, 1, 1), "StackStatus": "UPDATE_COMPLETE",
                         "Outputs": [{"OutputKey": "AsyncEndpointName", "OutputValue": "mlp-dev-async"}]}]}, {"StackName": "s"})  # fmt: skip
        sm.add_response("describe_endpoint", {"EndpointName": "mlp-dev-async", "EndpointArn": "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/mlp-dev-async",
                        "EndpointConfigName": "c", "EndpointStatus": "Failed", "CreationTime": datetime(2026, 1, 1), "LastModifiedTime": datetime(2026, 1, 1)},
                        {"EndpointName": "mlp-dev-async"})  # fmt: skip
        sm.add_response("describe_pipeline", {"LastModifiedTime": datetime(2026, 11, 1, tzinfo=timezone.utc)}, {"PipelineName": "p"})
        sm.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [{"StartTime": datetime(2026, 11, 20, tzinfo=timezone.utc)}]},
                        {"PipelineName": "p", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 1})  # fmt: skip
        argv = ["--region", "eu-west-1", "--role-arn", "r", "--serving-stack", "s", "--model-build-pipeline", "p"]
        assert smoke_check.main(argv, client_factory={"cloudformation": cloudformation, "sagemaker": sagemaker}.__getitem__) == 1
    assert "FAILED: mlp-dev-async is Failed" in capsys.readouterr().err


# --- the CloudFormation execution policy -----------------------------------------------------------------

EXECUTION_POLICY = ROOT / "delivery" / "cfn-execution-policy.json"
# Handler permissions the CloudFormation schemas list for features the platform never sets, with the reason.
NOT_NEEDED = {
    "s3tables:*": "S3 Metadata table configurations: no bucket sets one",
    "identitystore:*": "IAM Identity Center users: the Studio domain uses IAM authentication",
    "sso:*": "IAM Identity Center: the Studio domain uses IAM authentication",
    "iam:*GroupPolic*": "policies are attached to roles only",
    "iam:*UserPolic*": "policies are attached to roles only",
    "iam:*RolePermissionsBoundary": "no role has a permissions boundary",
    "vpc-lattice:*": "no VPC endpoint joins a service network",
    "vpce:AllowMultiRegion": "every interface endpoint is for the VPC's own region",
    "firehose:*": "no log group delivers to Firehose",
    "billing:GetBillingViewData": "the budget uses no billing view",
    "s3files:*": "no function mounts a file system",
    "efs:*": "not an IAM service prefix (the schemas' spelling); EFS actions are elasticfilesystem:*, allowed",
}


def _statements(policy: dict, effect: str) -> list[str]:
    return [a for s in policy["Statement"] if s["Effect"] == effect for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]


def _matches(action: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def test_the_execution_policy_allows_every_call_cloudformation_makes_for_the_platforms_resources(every_synth, delivery):
    """What CloudFormation's handlers need (create, read, update, delete; the resource schemas cfn-lint ships)
    for every resource type the platform deploys, taken from every synthesized environment and delivery stage."""
    from review.cfn_schemas import schema

    templates = [s.template_json(stack) for s in every_synth for stack in s.stack_ids]
    templates += [load_json(path) for path in delivery.stage_templates()]
    types = {r["Type"] for t in templates for r in t["Resources"].values()}
    needed = {
        action: resource_type
        for resource_type in types
        for handler, spec in schema(resource_type).get("handlers", {}).items() if handler != "list"
        for action in spec.get("permissions", [])
    }  # fmt: skip
    policy = load_json(EXECUTION_POLICY)
    allowed, denied = _statements(policy, "Allow"), _statements(policy, "Deny")
    missing = {a: t for a, t in needed.items() if not _matches(a, allowed) and not _matches(a, NOT_NEEDED)}
    assert missing == {}, "CloudFormation would be refused these: " + json.dumps(missing, indent=1, sort_keys=True)
    assert [a for a in needed if _matches(a, denied)] == []
    # Every exemption still matches something a schema lists (no stale reasons).
    assert [p for p in NOT_NEEDED if not any(fnmatch.fnmatchcase(a.lower(), p.lower()) for a in needed)] == []
    # Weak cross-stack references (Fn::GetStackOutput) are read with the deploying role's credentials.
    assert {"Action": ["cloudformation:DescribeStacks"], "Effect": "Allow", "Resource": ["arn:aws:cloudformation:*:*:stack/MlPlatform-*/*"],
            "Sid": "ReadPlatformStackOutputs"} in policy["Statement"]  # fmt: skip


def test_every_build_of_ours_runs_the_python_the_requirements_are_pinned_for(delivery):
    """Synth, smoke checks, the no-model stop and self-mutation (CDK's own security check and asset
    publishing projects run only the CDK CLI)."""
    from stacks.delivery_stack import PYTHON_VERSION

    specs = {
        name: json.loads(project["Properties"]["Source"]["BuildSpec"])
        for name, project in resources_of(delivery.template, "AWS::CodeBuild::Project").items()
        if isinstance(spec := project["Properties"]["Source"].get("BuildSpec"), str) and spec.startswith("{")
    }
    assert any("BuildSynth" in name for name in specs) and sum("SmokeCheck" in name for name in specs) == 2
    for name, spec in specs.items():
        assert spec["phases"]["install"]["runtime-versions"] == {"python": PYTHON_VERSION}, name
    for pins in ("requirements.txt", "requirements-dev.txt", "pipeline_code/requirements.txt"):
        assert f"autogenerated by pip-compile with Python {PYTHON_VERSION}" in (ROOT / pins).read_text(encoding="utf-8"), pins
