"""Configuration: the embedded sandbox, the shipped examples, and clear errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, PlatformConfig, available_environments, load_config
from config.loader import DEFAULT_CONFIG_DIR
from config.schema import LOG_RETENTION_DAYS

from tests.conftest import ROOT, config_error

VALID = """\
account: "123456789012"
region: eu-west-1
"""


def write_env(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def error_for(tmp_path: Path, text: str, name: str = "staging") -> str:
    message = config_error(tmp_path, text, name)
    assert f"{name}.yaml" in message, "the message names the file"
    return message


def assert_rejected(tmp_path: Path, text: str, key: str, allowed: str) -> None:
    """``text`` added to a valid environment is refused, naming ``key`` and what is ``allowed``."""
    message = error_for(tmp_path, VALID + text)
    assert f"  - {key}:" in message
    assert allowed in message


def test_sandbox_is_embedded_and_needs_nothing(tmp_path):
    config = load_config(None, config_dir=tmp_path)  # an empty config folder
    assert config.name == "sandbox"
    assert config.account is None and config.region is None
    assert config.network.new_vpc.nat_gateways == 0
    assert config.network.existing_vpc is None
    assert config.stateful_resources_on_delete == "retain"


def test_sandbox_file_overrides_the_embedded_defaults(tmp_path):
    write_env(tmp_path, "sandbox", "stateful_resources_on_delete: destroy\n")
    assert load_config("sandbox", config_dir=tmp_path).stateful_resources_on_delete == "destroy"


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_shipped_examples_are_valid(name):
    config = load_config(name)
    assert config.name == name
    assert config.account and config.region == "eu-west-1"
    assert config.stateful_resources_on_delete == "retain"


def test_examples_cover_both_network_modes():
    assert load_config("dev").network.new_vpc is not None
    assert load_config("prod").network.existing_vpc is not None
    assert available_environments() == ["dev", "prod", "sandbox"]


def test_wrong_type(tmp_path):
    message = error_for(tmp_path, VALID + "network:\n  new_vpc:\n    az_count: two\n")
    assert "network.new_vpc.az_count" in message
    assert "'two'" in message and "allowed: an integer" in message


def test_unquoted_account_is_a_wrong_type_with_a_hint(tmp_path):
    message = error_for(tmp_path, "account: 123456789012\nregion: eu-west-1\n")
    assert "account: got 123456789012 (int)" in message
    assert "quote it in YAML" in message


def test_unknown_key_lists_the_allowed_keys(tmp_path):
    message = error_for(tmp_path, VALID + "network:\n  nat_gateway: 1\n")
    assert "network.nat_gateway: unknown key" in message
    assert "allowed keys here: new_vpc, existing_vpc, flow_log_retention_days" in message


def test_unknown_top_level_key(tmp_path):
    message = error_for(tmp_path, VALID + "tagz: {}\n")
    assert "tagz: unknown key" in message and "stateful_resources_on_delete" in message


@pytest.mark.parametrize("cidr", ["10.0.0/16", "10.0.0.0/33", "10.0.0.1/16", "banana"])
def test_malformed_cidr(tmp_path, cidr):
    message = error_for(tmp_path, VALID + f"network:\n  new_vpc:\n    cidr: '{cidr}'\n")
    assert f"network.new_vpc.cidr: '{cidr}'" in message
    assert "allowed: an IPv4 network such as '10.20.0.0/16'" in message


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "10.0.0.0/26", "8.8.0.0/16"])
def test_cidr_out_of_range_or_public(tmp_path, cidr):
    message = error_for(tmp_path, VALID + f"network:\n  new_vpc:\n    cidr: '{cidr}'\n")
    assert "network.new_vpc.cidr" in message and "prefix /16 to /22" in message


@pytest.mark.parametrize("account", ["12345678901", "1234567890123", "12345678901a"])
def test_malformed_account(tmp_path, account):
    message = error_for(tmp_path, f"account: '{account}'\nregion: eu-west-1\n")
    assert f"account: '{account}' is not an AWS account id" in message
    assert "allowed: exactly 12 digits" in message


def test_unknown_region(tmp_path):
    message = error_for(tmp_path, 'account: "123456789012"\nregion: eu-west-9\n')
    assert "region: 'eu-west-9' is not a known AWS region" in message
    assert "allowed:" in message


def test_unknown_environment_lists_the_known_ones(tmp_path):
    write_env(tmp_path, "dev", VALID)
    with pytest.raises(ConfigError) as caught:
        load_config("prdo", config_dir=tmp_path)
    message = str(caught.value)
    assert "unknown environment 'prdo'" in message and "prdo.yaml" in message
    assert "allowed: dev, sandbox" in message


def test_environment_name_cannot_escape_the_config_folder(tmp_path):
    with pytest.raises(ConfigError, match="environment name '../etc/passwd'.*is invalid"):
        load_config("../etc/passwd", config_dir=tmp_path)


@pytest.mark.parametrize(
    ("text", "key"),
    [("region: eu-west-1\n", "account"), ('account: "123456789012"\n', "region"), ("tags: {}\n", "account")],
)
def test_non_sandbox_needs_account_and_region(tmp_path, text, key):
    message = error_for(tmp_path, text)
    assert f"  - {key}:" in message
    assert "only the sandbox may leave account and region unset" in message or "both or neither" in message


def test_sandbox_may_not_set_only_one_of_account_and_region(tmp_path):
    message = error_for(tmp_path, "region: eu-west-1\n", name="sandbox")
    assert "account: only one of account and region is set" in message


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        (
            "network:\n  new_vpc: {}\n  existing_vpc: {vpc_id: vpc-12345678, subnet_ids: [subnet-12345678], "
            "availability_zones: [eu-west-1a], route_table_ids: [rtb-12345678]}\n",
            "network.existing_vpc",
            "exactly one of new_vpc and existing_vpc",
        ),
        ("network:\n  new_vpc: {az_count: 2, nat_gateways: 3}\n", "network.new_vpc.nat_gateways", "up to one per AZ"),
        (
            "network:\n  new_vpc: {az_count: 3, availability_zones: [eu-west-1a, eu-west-1b]}\n",
            "network.new_vpc.availability_zones",
            "exactly az_count zone names",
        ),
        ("stateful_resources_on_delete: destroy\n", "stateful_resources_on_delete", "'destroy' only in the sandbox"),
        (
            "network:\n  new_vpc: {az_count: 1, availability_zones: [us-east-1a]}\n",
            "network.new_vpc.availability_zones",
            "zones of that region",
        ),
        (
            "network:\n  existing_vpc: {vpc_id: vpc-12345678, subnet_ids: [subnet-12345678, subnet-87654321], "
            "availability_zones: [eu-west-1a], route_table_ids: [rtb-12345678]}\n",
            "network.existing_vpc.subnet_ids",
            "one zone and one route table per subnet",
        ),
    ],
)
def test_contradictory_options(tmp_path, text, key, allowed):
    assert_rejected(tmp_path, text, key, allowed)


def test_malformed_existing_vpc_ids(tmp_path):
    message = error_for(
        tmp_path,
        VALID + "network:\n  existing_vpc: {vpc_id: vpc-xyz, subnet_ids: [sub-12345678], "
        "availability_zones: [eu-west-1a], route_table_ids: [rtb-12345678]}\n",
    )
    assert "network.existing_vpc.vpc_id: 'vpc-xyz' is not a valid VPC id" in message
    assert "network.existing_vpc.subnet_ids: 'sub-12345678' is not a valid subnet id" in message


def test_bad_literal_names_the_allowed_values(tmp_path):
    message = error_for(tmp_path, VALID + "stateful_resources_on_delete: nuke\n")
    assert "stateful_resources_on_delete: got 'nuke'; allowed: 'retain' or 'destroy'" in message


def test_retention_must_be_a_cloudwatch_period(tmp_path):
    message = error_for(tmp_path, VALID + "network:\n  flow_log_retention_days: 100\n")
    assert "network.flow_log_retention_days: 100 is not a CloudWatch Logs retention period" in message
    assert "90, 120" in message


def test_bad_tags(tmp_path):
    assert "tags.CostCenter: got 42 (int)" in error_for(tmp_path, VALID + "tags:\n  CostCenter: 42\n")
    message = error_for(tmp_path, VALID + "tags:\n  'aws:owner': me\n")
    assert "tags: tag key 'aws:owner' is reserved" in message and "not starting with 'aws:'" in message


def test_every_problem_is_reported_at_once(tmp_path):
    message = error_for(tmp_path, "account: '1'\nregion: nowhere-1\nnetwork: {new_vpc: {cidr: x}}\n")
    assert message.count("\n  - ") == 3


def test_yaml_errors_name_file_and_line(tmp_path):
    message = error_for(tmp_path, VALID + "tags: [unclosed\n")
    assert "not valid YAML" in message and "line" in message


def test_duplicate_keys_are_refused(tmp_path):
    message = error_for(tmp_path, VALID + "region: us-east-1\n")
    assert "duplicate key 'region'" in message


def test_name_must_match_the_file(tmp_path):
    message = error_for(tmp_path, VALID + "name: prod\n")
    assert "name: 'prod' differs from the file name; allowed: 'staging'" in message


def test_top_level_must_be_a_mapping(tmp_path):
    assert "allowed: a mapping of keys" in error_for(tmp_path, "- a\n- b\n")


def test_config_is_immutable():
    config = PlatformConfig()
    with pytest.raises(Exception):
        config.name = "other"  # type: ignore[misc]


def test_retention_table_matches_cdk():
    from aws_cdk import aws_logs as logs

    for days, member in LOG_RETENTION_DAYS.items():
        assert getattr(logs.RetentionDays, member) is not None, days


def test_synth_stops_with_one_clear_message_and_writes_nothing(tmp_path):
    """`python app.py` with a bad environment exits non-zero with the message, no traceback, no output."""
    outdir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={**__import__("os").environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": '{"env": "nope"}'},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: unknown environment 'nope'")
    assert "Traceback" not in result.stderr
    assert not list(outdir.rglob("*.template.json")), "no template is written from a bad config"
    assert DEFAULT_CONFIG_DIR.is_dir()


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("pipeline: {schedule: 'every monday'}\n", "pipeline.schedule", "'cron(0 3 ? * MON *)'"),
        ("pipeline: {schedule: 'cron(0 3 * * MON)'}\n", "pipeline.schedule", "six fields"),
        ("pipeline: {training_instance_type: m5.xlarge}\n", "pipeline.training_instance_type", "'ml.m5.xlarge'"),
        ("pipeline: {inference_instance_types: [ml.m5.large, large]}\n", "pipeline.inference_instance_types", "'ml.m5.xlarge'"),
        ("pipeline: {max_run_minutes: 90, max_wait_minutes: 60}\n", "pipeline.max_wait_minutes", "at least max_run_minutes"),
        ("pipeline: {tuning: {max_jobs: 2, max_parallel_jobs: 4}}\n", "pipeline.tuning.max_parallel_jobs", "at most max_jobs"),
        ("pipeline: {notification_emails: [ml-team]}\n", "pipeline.notification_emails", "addresses like"),
        ("pipeline: {registry_shared_with_accounts: ['123456789012']}\n", "pipeline.registry_shared_with_accounts", "other accounts only"),
        ("pipeline: {registry_shared_with_accounts: ['1234']}\n", "pipeline.registry_shared_with_accounts", "12-digit"),
        ("pipeline: {training_mode: automl}\n", "pipeline.training_mode", "'train' or 'tune'"),
        ("pipeline: {accuracy_threshold: 1.5}\n", "pipeline.accuracy_threshold", "got 1.5; allowed: a number <= 1"),
        ("network: {new_vpc: {az_count: 0}}\n", "network.new_vpc.az_count", "got 0; allowed: a number >= 1"),
        ("pipeline: {target_column: 'a,b'}\n", "pipeline.target_column", "no commas"),
    ],
)
def test_bad_pipeline_settings(tmp_path, text, key, allowed):
    assert_rejected(tmp_path, text, key, allowed)


def test_pipeline_defaults_match_the_reference_settings():
    pipeline = load_config().pipeline
    assert pipeline.training_mode == "train" and pipeline.schedule is None
    assert (pipeline.accuracy_threshold, pipeline.max_run_minutes, pipeline.max_wait_minutes) == (0.7, 60, 120)
    assert (pipeline.tuning.max_jobs, pipeline.tuning.max_parallel_jobs, pipeline.tuning.early_stopping) == (10, 2, True)


@pytest.mark.parametrize(
    ("text", "key", "allowed"),
    [
        ("studio: {users: [{name: ann}, {name: ann, persona: lead}]}\n", "studio.users", "each user name once"),
        ("studio: {users: [{name: ann, persona: admin}]}\n", "studio.users.0.persona", "'data_scientist' or 'lead'"),
        ("studio: {default_instance_type: ml.t2.medium}\n", "studio.default_instance_type", "ml.t3.medium"),
        ("studio: {idle_timeout_minutes: 30}\n", "studio.idle_timeout_minutes", "a number >= 60"),
        ("studio: {idle_timeout_minutes: 600000}\n", "studio.idle_timeout_minutes", "a number <= 525600"),
        ("studio: {git_repositories: ['git@github.com:org/repo.git']}\n", "studio.git_repositories", "https Git URL"),
        ("studio: {git_repositories: ['http://github.com/org/repo.git']}\n", "studio.git_repositories", "https Git URL"),
        ("studio: {users: [{name: 'ann smith'}]}\n", "studio.users.0.name", "letters, digits and '-'"),
        ("studio: {shared_spaces: [{name: team, owner: zed}], users: [{name: ann}]}\n", "studio.shared_spaces", "owner 'zed' is not one of the users"),
        ("studio: {shared_spaces: [team]}\n", "studio.shared_spaces.0", "a mapping"),
        ("studio: {mlflow: {size: Huge}}\n", "studio.mlflow.size", "'Small', 'Medium' or 'Large'"),
        ("studio: {home_efs_on_delete: shred}\n", "studio.home_efs_on_delete", "'retain' or 'delete'"),
        ("studio: {jupyterlab_lifecycle_config_arns: ['pip-mirror']}\n", "studio.jupyterlab_lifecycle_config_arns", "studio-lifecycle-config/<name>"),
    ],
)
def test_bad_studio_settings(tmp_path, text, key, allowed):
    assert_rejected(tmp_path, text, key, allowed)


# --- Git repositories Studio must reach from the VPC ------------------------------------------------------

EXISTING_VPC = """\
network:
  existing_vpc: {vpc_id: vpc-0a1b2c3d4e5f60718, subnet_ids: [subnet-0a1b2c3d4e5f60711],
                 availability_zones: [eu-west-1a], route_table_ids: [rtb-0a1b2c3d4e5f60733]}
