"""Studio stack: VPC-only domain, personas, idle shutdown, sharing, MLflow and a teardown that works."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from config import load_config
from config.schema import STUDIO_INSTANCE_TYPES
from stacks.platform_stage import PlatformStage
from tests.conftest import as_list, output_of, platform_app, resources_of, role_statements, template_of


def only(template_json: dict, resource_type: str) -> tuple[str, dict]:
    ((logical_id, resource),) = resources_of(template_json, resource_type).items()
    return logical_id, resource


@pytest.fixture(scope="module")
def studio(sandbox) -> dict:
    return sandbox.template_json("Studio")


@pytest.fixture(scope="module")
def dev_studio(examples) -> dict:
    return examples["dev"].template_json("Studio")


def test_domain_is_vpc_only_with_iam_auth_and_the_studio_key(studio):
    _, domain = only(studio, "AWS::SageMaker::Domain")
    props = domain["Properties"]
    assert props["AuthMode"] == "IAM"
    assert props["AppNetworkAccessType"] == "VpcOnly"
    assert "StudioKey" in output_of(props["KmsKeyId"])
    assert "NetworkVpc" in output_of(props["VpcId"])
    assert [("Workload" in output_of(s)) for s in props["SubnetIds"]] == [True, True]
    assert props["TagPropagation"] == "ENABLED"
    assert not resources_of(studio, "AWS::SageMaker::App")


def test_security_groups_at_domain_and_user_level(studio):
    _, domain = only(studio, "AWS::SageMaker::Domain")
    props = domain["Properties"]
    (domain_group,) = props["DomainSettings"]["SecurityGroupIds"]
    (user_group,) = props["DefaultUserSettings"]["SecurityGroups"]
    (space_group,) = props["DefaultSpaceSettings"]["SecurityGroups"]
    assert domain_group == user_group == space_group
    assert "WorkloadSecurityGroup" in output_of(domain_group)


def test_new_studio_experience_only(studio):
    settings = only(studio, "AWS::SageMaker::Domain")[1]["Properties"]["DefaultUserSettings"]
    assert settings["StudioWebPortal"] == "ENABLED"
    assert settings["DefaultLandingUri"] == "studio::"
    assert settings["StudioWebPortalSettings"]["HiddenAppTypes"] == ["JupyterServer"]


def test_default_users_run_as_data_scientists(studio):
    props = only(studio, "AWS::SageMaker::Domain")[1]["Properties"]
    role = json.dumps(props["DefaultUserSettings"]["ExecutionRole"])
    assert "StudioUserRole" in role and role == json.dumps(props["DefaultSpaceSettings"]["ExecutionRole"])


def test_idle_shutdown_is_on_by_default(studio):
    settings = only(studio, "AWS::SageMaker::Domain")[1]["Properties"]["DefaultUserSettings"]
    for app in ("JupyterLabAppSettings", "CodeEditorAppSettings"):
        idle = settings[app]["AppLifecycleManagement"]["IdleSettings"]
        assert idle == {"LifecycleManagement": "ENABLED", "IdleTimeoutInMinutes": 120, "MinIdleTimeoutInMinutes": 60, "MaxIdleTimeoutInMinutes": 120}
        assert settings[app]["DefaultResourceSpec"] == {"InstanceType": "ml.t3.medium"}


def test_sharing_settings_follow_config(studio, dev_studio):
    sandbox = only(studio, "AWS::SageMaker::Domain")[1]["Properties"]["DefaultUserSettings"]["SharingSettings"]
    dev = only(dev_studio, "AWS::SageMaker::Domain")[1]["Properties"]["DefaultUserSettings"]["SharingSettings"]
    assert (sandbox["NotebookOutputOption"], dev["NotebookOutputOption"]) == ("Disabled", "Allowed")
    assert "DataBucket" in json.dumps(dev["S3OutputPath"]) and dev["S3OutputPath"]["Fn::Join"][1][-1] == "/studio-sharing/"
    assert "DataKey" in output_of(dev["S3KmsKeyId"])


def test_apps_get_the_configured_instance_and_idle_timeout(dev_studio):
    settings = only(dev_studio, "AWS::SageMaker::Domain")[1]["Properties"]["DefaultUserSettings"]["JupyterLabAppSettings"]
    assert settings["DefaultResourceSpec"] == {"InstanceType": "ml.t3.large"}
    assert settings["AppLifecycleManagement"]["IdleSettings"]["IdleTimeoutInMinutes"] == 180
    # The example is VPC-only: it offers no repository Studio could not clone.
    assert settings.get("CodeRepositories", []) == []


def test_git_repositories_are_offered_and_an_unreachable_one_is_said_at_synth(tmp_path):
    url = "https://github.com/example-org/ml-experiments.git"
    (tmp_path / "dev.yaml").write_text(
        (Path(__file__).parent.parent / "config" / "environments" / "prod.yaml").read_text().replace("account: \"222222222222\"", "account: \"111111111111\"")
        + f"studio: {{git_repositories: ['{url}']}}\n",
        encoding="utf-8",
    )
    stage = PlatformStage(platform_app(), "G", config=load_config("dev", config_dir=tmp_path))
    settings = only(template_of(stage.studio), "AWS::SageMaker::Domain")[1]["Properties"]["DefaultUserSettings"]
    assert settings["JupyterLabAppSettings"]["CodeRepositories"] == [{"RepositoryUrl": url}]
    (warning,) = Annotations.from_stack(stage.studio).find_warning("*", Match.string_like_regexp("git_repositories"))
    assert url in warning.entry.data and "routes to it (NAT gateway or proxy)" in warning.entry.data


def test_one_profile_per_person_with_the_personas_role(dev_studio):
    profiles = {p["Properties"]["UserProfileName"]: p["Properties"] for p in resources_of(dev_studio, "AWS::SageMaker::UserProfile").values()}
    assert set(profiles) == {"alice", "bob"}
    assert "StudioLeadRole" in json.dumps(profiles["alice"]["UserSettings"]["ExecutionRole"])
    assert "StudioUserRole" in json.dumps(profiles["bob"]["UserSettings"]["ExecutionRole"])
    for profile in profiles.values():
        (group,) = profile["UserSettings"]["SecurityGroups"]
        assert "WorkloadSecurityGroup" in output_of(group)


def test_shared_spaces_come_from_config(studio, dev_studio):
    assert not resources_of(studio, "AWS::SageMaker::Space")
    _, space = only(dev_studio, "AWS::SageMaker::Space")
    assert re.fullmatch(r"team-space-[0-9a-f]{10}", space["Properties"]["SpaceName"])
    assert space["Properties"]["SpaceDisplayName"] == "team-space"
    assert space["Properties"]["SpaceSharingSettings"] == {"SharingType": "Shared"}
    assert space["Properties"]["OwnershipSettings"] == {"OwnerUserProfileName": "alice"}


def _profile_ids(tmp_path: Path, users: str) -> dict[str, dict]:
    (tmp_path / "team.yaml").write_text(
        'account: "123456789012"\nregion: eu-west-1\nnetwork: {new_vpc: {availability_zones: [eu-west-1a, eu-west-1b]}}\n'
        f"studio: {{users: {users}}}\n"
    )
    stage = PlatformStage(platform_app(), "Team", config=load_config("team", config_dir=tmp_path))
    template = template_of(stage.studio)
    return {k: v for k, v in resources_of(template, "AWS::SageMaker::UserProfile").items()}


def test_adding_or_removing_a_person_touches_only_that_profile(tmp_path):
    before = _profile_ids(tmp_path, "[{name: ann}, {name: ben, persona: lead}]")
    after = _profile_ids(tmp_path, "[{name: ben, persona: lead}, {name: cat}]")
    (ben,) = set(before) & set(after)
    assert before[ben] == after[ben]
    assert {v["Properties"]["UserProfileName"] for k, v in before.items() if k not in after} == {"ann"}
    assert {v["Properties"]["UserProfileName"] for k, v in after.items() if k not in before} == {"cat"}


def domain_cleanup(template: dict) -> dict[str, dict]:
    """The cleanup of the whole domain (the per-profile and per-space guards name their profile or space)."""
    return {
        k: r for k, r in resources_of(template, "AWS::CloudFormation::CustomResource").items()
        if not {"UserProfileName", "SpaceName"} & set(r["Properties"])
    }  # fmt: skip


def test_each_profile_and_space_has_a_guard_deleted_before_it(dev_studio):
    """Removing a person or a space deletes its guard first, which deletes its apps (and private spaces)."""
    guards = {
        k: r for k, r in resources_of(dev_studio, "AWS::CloudFormation::CustomResource").items() if k not in domain_cleanup(dev_studio)
    }  # fmt: skip
    targets = {**resources_of(dev_studio, "AWS::SageMaker::UserProfile"), **resources_of(dev_studio, "AWS::SageMaker::Space")}
    guarded = {}
    (cleanup,) = domain_cleanup(dev_studio).values()
    for guard in guards.values():
        props = guard["Properties"]
        assert props["ServiceToken"] == cleanup["Properties"]["ServiceToken"]
        assert props["DomainId"] == cleanup["Properties"]["DomainId"]
        (target,) = guard["DependsOn"]
        key = "UserProfileName" if "UserProfileName" in props else "SpaceName"
        assert props[key] == targets[target]["Properties"][key]
        guarded[target] = key
    assert sorted(guarded.values()) == ["SpaceName", "UserProfileName", "UserProfileName"]  # alice, bob, team-space
    assert set(guarded) == set(targets)


def test_cleanup_runs_before_profiles_spaces_and_domain_are_deleted(dev_studio):
    (cleanup_id, cleanup), = domain_cleanup(dev_studio).items()
    domain_id, _ = only(dev_studio, "AWS::SageMaker::Domain")
    assert cleanup["Properties"]["DomainId"] == {"Fn::GetAtt": [domain_id, "DomainId"]}
    dependents = set(resources_of(dev_studio, "AWS::SageMaker::UserProfile")) | set(resources_of(dev_studio, "AWS::SageMaker::Space"))
    # CloudFormation deletes a resource before what it depends on: the cleanup goes first.
    assert dependents and dependents <= set(cleanup["DependsOn"])
    for dependent in dependents:
        assert cleanup_id not in dev_studio["Resources"][dependent].get("DependsOn", [])


def test_cleanup_handlers_poll_for_long_enough_with_a_scoped_role(dev_studio):
    functions = {f["Properties"]["Handler"]: f["Properties"] for f in resources_of(dev_studio, "AWS::Lambda::Function").values()}
    assert {"index.on_event", "index.is_complete"} <= set(functions)
    (machine,) = resources_of(dev_studio, "AWS::StepFunctions::StateMachine").values()
    definition = json.dumps(machine["Properties"]["DefinitionString"])
    assert '\\"IntervalSeconds\\":30' in definition and '\\"MaxAttempts\\":110' in definition  # 55 minutes
    assert functions["index.on_event"]["Role"]["Fn::GetAtt"][0].startswith("DomainCleanupRole")
    # In the VPC, with the apps' security group: they reach SageMaker through its interface endpoint.
    domain_network = only(dev_studio, "AWS::SageMaker::Domain")[1]["Properties"]
    for handler in ("index.on_event", "index.is_complete"):
        vpc_config = functions[handler]["VpcConfig"]
        assert vpc_config["SubnetIds"] == domain_network["SubnetIds"]
        assert vpc_config["SecurityGroupIds"] == domain_network["DefaultUserSettings"]["SecurityGroups"]
    statements = role_statements(dev_studio, "DomainCleanupRole")
    delete = next(s for s in statements if "sagemaker:DeleteApp" in s["Action"])
    domain = {"Fn::GetAtt": [only(dev_studio, "AWS::SageMaker::Domain")[0], "DomainId"]}
    assert [(r["Fn::Join"][1][0].rsplit(":", 1)[-1], *r["Fn::Join"][1][1:]) for r in delete["Resource"]] == [
        ("app/", domain, "/*"), ("space/", domain, "/*"),
    ]  # fmt: skip


def test_mlflow_tracking_server_and_who_may_use_it(dev_studio, examples):
    _, server = only(dev_studio, "AWS::SageMaker::MlflowTrackingServer")
    props = server["Properties"]
    assert props["TrackingServerSize"] == "Medium" and props["TrackingServerName"] == "mlp-dev-mlflow"
    assert props["ArtifactStoreUri"]["Fn::Join"][1][-1] == "/mlflow/" and "ModelBucket" in json.dumps(props["ArtifactStoreUri"])
    assert "MlflowRole" in output_of(props["RoleArn"])
    users = {}
    # Grants from this stack to the foundation's roles are managed policies (inline ones only for its own roles).
    assert not [p for p in resources_of(dev_studio, "AWS::IAM::Policy").values() if "GetStackOutput" in json.dumps(p["Properties"]["Roles"])]
    for policy in resources_of(dev_studio, "AWS::IAM::ManagedPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "sagemaker-mlflow:LogMetric" in statement["Action"]:
                assert statement["Resource"].endswith(":mlflow-tracking-server/mlp-dev-mlflow")
                users[json.dumps(policy["Properties"]["Roles"])] = statement
    assert len(users) == 4  # data scientists, leads, the pipeline and its jobs
    # MLflow clients upload artifacts themselves: every user may write the artifact store.
    foundation = examples["dev"].template_json("Foundation")
    for role in ("StudioUserRole", "StudioLeadRole", "PipelineExecutionRole", "JobRole"):
        writes = [
            r["Fn::Join"][1][-1]
            for st in role_statements(foundation, role)
            if "s3:PutObject" in st["Action"]
            for r in as_list(st["Resource"])
            if "ModelBucket" in json.dumps(r)
        ]
        assert {"/mlflow/*", "/*"} & set(writes), role
    puts = [s["Resource"] for s in role_statements(foundation, "MlflowRole") if "s3:PutObject" in s["Action"]]
    assert [r["Fn::Join"][1][-1] for r in puts] == ["/mlflow/*"]


def test_domain_id_and_url_are_published(studio):
    parameters = {p["Properties"]["Name"]: p["Properties"]["Value"] for p in resources_of(studio, "AWS::SSM::Parameter").values()}
    domain_id, _ = only(studio, "AWS::SageMaker::Domain")
    assert parameters == {
        "/mlp-sandbox/studio/domain-id": {"Fn::GetAtt": [domain_id, "DomainId"]},
        "/mlp-sandbox/studio/domain-url": {"Fn::GetAtt": [domain_id, "Url"]},
    }


def test_studio_and_mlflow_can_be_switched_off(tmp_path):
    (tmp_path / "sandbox.yaml").write_text("studio: {mlflow: {enabled: false}}\n")
    stage = PlatformStage(platform_app(), "S", config=load_config("sandbox", config_dir=tmp_path))
    template = template_of(stage.studio)
    assert not resources_of(template, "AWS::SageMaker::MlflowTrackingServer")
    assert stage.foundation.mlflow_role is None
    (tmp_path / "sandbox.yaml").write_text("studio: {enabled: false}\n")
    stage = PlatformStage(platform_app(), "T", config=load_config("sandbox", config_dir=tmp_path))
    assert stage.studio is None and [s.node.id for s in stage.stacks] == ["Network", "Foundation", "ModelBuild", "Monitoring"]


def test_allowed_instance_types_are_ones_studio_accepts():
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::SageMaker::Domain").schema
    assert set(STUDIO_INSTANCE_TYPES) <= set(schema["definitions"]["AppInstanceType"]["enum"])


def _studio_template(tmp_path: Path, studio_yaml: str) -> dict:
    (tmp_path / "sandbox.yaml").write_text(f"studio: {studio_yaml}\n")
    stage = PlatformStage(platform_app(), "S", config=load_config("sandbox", config_dir=tmp_path))
    return template_of(stage.studio)


def cleanup_policy_actions(template: dict) -> set[str]:
    return {a for s in role_statements(template, "DomainCleanupRole") for a in as_list(s["Action"])}


def test_home_efs_is_retained_unless_config_says_delete(studio, tmp_path):
    (cleanup,) = domain_cleanup(studio).values()
    assert cleanup["Properties"]["DeleteHomeEfs"] == "false"
    assert not {"sagemaker:DeleteDomain", "sagemaker:DeleteUserProfile"} & cleanup_policy_actions(studio)
    deleting = _studio_template(tmp_path, "{home_efs_on_delete: delete}")
    (cleanup,) = domain_cleanup(deleting).values()
    assert cleanup["Properties"]["DeleteHomeEfs"] == "true"
    assert {"sagemaker:DeleteDomain", "sagemaker:DescribeDomain", "sagemaker:DeleteUserProfile", "sagemaker:ListUserProfiles"} <= cleanup_policy_actions(deleting)


def test_lifecycle_configurations_are_offered_per_app_type(tmp_path):
    lab = "arn:aws:sagemaker:eu-west-1:123456789012:studio-lifecycle-config/pip-mirror-lab"
    editor = "arn:aws:sagemaker:eu-west-1:123456789012:studio-lifecycle-config/pip-mirror-editor"
    template = _studio_template(
        tmp_path, f"{{jupyterlab_lifecycle_config_arns: ['{lab}'], code_editor_lifecycle_config_arns: ['{editor}']}}"
    )
    settings = only(template, "AWS::SageMaker::Domain")[1]["Properties"]["DefaultUserSettings"]
    assert settings["JupyterLabAppSettings"]["LifecycleConfigArns"] == [lab]
    assert settings["CodeEditorAppSettings"]["LifecycleConfigArns"] == [editor]


def test_the_deploying_role_may_use_the_studio_key_only_through_sagemaker_efs_and_ec2(sandbox):
    t = sandbox.template_json("Foundation")
    key_id = next(k for k in resources_of(t, "AWS::KMS::Key") if k.startswith("StudioKey"))
    statements = {s.get("Sid"): s for s in resources_of(t, "AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"]["Statement"]}
    services = ["sagemaker", "elasticfilesystem", "ec2"]
    for sid in ("AccountUsesViaServices", "AccountGrantsViaServices"):
        condition = statements[sid]["Condition"]
        assert condition["StringEquals"] == {"kms:CallerAccount": {"Ref": "AWS::AccountId"}}
        via = condition["ForAnyValue:StringEquals"]["kms:ViaService"]
        assert [v["Fn::Join"][1][0] for v in via] == [f"{s}." for s in services]
    assert statements["AccountGrantsViaServices"]["Action"] == "kms:CreateGrant"
    assert statements["AccountGrantsViaServices"]["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    assert "kms:GenerateDataKeyWithoutPlaintext" in statements["AccountUsesViaServices"]["Action"]
    # The models and data keys allow it through SageMaker alone (CreateEndpoint's check).
    for prefix in ("ModelsKey", "DataKey"):
        (key,) = [k for k in resources_of(t, "AWS::KMS::Key") if k.startswith(prefix)]
        via = [s for s in resources_of(t, "AWS::KMS::Key")[key]["Properties"]["KeyPolicy"]["Statement"] if "ViaServices" in s.get("Sid", "")]
        assert len(via) == 2
        assert {v["Fn::Join"][1][0] for s in via for v in s["Condition"]["ForAnyValue:StringEquals"]["kms:ViaService"]} == {"sagemaker."}


def test_execution_roles_can_work_in_the_domain_and_accept_source_identity(dev_studio, examples):
    policies = [p for p in resources_of(dev_studio, "AWS::IAM::ManagedPolicy").values() if "sagemaker:CreateSpace" in json.dumps(p)]
    assert len(policies) == 2  # data scientists and leads
    for policy in policies:
        (create,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "sagemaker:CreateApp" in s["Action"]]
        kinds = sorted(r["Fn::Join"][1][0].rsplit(":", 1)[-1] for r in create["Resource"])
        assert kinds == ["app/", "space/"]
    foundation = examples["dev"].template_json("Foundation")
    for role in ("StudioUserRole", "StudioLeadRole", "JobRole", "ModelExecutionRole", "PipelineExecutionRole"):
        trust = next(r for k, r in resources_of(foundation, "AWS::IAM::Role").items() if k.startswith(role))
        actions = {a for s in trust["Properties"]["AssumeRolePolicyDocument"]["Statement"] for a in as_list(s["Action"])}
        assert actions == {"sts:AssumeRole", "sts:SetSourceIdentity"}, role


def test_space_names_the_config_allows_fit_studio_after_the_hash_suffix():
    from config.schema import MAX_SPACE_NAME_LENGTH
    from ml_constructs.studio_domain import MAX_SPACE_DISPLAY_NAME_LENGTH, space_name

    assert MAX_SPACE_NAME_LENGTH == MAX_SPACE_DISPLAY_NAME_LENGTH
    assert len(space_name("s" * MAX_SPACE_NAME_LENGTH, {"ownerUserProfileName": "a"})) == 63
