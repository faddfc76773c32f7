"""Foundation stack: customer-managed keys, locked-down buckets and one least-privilege role per duty."""

from __future__ import annotations

import json

import pytest

from config.schema import PlatformConfig
from ml_constructs.keys import ENCRYPT_DECRYPT_ACTIONS, KEY_ADMIN_ACTIONS
from stacks.platform_stage import PlatformStage
from tests.conftest import as_list, logical_id, output_of, platform_app, resources_of, role_policies, role_statements, template_of

ROLES = [
    "StudioUserRole", "StudioLeadRole", "PipelineExecutionRole", "JobRole", "ModelExecutionRole", "MultiModelRole",
    "MonitoringJobRole", "SchedulerRole", "MlflowRole",
]  # fmt: skip
BUCKETS = ["DataBucket", "ModelBucket", "CaptureBucket", "ReportsBucket"]
CRYPTO_ACTIONS = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"}




def allowed(statements: list[dict], action: str) -> list:
    """Resources on which ``action`` is allowed (unconditionally or not)."""
    return [r for s in statements if s["Effect"] == "Allow" and action in as_list(s["Action"]) for r in as_list(s["Resource"])]


def bucket_arn(template_json: dict, bucket: str, objects: bool = False):
    arn = {"Fn::GetAtt": [logical_id(template_json, "AWS::S3::Bucket", bucket), "Arn"]}
    return {"Fn::Join": ["", [arn, "/*"]]} if objects else arn


def key_policy(template_json: dict, key: str) -> list[dict]:
    return resources_of(template_json, "AWS::KMS::Key")[logical_id(template_json, "AWS::KMS::Key", key)]["Properties"]["KeyPolicy"]["Statement"]


def key_users(template_json: dict, key: str) -> set[str]:
    """Roles (by logical id prefix) that a key's policy lets use it for cryptography."""
    users = set()
    for statement in key_policy(template_json, key):
        if not CRYPTO_ACTIONS & set(as_list(statement["Action"])):
            continue
        for principal in as_list(statement["Principal"].get("AWS", [])):
            if "Fn::GetAtt" in principal:  # the account root's conditioned use is tested on its own
                users.add(next(r for r in ROLES if principal["Fn::GetAtt"][0].startswith(r)))
    return users


# --- keys -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "alias"), [("DataKey", "data"), ("ModelsKey", "models"), ("StudioKey", "studio")])
def test_keys_rotate_and_have_aliases(sandbox, foundation, key, alias):
    t = sandbox.template_json("Foundation")
    key_id = logical_id(t, "AWS::KMS::Key", key)
    assert resources_of(t, "AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True
    foundation.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": f"alias/mlp-sandbox/{alias}", "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )


@pytest.mark.parametrize("key", ["DataKey", "ModelsKey", "StudioKey"])
def test_account_root_administers_but_cannot_use_keys(sandbox, key):
    statements = key_policy(sandbox.template_json("Foundation"), key)
    root = [s for s in statements if s.get("Sid") == "KeyAdministration"]
    assert len(root) == 1
    assert sorted(root[0]["Action"]) == sorted(KEY_ADMIN_ACTIONS)
    assert not CRYPTO_ACTIONS & set(root[0]["Action"]) and "kms:CreateGrant" not in root[0]["Action"]
    for statement in statements:
        assert "kms:*" not in as_list(statement["Action"])


def test_key_policies_name_exactly_the_roles_that_use_them(sandbox):
    t = sandbox.template_json("Foundation")
    studio = {"StudioUserRole", "StudioLeadRole"}
    assert key_users(t, "DataKey") == studio | {"PipelineExecutionRole", "JobRole", "ModelExecutionRole", "MonitoringJobRole"}
    assert key_users(t, "ModelsKey") == studio | {
        "PipelineExecutionRole", "JobRole", "ModelExecutionRole", "MultiModelRole", "MonitoringJobRole", "MlflowRole",
    }  # fmt: skip
    assert key_users(t, "StudioKey") == studio