"""


@pytest.mark.parametrize(
    "url", ["https://github.com/org/repo.git", "https://gitlab.com/org/repo.git", "https://bitbucket.org/org/repo.git",
            "https://GitHub.com:443/org/repo.git", "https://www.github.com/org/repo.git"],
)  # fmt: skip
def test_public_git_hosts_need_nat_in_a_new_vpc(tmp_path, url):
    assert_rejected(tmp_path, f"studio: {{git_repositories: ['{url}']}}\n", "studio.git_repositories", "nat_gateways of 1 or more")


def test_public_git_hosts_with_nat_or_without_studio_are_accepted_quietly(tmp_path):
    github = "studio: {git_repositories: ['https://github.com/org/repo.git']%s}\n"
    with_nat = "network: {new_vpc: {az_count: 1, nat_gateways: 1}}\n" + github % ""
    without_studio = github % ", enabled: false"
    for name, text in (("nat", with_nat), ("nostudio", without_studio)):
        config = load_config(name, config_dir=write_env(tmp_path, name, VALID + text))
        assert config.git_reachability_warnings() == []


def test_git_hosts_studio_may_not_reach_are_said_at_synth(tmp_path):
    existing = load_config("existing", config_dir=write_env(
        tmp_path, "existing", VALID + EXISTING_VPC + "studio: {git_repositories: ['https://github.com/org/a.git']}\n"))  # fmt: skip
    (warning,) = existing.git_reachability_warnings()
    assert "https://github.com/org/a.git" in warning and "vpc-0a1b2c3d4e5f60718 routes to it" in warning
    private = load_config("private", config_dir=write_env(
        tmp_path, "private", VALID + "studio: {git_repositories: ['https://git.corp.example/ml/a.git']}\n"))  # fmt: skip
    (warning,) = private.git_reachability_warnings()
    assert "no NAT gateway" in warning and "git.corp.example is inside the VPC" in warning
    # A host inside an existing VPC is its owner's business: nothing to say.
    internal = load_config("internal", config_dir=write_env(
        tmp_path, "internal", VALID + EXISTING_VPC + "studio: {git_repositories: ['https://git.corp.example/ml/a.git']}\n"))  # fmt: skip
    assert internal.git_reachability_warnings() == []
# Configuration AWS would reject at deploy time (or that would break synth with a traceback), each refused
# at load with the file, the key path, the bad value and what is allowed.
LONG_TAGS = "{" + ", ".join(f"k{i}: v" for i in range(47)) + "}"
AWS_REJECTS = [
    # instance types per job kind (botocore's SageMaker enums)
    ("pipeline: {training_instance_type: ml.t3.micro}", "pipeline.training_instance_type", "'ml.t3.micro'", "TrainingInstanceType"),
    ("pipeline: {processing_instance_type: ml.m5.larg}", "pipeline.processing_instance_type", "'ml.m5.larg'", "ml.m5.large"),
    ("pipeline: {inference_instance_types: [ml.m5.large, ml.x9.large]}", "pipeline.inference_instance_types", "'ml.x9.large'", "ProductionVariantInstanceType"),
    ("pipeline: {transform_instance_types: [ml.t3.medium]}", "pipeline.transform_instance_types", "'ml.t3.medium'", "TransformInstanceType"),
    ("serving: {realtime: {instance_type: ml.trn1.2xlarge}}", "serving.realtime.instance_type", "'ml.trn1.2xlarge'", "EBS storage"),
    ("serving: {batch: {instance_type: ml.t2.medium}}", "serving.batch.instance_type", "'ml.t2.medium'", "TransformInstanceType"),
    ("monitoring: {drift_check: {instance_type: ml.inf1.xlarge}}", "monitoring.drift_check.instance_type", "'ml.inf1.xlarge'", "ProcessingInstanceType"),
    ("monitoring: {model_monitor: {instance_type: ml.inf2.xlarge}}", "monitoring.model_monitor.instance_type", "'ml.inf2.xlarge'", "ProcessingInstanceType"),
    # NVMe instance storage wherever the platform sets a volume key
    ("pipeline: {training_instance_type: ml.g4dn.xlarge}", "pipeline.training_instance_type", "'ml.g4dn.xlarge'", "EBS storage"),
    ("pipeline: {processing_instance_type: ml.g5.xlarge}", "pipeline.processing_instance_type", "'ml.g5.xlarge'", "EBS storage"),
    ("monitoring: {drift_check: {instance_type: ml.r5d.large}}", "monitoring.drift_check.instance_type", "'ml.r5d.large'", "EBS storage"),
    ("serving: {batch: {instance_type: ml.g4dn.xlarge}}", "serving.batch.instance_type", "'ml.g4dn.xlarge'", "EBS storage"),
    # tags
    (f"tags: {LONG_TAGS}", "tags", "47 tags", "at most 46"),
    ("tags: {'ml-platform:environment': prod}", "tags", "'ml-platform:environment'", "not starting with"),
    ("tags: {'aws-cdk:subnet-type': x}", "tags", "'aws-cdk:subnet-type'", "not starting with"),
    ("tags: {'Cost#Center': a}", "tags", "'Cost#Center'", "letters, digits, spaces or _.:/=+-@"),
    ("tags: {Owner: 'team;ops'}", "tags", "'team;ops'", "0-256 letters"),
    (f"tags: {{Owner: {'x' * 257}}}", "tags", "'xxxx", "0-256"),
    (f"tags: {{{'k' * 129}: v}}", "tags", "'kkkk", "1-128"),
    ("tags: {CostCenter: a, costcenter: b}", "tags", "'costcenter'", "each tag key (case-insensitive) once"),
    # names AWS names derive from
    ("serving: {multi_model: {endpoint_name: mlp-staging-realtime}}", "serving.multi_model.endpoint_name", "'mlp-staging-realtime'", "a distinct name per endpoint"),
    ("serving: {asynchronous: {endpoint_name: MLP-STAGING-MULTI-MODEL}}", "serving.asynchronous.endpoint_name", "'MLP-STAGING-MULTI-MODEL'", "a distinct name per endpoint"),
    ("serving: {realtime: {endpoint_name: my-endpoint-}}", "serving.realtime.endpoint_name", "'my-endpoint-'", "ending with a letter or digit"),
    (f"studio: {{users: [{{name: ann}}], shared_spaces: [{{name: {'s' * 53}, owner: ann}}]}}", "studio.shared_spaces.0.name", "'sss", "1-52"),
    ("studio: {users: [{name: ann-}]}", "studio.users.0.name", "'ann-'", "ending with a letter or digit"),
    # duplicates in lists
    ("monitoring: {notification_emails: [a@example.com, a@example.com]}", "monitoring.notification_emails", "'a@example.com'", "each address once"),
    ("pipeline: {notification_emails: [a@example.com, A@Example.com]}", "pipeline.notification_emails", "'A@Example.com'", "each address once"),
    ("studio: {users: [{name: ann}, {name: Ann}]}", "studio.users", "'Ann'", "each user name once"),
    ("studio: {users: [{name: ann}], shared_spaces: [{name: t, owner: ann}, {name: t, owner: ann}]}", "studio.shared_spaces", "'t'", "each space name once"),
    ("studio: {git_repositories: ['https://example.com/r.git', 'https://example.com/r.git']}", "studio.git_repositories", "'https://example.com/r.git'", "each repository once"),
    ("pipeline: {registry_shared_with_accounts: ['222222222222', '222222222222']}", "pipeline.registry_shared_with_accounts", "'222222222222'", "each account once"),
    ("network: {new_vpc: {az_count: 2, availability_zones: [eu-west-1a, eu-west-1a]}}", "network.new_vpc.availability_zones", "'eu-west-1a'", "each availability zone once"),
    # a typo inside a list item
    ("studio: {users: [{name: ann, persona: lead, emial: a@example.com}]}", "studio.users.0.emial", "'a@example.com'", "allowed keys here: name, persona"),
    ("studio: {users: [{name: ann}], shared_spaces: [{name: t, ownr: ann}]}", "studio.shared_spaces.0.ownr", "'ann'", "allowed keys here: name, owner"),
    # ARNs of another partition, region or account
    ("studio: {jupyterlab_lifecycle_config_arns: ['arn:aws:sagemaker:us-east-1:123456789012:studio-lifecycle-config/pip']}",
     "studio.jupyterlab_lifecycle_config_arns", "region 'us-east-1'", "region 'eu-west-1'"),
    ("studio: {code_editor_lifecycle_config_arns: ['arn:aws:sagemaker:eu-west-1:999999999999:studio-lifecycle-config/pip']}",
     "studio.code_editor_lifecycle_config_arns", "account '999999999999'", "account '123456789012'"),
    ("studio: {jupyterlab_lifecycle_config_arns: ['arn:aws-cn:sagemaker:eu-west-1:123456789012:studio-lifecycle-config/pip']}",
     "studio.jupyterlab_lifecycle_config_arns", "partition 'aws-cn'", "partition 'aws'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key", "bad", "allowed"), AWS_REJECTS, ids=[case[1] + "=" + case[2][:30] for case in AWS_REJECTS])
def test_configuration_aws_would_reject_is_refused_with_file_key_value_and_allowed(tmp_path, text, key, bad, allowed):
    message = error_for(tmp_path, VALID + text + "\n")
    (line,) = [line for line in message.splitlines() if line.startswith(f"  - {key}:")]
    assert bad in line and "allowed" in line and allowed in line, line


def test_environment_names_end_with_a_letter_or_digit(tmp_path):
    """``mlp-<env>`` starts the Studio domain's name, which may not end with '-'."""
    message = config_error(tmp_path, VALID, name="dev-")
    assert "environment name 'dev-' (context key 'env') is invalid; allowed:" in message and "ending with a letter or digit" in message


def test_platform_tags_leave_room_for_the_configured_ones(every_synth):
    """The limit on config tags holds: no resource carries more than PLATFORM_TAGS_PER_RESOURCE of the platform's own."""
    from config.schema import PLATFORM_TAGS_PER_RESOURCE

    configured = set(load_config("dev").tags) | set(load_config("prod").tags)
    most = 0
    for synth in every_synth:
        for stack_id in synth.stack_ids:
            for resource in synth.template_json(stack_id)["Resources"].values():
                tags = resource.get("Properties", {}).get("Tags")
                keys = [t["Key"] for t in tags] if isinstance(tags, list) and all(isinstance(t, dict) for t in tags) else list(tags or {})
                most = max(most, len([k for k in keys if k not in configured]))
    assert most == PLATFORM_TAGS_PER_RESOURCE


def test_instance_type_lists_come_from_the_sagemaker_api_model():
    from config.schema import INSTANCE_KINDS, STUDIO_INSTANCE_TYPES, sagemaker_instance_types

    for shape, _ in INSTANCE_KINDS.values():
        assert "ml.m5.xlarge" in sagemaker_instance_types(shape)
    assert set(STUDIO_INSTANCE_TYPES) <= set(sagemaker_instance_types("AppInstanceType"))
