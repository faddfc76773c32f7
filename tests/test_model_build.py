"""Model-build stack: registry, step-code assets, the embedded pipeline, schedule and notifications."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from ml_constructs.step_code import deterministic_tarball
from tests.conftest import load_json, pipeline_sub, resources_of, role_policies

STEPS = Path(__file__).resolve().parent.parent / "pipeline_code" / "steps"


def arn_tail(value) -> str:
    """The literal end of an ARN, whether CDK rendered it as a string or as an Fn::Join."""
    return value if isinstance(value, str) else value["Fn::Join"][1][-1]


def only(template_json: dict, resource_type: str) -> dict:
    (resource,) = resources_of(template_json, resource_type).values()
    return resource


def test_stack_and_builder_agree_on_the_framework_version():
    from pipeline_code import pipeline
    from stacks import model_build_stack

    assert model_build_stack.SKLEARN_VERSION == pipeline.SKLEARN_VERSION


def test_model_package_group_is_retained_and_private_in_the_sandbox(sandbox):
    group = only(sandbox.template_json("ModelBuild"), "AWS::SageMaker::ModelPackageGroup")
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert group["Properties"]["ModelPackageGroupName"] == "mlp-sandbox-models"
    assert "ModelPackageGroupPolicy" not in group["Properties"]


def test_registry_is_shared_with_the_configured_accounts(examples):
    group = only(examples["dev"].template_json("ModelBuild"), "AWS::SageMaker::ModelPackageGroup")
    statements = {s["Sid"]: s for s in group["Properties"]["ModelPackageGroupPolicy"]["Statement"]}
    principal = {"AWS": [{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::222222222222:root"]]}]}
    group_statement, package_statement = statements["SharedAccountsDescribeGroup"], statements["SharedAccountsUsePackages"]
    assert group_statement["Principal"] == package_statement["Principal"] == principal
    assert group_statement["Action"] == ["sagemaker:DescribeModelPackageGroup"]
    assert set(package_statement["Action"]) == {"sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:CreateModel"}
    assert package_statement["Resource"].endswith(":111111111111:model-package/mlp-dev-models/*")
    assert group_statement["Resource"].endswith(":111111111111:model-package-group/mlp-dev-models")


def test_step_code_ships_as_content_hashed_assets(sandbox):
    stack = sandbox.stage.model_build
    manifest = load_json(Path(sandbox.template_path("ModelBuild")).with_name(f"{stack.artifact_id}.assets.json"))
    packaging = sorted(Path(f["source"]["path"]).suffixes[-1] for f in manifest["files"].values() if "template" not in f["source"]["path"])
    assert packaging == [".gz", ".gz", ".gz"]  # preprocess, evaluate and training code tarballs
    for asset in manifest["files"].values():
        for destination in asset["destinations"].values():
            assert re.fullmatch(r"[0-9a-f]{64}\.(gz|json)", destination["objectKey"])
    for name, entry in (("preprocess", "preprocess.py"), ("evaluate", "evaluate.py")):
        path = Path(sandbox.template_path("ModelBuild")).parent / stack.code.processing[name].asset_path
        with tarfile.open(path, mode="r:gz") as tar:
            assert tar.getnames() == [entry, "stepkit.py"]  # the helper the entry point imports, beside it


def test_training_source_tarball_is_deterministic_and_holds_the_serving_code():
    files = [STEPS / "train.py", STEPS / "inference.py", STEPS / "stepkit.py"]
    first, second = deterministic_tarball(files), deterministic_tarball(list(reversed(files)))
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["inference.py", "stepkit.py", "train.py"]
        assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(0, 0, 0, 0o644)}
        assert tar.extractfile("train.py").read() == (STEPS / "train.py").read_bytes()
    assert first[4:8] == b"\0\0\0\0", "gzip header carries no timestamp"


def test_a_package_directory_goes_into_the_tarball_under_its_name():
    package = STEPS / "drift_check"
    with tarfile.open(fileobj=io.BytesIO(deterministic_tarball([package, STEPS / "stepkit.py"])), mode="r:gz") as tar:
        names = tar.getnames()
    expected = sorted(f"drift_check/{p.name}" for p in package.glob("*.py"))
    assert names == sorted(expected + ["stepkit.py"]) and "drift_check/__main__.py" in names


def test_pipeline_definition_is_embedded_with_every_placeholder_mapped(sandbox):
    pipeline = only(sandbox.template_json("ModelBuild"), "AWS::SageMaker::Pipeline")
    body, variables = pipeline_sub(sandbox.template_json("ModelBuild"))
    placeholders = set(re.findall(r"\$\{([^}]+)\}", body)) - {"AWS::AccountId", "AWS::Partition", "AWS::Region"}
    assert placeholders == set(variables)
    assert json.loads(body)["Steps"][0]["Name"] == "PreprocessData"
    assert pipeline["Properties"]["PipelineName"] == "mlp-sandbox-model-build"
    # Deploy-time values are tokens from the other stacks; only the content-hashed asset keys are literals.
    literals = {name for name, value in variables.items() if isinstance(value, str)}
    assert literals == {"PreprocessCodeKey", "EvaluateCodeKey", "TrainSourceKey"}
    assert all(re.fullmatch(r"[0-9a-f]{64}\.gz", variables[name]) for name in literals)
    assert variables["CodeBucket"] == {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}



def test_pipeline_runs_with_the_foundations_pipeline_role(sandbox):
    pipeline = only(sandbox.template_json("ModelBuild"), "AWS::SageMaker::Pipeline")
    assert "PipelineExecutionRole" in json.dumps(pipeline["Properties"]["RoleArn"])


def test_image_uri_comes_from_a_per_region_mapping(sandbox):
    t = sandbox.template_json("ModelBuild")
    (mapping,) = t["Mappings"].values()
    assert mapping["eu-west-1"] == {"account": "141502667606"}
    assert mapping["us-east-1"] == {"account": "683313688378"}
    _, variables = pipeline_sub(t)
    uri = json.dumps(variables["SklearnImageUri"])
    assert "Fn::FindInMap" in uri and "sagemaker-scikit-learn:1.2-1-cpu-py3" in uri


def test_no_schedule_unless_configured(sandbox, examples):
    assert not resources_of(sandbox.template_json("ModelBuild"), "AWS::Scheduler::Schedule")
    schedule = only(examples["dev"].template_json("ModelBuild"), "AWS::Scheduler::Schedule")["Properties"]
    assert schedule["ScheduleExpression"] == "cron(0 3 ? * MON *)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert arn_tail(target["Arn"]).endswith(":pipeline/mlp-dev-model-build")
    assert "SchedulerRole" in json.dumps(target["RoleArn"])
    assert target["SageMakerPipelineParameters"] == {"PipelineParameterList": []}


def test_execution_outcomes_go_to_an_encrypted_topic(examples):
    t = examples["dev"].template_json("ModelBuild")
    topic = only(t, "AWS::SNS::Topic")["Properties"]
    key_id = next(iter(resources_of(t, "AWS::KMS::Key")))
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    rule = only(t, "AWS::Events::Rule")["Properties"]
    assert rule["EventPattern"]["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    assert rule["EventPattern"]["detail"]["currentPipelineExecutionStatus"] == ["Failed", "Succeeded"]
    assert arn_tail(rule["EventPattern"]["detail"]["pipelineArn"][0]).endswith(":pipeline/mlp-dev-model-build")
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": next(iter(resources_of(t, "AWS::SNS::Topic")))}
    key_policy = only(t, "AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]
    events = [s for s in key_policy if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert len(events) == 1 and set(events[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    subscription = only(t, "AWS::SNS::Subscription")["Properties"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ml-platform@example.com")
    policy = only(t, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def policies_for(template_json: dict, role_fragment: str) -> list[dict]:
    return [
        s
        for p in role_policies(template_json)
        if role_fragment in json.dumps(p["Properties"].get("Roles", []))
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_job_role_reads_exactly_the_step_code_and_the_model_role_none(sandbox):
    assert not policies_for(sandbox.template_json("ModelBuild"), "ModelExecutionRole")
    statements = policies_for(sandbox.template_json("ModelBuild"), "JobRole")
    gets = [s for s in statements if s["Action"] == "s3:GetObject"]
    (get,) = gets
    keys = sorted(r["Fn::Join"][1][-1] for r in get["Resource"])
    assert len(keys) == 3 and all(re.fullmatch(r"/[0-9a-f]{64}\.(py|gz)", k) for k in keys)
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert len(listing["Condition"]["StringEquals"]["s3:prefix"]) == 3


def test_pipeline_role_may_register_in_its_group_only(sandbox):
    statements = policies_for(sandbox.template_json("ModelBuild"), "PipelineExecutionRole")
    (register,) = [s for s in statements if s["Effect"] == "Allow" and "sagemaker:CreateModelPackage" in s["Action"]]
    resources = [r["Fn::Join"][1][-1] for r in register["Resource"]]
    assert resources == [":model-package-group/mlp-sandbox-models", ":model-package/mlp-sandbox-models/*"]


def test_starting_a_pipeline_cannot_skip_manual_approval(sandbox, examples):
    """ModelApprovalStatus is a run-time parameter; the role refuses anything but pending approval."""
    statements = policies_for(sandbox.template_json("ModelBuild"), "PipelineExecutionRole")
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert set(deny["Action"]) == {"sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage"}
    assert deny["Condition"] == {"StringNotEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}
    assert arn_tail(deny["Resource"]).endswith(":model-package/mlp-sandbox-models/*")


def test_training_mode_from_config_reaches_the_deployed_definition(examples):
    body, _ = pipeline_sub(examples["prod"].template_json("ModelBuild"))
    steps = [s["Name"] for s in json.loads(body)["Steps"]]
    assert steps == ["PreprocessData", "TuneModel", "EvaluateModel", "CheckAccuracy"]


def test_deployed_body_is_the_validated_builder_output(sandbox):
    """The template embeds exactly what tests/test_pipeline_definition.py checks against the SageMaker API."""
    from config import load_config
    from pipeline_code.definitions.model_build import build_definition

    body, _ = pipeline_sub(sandbox.template_json("ModelBuild"))
    assert body == build_definition(
        pipeline_name="mlp-sandbox-model-build",
        model_package_group_name="mlp-sandbox-models",
        settings=load_config().pipeline,
        subnet_count=2,
    )


def test_shared_accounts_can_fetch_the_artifacts_registered_packages_point_to(examples):
    t = examples["dev"].template_json("Foundation")
    bucket_id = next(k for k in resources_of(t, "AWS::S3::Bucket") if k.startswith("ModelBucket"))
    policy = next(p for p in resources_of(t, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket_id})
    (shared,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "SharedAccountsRead"]
    assert json.dumps(shared["Principal"]).count("222222222222") == 1
    assert shared["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    # What packages point to: model artifacts (endpoints) and the feature profile (drift checks), not the data.
    assert sorted(r["Fn::Join"][1][-1] for r in shared["Resource"]) == ["/mlp-dev-model-build/*/baseline/*", "/mlp-dev-model-build/*/model/*"]
    key_id = next(k for k in resources_of(t, "AWS::KMS::Key") if k.startswith("ModelsKey"))
    statements = resources_of(t, "AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"]["Statement"]
    (decrypt,) = [s for s in statements if s.get("Sid") == "SharedAccountsDecryptViaS3"]
    assert decrypt["Action"] == ["kms:Decrypt", "kms:DescribeKey"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}


def test_nothing_is_shared_when_no_account_is_configured(sandbox):
    t = sandbox.template_json("Foundation")
    assert "SharedAccounts" not in json.dumps(t)


def test_a_tampered_staged_tarball_is_replaced(tmp_path):
    from ml_constructs import step_code

    tarball = deterministic_tarball([STEPS / "train.py", STEPS / "inference.py"])
    staged = step_code._stage(tarball)
    staged.write_bytes(b"planted")
    assert step_code._stage(tarball) == staged
    assert staged.read_bytes() == tarball


def test_pre_approved_registration_is_an_explicit_choice():
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk.assertions import Template

    from ml_constructs.model_registry import ModelRegistry

    stack = cdk.Stack(cdk.App(), "S")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    ModelRegistry(stack, "Registry", group_name="g", description="d").grant_register(role, allow_pre_approved=True)
    assert '"Deny"' not in json.dumps(Template.from_stack(stack).to_json())


def test_definition_cache_reuses_identical_builds_only(tmp_path, monkeypatch):
    from config.schema import PipelineConfig
    from pipeline_code.definitions import model_build as definitions

    def build(settings=PipelineConfig()):
        return definitions.cached_definition(
            cache_dir=tmp_path, pipeline_name="mlp-x-model-build", model_package_group_name="mlp-x-models",
            settings=settings, subnet_count=2,
        )  # fmt: skip

    first = build()
    assert len(list(tmp_path.glob("*.json"))) == 1
    real_build = definitions.build_definition
    monkeypatch.setattr(definitions, "build_definition", lambda **_: pytest.fail("a cache hit must not rebuild"))
    assert build() == first
    monkeypatch.setattr(definitions, "build_definition", real_build)
    other = build(PipelineConfig(accuracy_threshold=0.9))
    assert other != first and len(list(tmp_path.glob("*.json"))) == 2
    assert definitions.cached_definition(
        cache_dir=None, pipeline_name="mlp-x-model-build", model_package_group_name="mlp-x-models",
        settings=PipelineConfig(), subnet_count=2,
    ) == first  # fmt: skip


def test_a_change_to_any_builder_source_invalidates_the_cached_definitions(tmp_path):
    from pipeline_code.definitions import batch_scoring, cache, drift_check, model_build

    builder = tmp_path / "builder.py"
    builder.write_text("first")
    first = cache.cache_key(arguments={"pipeline_name": "p"}, sources=[builder])
    builder.write_text("second")
    assert cache.cache_key(arguments={"pipeline_name": "p"}, sources=[builder]) != first
    code = Path(cache.__file__).resolve().parent.parent
    assert {code / "pipeline.py", code / "definitions" / "cache.py"} <= set(cache.SHARED_SOURCES)
    for module, pipeline_module in ((model_build, None), (batch_scoring, "batch_pipeline.py"), (drift_check, "drift_pipeline.py")):
        sources = set(module._BUILDER_SOURCES)
        assert Path(module.__file__).resolve() in sources
        assert pipeline_module is None or code / pipeline_module in sources