@pytest.mark.parametrize("key", ["ModelsKey", "DataKey"])
def test_kms_grants_are_only_for_aws_resources(sandbox, key):
    via_service = 0
    for statement in key_policy(sandbox.template_json("Foundation"), key):
        if "kms:CreateGrant" in as_list(statement["Action"]):
            assert statement["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
            if statement.get("Sid") == "AccountGrantsViaServices":
                # CreateEndpoint needs its caller (CloudFormation's role) to have SageMaker use the key: only that.
                via_service += 1
                assert statement["Condition"]["StringEquals"] == {"kms:CallerAccount": {"Ref": "AWS::AccountId"}}
                services = statement["Condition"]["ForAnyValue:StringEquals"]["kms:ViaService"]
                assert [s["Fn::Join"][1][0] for s in services] == ["sagemaker."]
            else:
                assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert via_service == 1


# --- buckets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bucket", "key"), [("DataBucket", "DataKey"), ("ModelBucket", "ModelsKey"), ("CaptureBucket", "DataKey"), ("ReportsBucket", "DataKey")])
def test_buckets_use_their_customer_key(sandbox, bucket, key):
    t = sandbox.template_json("Foundation")
    props = resources_of(t, "AWS::S3::Bucket")[logical_id(t, "AWS::S3::Bucket", bucket)]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {
        "BucketKeyEnabled": True,
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": [logical_id(t, "AWS::KMS::Key", key), "Arn"]}},
    }


def test_access_log_bucket_uses_its_own_customer_key_that_admits_log_delivery(sandbox):
    t = sandbox.template_json("Foundation")
    props = resources_of(t, "AWS::S3::Bucket")[logical_id(t, "AWS::S3::Bucket", "AccessLogBucket")]["Properties"]
    key_id = logical_id(t, "AWS::KMS::Key", "AccessLogsKey")
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
    }  # fmt: skip
    assert "LoggingConfiguration" not in props
    statements = t["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    (delivery,) = [s for s in statements if s["Principal"] == {"Service": "logging.s3.amazonaws.com"}]
    assert "kms:GenerateDataKey*" in delivery["Action"]
    # Only buckets of this account deliver (the access-log bucket's policy); people read through S3 only.
    (reading,) = [s for s in statements if s.get("Sid") == "AccountDecryptsViaS3"]
    assert reading["Action"] == ["kms:Decrypt", "kms:DescribeKey"]
    assert reading["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1][0] == "s3."


@pytest.mark.parametrize("bucket", BUCKETS + ["AccessLogBucket"])
def test_buckets_are_private_versioned_and_expire_old_versions(sandbox, bucket):
    t = sandbox.template_json("Foundation")
    props = resources_of(t, "AWS::S3::Bucket")[logical_id(t, "AWS::S3::Bucket", bucket)]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == 90 for r in rules)
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 7 for r in rules)


@pytest.mark.parametrize("bucket", BUCKETS)
def test_buckets_log_access_to_the_log_bucket(sandbox, bucket):
    t = sandbox.template_json("Foundation")
    props = resources_of(t, "AWS::S3::Bucket")[logical_id(t, "AWS::S3::Bucket", bucket)]["Properties"]
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logical_id(t, "AWS::S3::Bucket", "AccessLogBucket")},
        "LogFilePrefix": f"{bucket}/",
    }


@pytest.mark.parametrize("bucket", BUCKETS + ["AccessLogBucket"])
def test_bucket_policies_deny_requests_without_tls(sandbox, bucket):
    t = sandbox.template_json("Foundation")
    bucket_id = logical_id(t, "AWS::S3::Bucket", bucket)
    (policy,) = [p for p in resources_of(t, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    conditions = [s["Condition"] for s in denies if s["Principal"] == {"AWS": "*"} and s["Action"] == "s3:*"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_log_bucket_admits_only_s3_log_delivery_from_the_platform_buckets(sandbox):
    t = sandbox.template_json("Foundation")
    log_id = logical_id(t, "AWS::S3::Bucket", "AccessLogBucket")
    (policy,) = [p for p in resources_of(t, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": log_id}]
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allows and all(s["Principal"] == {"Service": "logging.s3.amazonaws.com"} for s in allows)
    sources = {str(s["Condition"]["ArnLike"]["aws:SourceArn"]) for s in allows}
    assert len(sources) == len(BUCKETS)


# --- retention ----------------------------------------------------------------------------------------

STATEFUL = ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::EFS::FileSystem", "AWS::SageMaker::ModelPackageGroup")


def test_every_stateful_resource_is_retained(sandbox):
    found = 0
    for stack_id in sandbox.stack_ids:
        for resource_type in STATEFUL:
            for name, resource in resources_of(sandbox.template_json(stack_id), resource_type).items():
                # Buckets keep plain Retain; the rest is deleted only when its own create rolls back (tests/test_lifecycle.py).
                expected = "Retain" if resource_type == "AWS::S3::Bucket" else "RetainExceptOnCreate"
                assert resource.get("DeletionPolicy") == expected, name
                assert resource.get("UpdateReplacePolicy") == "Retain", name
                found += 1
    # buckets; data, models, studio, access-logs, logs, model-build and alarm notification keys; flow-log, default-group restriction, Studio-cleanup
    # log groups; registry
    assert found == 5 + 7 + 3 + 1


@pytest.fixture(scope="module")
def destroyable_sandbox() -> dict[str, dict]:
    app = platform_app()
    stage = PlatformStage(app, "Sandbox", config=PlatformConfig(stateful_resources_on_delete="destroy"))
    return {s.node.id: template_of(s) for s in stage.stacks}


def test_sandbox_can_opt_into_destroy_with_auto_delete(destroyable_sandbox):
    foundation = destroyable_sandbox["Foundation"]
    for resource_type in STATEFUL[:3]:
        for stack in destroyable_sandbox.values():
            for name, resource in resources_of(stack, resource_type).items():
                assert resource.get("DeletionPolicy") == "Delete", name
    assert len(resources_of(foundation, "Custom::S3AutoDeleteObjects")) == 5


# --- IAM -------------------------------------------------------------------------------------------------


def all_role_statements(sandbox) -> list[dict]:
    statements = []
    for stack_id in sandbox.stack_ids:
        t = sandbox.template_json(stack_id)
        for policy in role_policies(t):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
        for role in resources_of(t, "AWS::IAM::Role").values():
            for inline in role["Properties"].get("Policies", []):
                statements += inline["PolicyDocument"]["Statement"]
    return statements


def test_no_managed_policies_and_no_wildcard_actions(sandbox):
    statements = all_role_statements(sandbox)
    assert len(statements) > 40
    for statement in statements:
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement
    for stack_id in sandbox.stack_ids:
        for role in resources_of(sandbox.template_json(stack_id), "AWS::IAM::Role").values():
            assert "ManagedPolicyArns" not in role["Properties"]


def test_pass_role_is_always_limited_to_a_service(sandbox):
    passes = [s for s in all_role_statements(sandbox) if "iam:PassRole" in as_list(s["Action"])]
    assert passes
    for statement in passes:
        assert statement["Condition"]["StringEquals"]["iam:PassedToService"]


def test_who_may_pass_which_role(sandbox):
    t = sandbox.template_json("Foundation")

    def passable_by(role):
        return {r["Fn::GetAtt"][0] for r in allowed(role_statements(t, role), "iam:PassRole")}

    job, model = logical_id(t, "AWS::IAM::Role", "JobRole"), logical_id(t, "AWS::IAM::Role", "ModelExecutionRole")
    monitoring = logical_id(t, "AWS::IAM::Role", "MonitoringJobRole")
    assert passable_by("PipelineExecutionRole") == {job, model, monitoring}
    assert passable_by("StudioUserRole") == passable_by("StudioLeadRole") == {job, model}
    assert passable_by("JobRole") == passable_by("ModelExecutionRole") == passable_by("SchedulerRole") == set()


@pytest.mark.parametrize(
    ("role", "service"),
    [("StudioUserRole", "sagemaker.amazonaws.com"), ("PipelineExecutionRole", "sagemaker.amazonaws.com"),
     ("JobRole", "sagemaker.amazonaws.com"), ("ModelExecutionRole", "sagemaker.amazonaws.com")],
)  # fmt: skip
def test_sagemaker_roles_trust_sagemaker_only(sandbox, role, service):
    t = sandbox.template_json("Foundation")
    trust = resources_of(t, "AWS::IAM::Role")[logical_id(t, "AWS::IAM::Role", role)]["Properties"]["AssumeRolePolicyDocument"]
    # Studio stamps sessions with the user profile name: SageMaker roles accept a source identity.
    assert trust["Statement"] == [
        {"Action": ["sts:AssumeRole", "sts:SetSourceIdentity"], "Effect": "Allow", "Principal": {"Service": service}}
    ]


def test_scheduler_role_trusts_scheduler_and_events_from_this_account_only(sandbox):
    t = sandbox.template_json("Foundation")
    trust = resources_of(t, "AWS::IAM::Role")[logical_id(t, "AWS::IAM::Role", "SchedulerRole")]["Properties"]["AssumeRolePolicyDocument"]
    services = set()
    for statement in trust["Statement"]:
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        services.update(as_list(statement["Principal"]["Service"]))
    assert services == {"scheduler.amazonaws.com", "events.amazonaws.com"}


def test_scheduler_role_can_only_start_this_environments_pipelines(sandbox):
    statements = role_statements(sandbox.template_json("Foundation"), "SchedulerRole")
    assert {a for s in statements for a in as_list(s["Action"])} == {
        "sagemaker:DescribePipeline", "sagemaker:DescribePipelineExecution",
        "sagemaker:ListPipelineExecutionSteps", "sagemaker:StartPipelineExecution",
    }  # fmt: skip
    resources = [r["Fn::Join"][1][-1] for s in statements for r in as_list(s["Resource"])]
    assert resources == [":pipeline/mlp-sandbox-*", ":pipeline/mlp-sandbox-*/execution/*"]


@pytest.mark.parametrize("role", ["PipelineExecutionRole", "StudioUserRole", "StudioLeadRole"])
def test_jobs_and_models_must_run_in_the_platform_vpc(sandbox, role):
    statements = role_statements(sandbox.template_json("Foundation"), role)
    denies = {s["Sid"]: s for s in statements if s["Effect"] == "Deny"}
    vpc_denies = {"DenyJobsOutsideAnyVpc", "DenyJobsInOtherSubnets", "DenyJobsInOtherSecurityGroups"}
    assert set(denies) == vpc_denies | {"DenyJobsWithoutVolumeKey", "DenyJobsWithoutTrafficEncryption"}
    for sid in vpc_denies:
        assert set(denies[sid]["Action"]) == {
            "sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob",
            "sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateModel",
        }  # fmt: skip
    assert denies["DenyJobsOutsideAnyVpc"]["Condition"] == {"Null": {"sagemaker:VpcSubnets": "true"}}
    subnets = denies["DenyJobsInOtherSubnets"]["Condition"]["ForAnyValue:StringNotEquals"]["sagemaker:VpcSubnets"]
    assert len(subnets) == 2 and all("Workload" in output_of(s) for s in subnets)
    groups = denies["DenyJobsInOtherSecurityGroups"]["Condition"]["ForAnyValue:StringNotEquals"]["sagemaker:VpcSecurityGroupIds"]
    assert len(groups) == 1 and "WorkloadSecurityGroup" in output_of(groups[0])


@pytest.mark.parametrize("role", ["PipelineExecutionRole", "StudioUserRole"])
def test_jobs_must_encrypt_volumes_and_inter_node_traffic(sandbox, role):
    denies = {s["Sid"]: s for s in role_statements(sandbox.template_json("Foundation"), role) if s["Effect"] == "Deny"}
    jobs = {"sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob"}
    # Not tuning: no document says which of its request fields fills sagemaker:VolumeKmsKey (README, Security).
    assert set(denies["DenyJobsWithoutVolumeKey"]["Action"]) == jobs - {"sagemaker:CreateHyperParameterTuningJob"}
    assert denies["DenyJobsWithoutVolumeKey"]["Condition"] == {"Null": {"sagemaker:VolumeKmsKey": "true"}}
    assert set(denies["DenyJobsWithoutTrafficEncryption"]["Action"]) == jobs
    assert denies["DenyJobsWithoutTrafficEncryption"]["Condition"] == {"Bool": {"sagemaker:InterContainerTrafficEncryption": "false"}}


def test_job_role_reads_data_and_writes_artifacts_but_cannot_change_data(sandbox):
    t = sandbox.template_json("Foundation")
    statements = role_statements(t, "JobRole")
    assert bucket_arn(t, "DataBucket", objects=True) in allowed(statements, "s3:GetObject")
    assert bucket_arn(t, "DataBucket", objects=True) not in allowed(statements, "s3:PutObject")
    assert bucket_arn(t, "ModelBucket", objects=True) in allowed(statements, "s3:PutObject")
    assert bucket_arn(t, "ReportsBucket", objects=True) in allowed(statements, "s3:PutObject")
    assert bucket_arn(t, "CaptureBucket", objects=True) not in allowed(statements, "s3:GetObject")


def test_model_role_writes_capture_and_results_and_reads_artifacts_and_requests_only(sandbox):
    t = sandbox.template_json("Foundation")
    statements = role_statements(t, "ModelExecutionRole")

    def objects(bucket: str, prefix: str) -> dict:
        return {"Fn::Join": ["", [{"Fn::GetAtt": [logical_id(t, "AWS::S3::Bucket", bucket), "Arn"]}, f"/{prefix}*"]]}

    def key(resource: dict) -> str:
        return json.dumps(resource, sort_keys=True)

    assert sorted(map(key, allowed(statements, "s3:PutObject"))) == sorted(map(key, [
        objects("CaptureBucket", "data-capture/"),
        objects("DataBucket", "async-inference/output/"),
        objects("DataBucket", "async-inference/failures/"),
        objects("DataBucket", "batch-scoring/output/"),
    ]))  # fmt: skip
    assert sorted(map(key, allowed(statements, "s3:GetObject"))) == sorted(map(key, [
        objects("ModelBucket", "mlp-sandbox-model-build/*/model/"),
        objects("DataBucket", "async-inference/input/"),
        objects("DataBucket", "batch-scoring/input/"),
    ]))  # fmt: skip
    assert not allowed(statements, "s3:DeleteObject")


def test_roles_using_sagemaker_in_the_vpc_can_manage_only_this_vpcs_interfaces(sandbox):
    t = sandbox.template_json("Foundation")
    for role in ["JobRole", "ModelExecutionRole", "MultiModelRole", "MonitoringJobRole", "StudioUserRole", "StudioLeadRole"]:
        create = [s for s in role_statements(t, role) if "ec2:CreateNetworkInterface" in as_list(s["Action"])]
        by_resource = {r["Fn::Join"][1][-1]: s.get("Condition") for s in create for r in as_list(s["Resource"])}
        # ec2:Vpc exists on the subnet and security group CreateNetworkInterface checks, not on the new interface.
        assert sorted(by_resource) == [":network-interface/*", ":security-group/*", ":subnet/*"], role
        assert by_resource[":network-interface/*"] is None, role
        for kind in (":security-group/*", ":subnet/*"):
            assert "NetworkVpc" in str(by_resource[kind]["ArnEquals"]["ec2:Vpc"]), role
        (manage,) = [s for s in role_statements(t, role) if "ec2:DeleteNetworkInterface" in as_list(s["Action"])]
        assert "NetworkVpc" in str(manage["Condition"]["ArnEquals"]["ec2:Vpc"])
        assert manage["Resource"]["Fn::Join"][1][-1] == ":network-interface/*"


def test_encrypt_actions_are_explicit(sandbox):
    t = sandbox.template_json("Foundation")
    kms_actions = {a for s in role_statements(t, "JobRole") for a in as_list(s["Action"]) if a.startswith("kms:")}
    assert kms_actions == set(ENCRYPT_DECRYPT_ACTIONS) | {"kms:CreateGrant"}


def test_only_leads_may_approve_model_packages(sandbox):
    t = sandbox.template_json("Foundation")
    approve = allowed(role_statements(t, "StudioLeadRole"), "sagemaker:UpdateModelPackage")
    assert sorted(r["Fn::Join"][1][-1] for r in approve) == [
        ":model-package-group/mlp-sandbox-models", ":model-package/mlp-sandbox-models/*",
    ]  # fmt: skip
    for role in ROLES:
        if role != "StudioLeadRole":
            assert not allowed(role_statements(t, role), "sagemaker:UpdateModelPackage"), role
