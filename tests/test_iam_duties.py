"""Each duty's calls are allowed: every role's documented API calls, evaluated against the role's
synthesized policies from every stack (tests/iam_eval.py), and the evaluator's own tests."""

from __future__ import annotations

import json

import pytest

from ml_constructs.studio_domain import CLEANUP_ROLE_CALLS
from stacks.foundation_stack import ROLE_CALLS, TUNING_JOB, VPC_JOB
from tests.iam_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, Resolver, collect_role_policies, condition_holds, evaluate, resolver_for

# -- the evaluator ---------------------------------------------------------------------------------


def allow(action, resource, condition=None, effect="Allow") -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource, **({"Condition": condition} if condition else {})}


def test_allow_needs_a_matching_action_and_resource_with_wildcards():
    policy = [allow(["s3:Get*"], "arn:aws:s3:::bucket/data/*"), allow("sagemaker:describe?ipeline", "*")]
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::bucket/data/x.csv")) == ALLOW
    assert evaluate(policy, Request("S3:getobject", "arn:aws:s3:::bucket/data/x.csv")) == ALLOW  # actions ignore case
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::bucket/other/x.csv")) == IMPLICIT_DENY
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::BUCKET/data/x.csv")) == IMPLICIT_DENY  # resources do not
    assert evaluate(policy, Request("s3:PutObject", "arn:aws:s3:::bucket/data/x.csv")) == IMPLICIT_DENY
    assert evaluate(policy, Request("sagemaker:DescribePipeline", "arn:x")) == ALLOW


def test_an_explicit_deny_wins_and_not_elements_invert():
    policy = [allow("s3:*", "*"), allow("s3:DeleteObject", "*", effect="Deny")]
    assert evaluate(policy, Request("s3:DeleteObject", "arn:aws:s3:::b/k")) == EXPLICIT_DENY
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/k")) == ALLOW
    not_action = [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"}]
    assert evaluate(not_action, Request("s3:GetObject", "arn:aws:s3:::b/k")) == ALLOW
    assert evaluate(not_action, Request("iam:PassRole", "arn:aws:iam::1:role/r")) == IMPLICIT_DENY
    assert evaluate(not_action, Request("s3:GetObject", "arn:aws:s3:::secret/k")) == IMPLICIT_DENY


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("StringEquals", ["a", "b"], {"k": "b"}, True),
        ("StringEquals", "a", {"k": "A"}, False),
        ("StringEquals", "a", {}, False),
        ("StringNotEquals", "a", {"k": "b"}, True),
        ("StringNotEquals", "a", {}, True),  # a missing key satisfies a negated operator
        ("StringLike", "/aws/sagemaker/*", {"k": "/aws/sagemaker/TrainingJobs"}, True),
        ("StringLike", "/aws/sagemaker/*", {"k": "AWS/SageMaker"}, False),
        ("StringEqualsIfExists", "a", {}, True),
        ("ArnEquals", "arn:aws:ec2:r:1:vpc/vpc-1", {"k": "arn:aws:ec2:r:1:vpc/vpc-1"}, True),
        ("ArnLike", "arn:aws:logs:r:1:log-group:/x/*", {"k": "arn:aws:logs:r:1:log-group:/y/z"}, False),
        ("Bool", "true", {"k": True}, True),
        ("Bool", "false", {"k": "true"}, False),
        ("Null", "true", {}, True),
        ("Null", "true", {"k": "x"}, False),
        ("Null", "false", {"k": "x"}, True),
        ("ForAnyValue:StringNotEquals", ["s-1", "s-2"], {"k": ["s-1", "s-3"]}, True),
        ("ForAnyValue:StringNotEquals", ["s-1", "s-2"], {"k": ["s-2", "s-1"]}, False),
        ("ForAnyValue:StringNotEquals", ["s-1"], {}, False),
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a"]}, True),
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a", "c"]}, False),
        ("ForAllValues:StringEquals", ["a"], {}, True),
        ("ForAnyValue:StringEquals", "kms.eu-west-1.amazonaws.com", {"k": "kms.eu-west-1.amazonaws.com"}, True),
    ],
)
def test_condition_operators(operator, values, context, expected):
    assert condition_holds(operator, "k", values, context) is expected
    assert condition_holds(operator, "K", values, context) is expected  # keys ignore case


def test_unknown_operators_and_multivalued_keys_without_a_qualifier_are_refused():
    with pytest.raises(ValueError, match="not modelled"):
        condition_holds("NumericLessThan", "k", "1", {"k": "0"})
    with pytest.raises(ValueError, match="ForAnyValue"):
        condition_holds("StringEquals", "k", "a", {"k": ["a"]})


def test_the_old_vpc_statement_denies_every_interface_the_new_ones_allow():
    vpc = "arn:aws:ec2:eu-west-1:1:vpc/vpc-1"
    old = [allow("ec2:CreateNetworkInterface", "*", {"ArnEquals": {"ec2:Vpc": vpc}})]
    interface = Request("ec2:CreateNetworkInterface", "arn:aws:ec2:eu-west-1:1:network-interface/eni-1")
    assert evaluate(old, interface) == IMPLICIT_DENY  # the interface carries no ec2:Vpc
    new = [allow("ec2:CreateNetworkInterface", "arn:aws:ec2:eu-west-1:1:network-interface/*")]
    assert evaluate(new, interface) == ALLOW


def test_the_resolver_follows_cross_stack_outputs_joins_and_subs():
    templates = {
        "A": {
            "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}, "Key": {"Type": "AWS::KMS::Key"}},
            "Outputs": {"KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "key-arn"}}},
        },
        "B": {"Resources": {}},
    }
    resolver = Resolver(templates, account="123456789012", region="eu-west-1")
    bucket = resolver.resolve("A", {"Ref": "Bucket"})
    assert bucket.startswith("a-bucket-") and len(bucket) == len("a-bucket-abcdefghijkl") and bucket == bucket.lower()
    key_arn = resolver.resolve("B", {"Fn::GetStackOutput": {"StackName": "A", "OutputName": "KeyArn", "Region": {"Ref": "AWS::Region"}}})
    assert key_arn.startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    assert resolver.resolve("B", {"Fn::ImportValue": "key-arn"}) == key_arn
    joined = resolver.resolve("A", {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Ref": "Bucket"}, "/*"]]})
    assert joined == f"arn:aws:s3:::{bucket}/*"
    assert resolver.resolve("A", {"Fn::Sub": "${Bucket}-${AWS::Region}"}) == f"{bucket}-eu-west-1"
    with pytest.raises(ValueError):
        resolver.resolve("A", {"Fn::If": ["C", 1, 2]})


# -- the duties --------------------------------------------------------------------------------


def _first(template: dict, resource_type: str, prefix: str) -> str:
    return next(k for k, v in template["Resources"].items() if v["Type"] == resource_type and k.startswith(prefix))


def environment_values(synth, resolver: Resolver) -> tuple[dict, set[str]]:
    """The placeholders of the duty tables, filled from the synthesized stacks, and the features present."""
    stacks = {s.node.id: s.stack_name for s in synth.stage.stacks}
    t = {sid: resolver.templates[name] for sid, name in stacks.items()}

    def value(stack_id: str, expression) -> str:
        return resolver.resolve(stacks[stack_id], expression)

    def ref(stack_id: str, resource_type: str, prefix: str) -> str:
        return value(stack_id, {"Ref": _first(t[stack_id], resource_type, prefix)})

    def arn(stack_id: str, resource_type: str, prefix: str) -> str:
        return value(stack_id, {"Fn::GetAtt": [_first(t[stack_id], resource_type, prefix), "Arn"]})

    def substitutions(stack_id: str, prefix: str) -> dict:
        pipeline = t[stack_id]["Resources"][_first(t[stack_id], "AWS::SageMaker::Pipeline", prefix)]["Properties"]
        return value(stack_id, pipeline["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][1])

    def repository(image_uri: str) -> str:
        registry, _, name = image_uri.partition("/")
        return f"arn:aws:ecr:{resolver.region}:{registry.split('.')[0]}:repository/{name.split(':')[0]}"

    build = substitutions("ModelBuild", "Pipeline")
    vpc = ref("Network", "AWS::EC2::VPC", "NetworkVpc")
    values = {
        "region": resolver.region,
        "account": resolver.account,
        "prefix": f"mlp-{synth.stage.node.id.removeprefix('MlPlatform-')}",
        "data_bucket": ref("Foundation", "AWS::S3::Bucket", "DataBucket"),
        "model_bucket": ref("Foundation", "AWS::S3::Bucket", "ModelBucket"),
        "capture_bucket": ref("Foundation", "AWS::S3::Bucket", "CaptureBucket"),
        "reports_bucket": ref("Foundation", "AWS::S3::Bucket", "ReportsBucket"),
        "data_key": arn("Foundation", "AWS::KMS::Key", "DataKey"),
        "models_key": arn("Foundation", "AWS::KMS::Key", "ModelsKey"),
        "studio_key": arn("Foundation", "AWS::KMS::Key", "StudioKey"),
        "job_role": arn("Foundation", "AWS::IAM::Role", "JobRole"),
        "monitoring_role": arn("Foundation", "AWS::IAM::Role", "MonitoringJobRole"),
        "vpc_arn": f"arn:aws:ec2:{resolver.region}:{resolver.account}:vpc/{vpc}",
        "subnet_ids": [value("Network", {"Ref": k}) for k, v in t["Network"]["Resources"].items() if v["Type"] == "AWS::EC2::Subnet" and "Workload" in k],
        "security_group": value("Network", {"Fn::GetAtt": [_first(t["Network"], "AWS::EC2::SecurityGroup", "NetworkWorkloadSecurityGroup"), "GroupId"]}),
        "code_bucket": build["CodeBucket"],
        "preprocess_code_key": build["PreprocessCodeKey"],
        "sklearn_repository": repository(build["SklearnImageUri"]),
        "drift_namespace": "MlPlatform/Drift",
    }
    values["subnet"] = values["subnet_ids"][0]
    features = {"tuning"}  # the role of every environment may run tuning, whatever the default mode
    studio = t.get("Studio", {"Resources": {}})
    if any(v["Type"] == "AWS::SageMaker::MlflowTrackingServer" for v in studio["Resources"].values()):
        features.add("mlflow")
    if "Studio" in t:
        values["domain_id"] = value("Studio", {"Fn::GetAtt": [_first(studio, "AWS::SageMaker::Domain", "Domain"), "DomainId"]})
        values["cleanup_log_group"] = arn("Studio", "AWS::Logs::LogGroup", "DomainCleanupLogs").removesuffix(":*")
    serving = t.get("Serving")
    if serving:
        features.add("serving")
        (values["package_arn"],) = {
            c["ModelPackageName"] for r in serving["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"
            for c in r["Properties"]["Containers"] if "ModelPackageName" in c
        }  # fmt: skip
        kinds = {k for k in serving["Resources"]}
        if any(k.startswith("MultiModelEndpoint") for k in kinds):
            features.add("multi_model")
            model = serving["Resources"][_first(serving, "AWS::SageMaker::Model", "MultiModel")]["Properties"]
            submit = value("Serving", model["Containers"][0]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"])
            values["multi_model_handlers_key"] = submit.split("/", 3)[3]
        if any(k.startswith("AsyncEndpoint") for k in kinds):
            features.add("async")
            values["async_topic"] = ref("Serving", "AWS::SNS::Topic", "AsyncNotifications")
            values["async_topic_key"] = arn("Serving", "AWS::KMS::Key", "AsyncNotificationsKey")
        if any(k.startswith("BatchScoring") for k in kinds):
            features.add("batch")
        if any(v["Type"] == "AWS::SageMaker::MonitoringSchedule" for v in serving["Resources"].values()):
            features.add("model_monitor")
            registry = resolver.resolve(stacks["Serving"], serving["Resources"][_first(serving, "AWS::SageMaker::DataQualityJobDefinition", "DataQualityJob")]["Properties"]["DataQualityAppSpecification"]["ImageUri"])
            values["model_monitor_repository"] = repository(registry)
    monitoring = t.get("Monitoring", {"Resources": {}})
    if any(k.startswith("DriftCheck") and v["Type"] == "AWS::SageMaker::Pipeline" for k, v in monitoring["Resources"].items()):
        features.add("drift_check")
        values["drift_code_key"] = substitutions("Monitoring", "DriftCheck")["DriftCheckCodeKey"]
    return values, features


def _fill(value, values: dict):
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in values:
            return values[value[1:-1]]  # keeps lists (subnet ids) whole
        return value.format(**values)
    return value


def role_duties(synth) -> list[tuple[str, list[dict], list]]:
    """(role, its resolved statements, the calls of its duty that apply here) for every role with a duty table."""
    resolver = resolver_for(synth)
    values, features = environment_values(synth, resolver)
    roles = collect_role_policies(resolver)
    tables = {**ROLE_CALLS, "DomainCleanupRole": CLEANUP_ROLE_CALLS}
    duties = []
    for role in roles.values():
        name = next((n for n in tables if role.logical_id.startswith(n) and not role.logical_id[len(n)].islower()), None)
        if name is None:
            continue
        calls = [
            Request(c.action, _fill(c.resource, values), {k: _fill(v, values) for k, v in (c.context or {}).items()})
            for c in tables[name]
            if c.feature is None or c.feature in features
        ]
        duties.append((name, role.statements, calls))
    return duties


@pytest.mark.parametrize("synth", ["serving", "model_monitor"])
def test_every_duty_call_of_every_role_is_allowed(synth, request):
    duties = role_duties(request.getfixturevalue(synth))
    assert {name for name, _, _ in duties} >= {*ROLE_CALLS, "DomainCleanupRole"} - {"MultiModelRole"}
    failures = [
        f"{name}: {call.action} on {call.resource} {json.dumps(call.context)} -> {evaluate(statements, call)}"
        for name, statements, calls in duties
        for call in calls
        if evaluate(statements, call) != ALLOW
    ]
    assert failures == [], "\n".join(failures)


def test_the_tables_cover_the_features_of_the_environments(serving, model_monitor):
    _, sandbox_features = environment_values(serving, resolver_for(serving))
    _, dev_features = environment_values(model_monitor, resolver_for(model_monitor))
    assert sandbox_features | dev_features >= {"mlflow", "serving", "multi_model", "async", "batch", "drift_check", "model_monitor", "tuning"}


def test_a_tuning_request_without_a_volume_key_is_allowed_and_a_job_outside_the_vpc_denied(serving):
    (pipeline,) = [(s, calls) for name, s, calls in role_duties(serving) if name == "PipelineExecutionRole"]
    statements, calls = pipeline
    tune = next(c for c in calls if c.action == "sagemaker:CreateHyperParameterTuningJob")
    assert "sagemaker:VolumeKmsKey" not in tune.context and evaluate(statements, tune) == ALLOW
    train = next(c for c in calls if c.action == "sagemaker:CreateTrainingJob")
    assert evaluate(statements, train) == ALLOW
    outside = Request(train.action, train.resource, {k: v for k, v in train.context.items() if k != "sagemaker:VpcSubnets"})
    assert evaluate(statements, outside) == EXPLICIT_DENY
    other_subnet = Request(train.action, train.resource, {**train.context, "sagemaker:VpcSubnets": ["subnet-0ther"]})
    assert evaluate(statements, other_subnet) == EXPLICIT_DENY
    no_key = Request(train.action, train.resource, {k: v for k, v in train.context.items() if k != "sagemaker:VolumeKmsKey"})
    assert evaluate(statements, no_key) == EXPLICIT_DENY
    assert set(VPC_JOB) - set(TUNING_JOB) == {"sagemaker:VolumeKmsKey"}


def test_every_tuning_step_encrypts_its_volumes_with_the_platform_key():
    from config.schema import TuningConfig
    from tests.test_pipeline_definition import all_steps, build

    definition = json.loads(build(training_mode="tune", tuning=TuningConfig()))
    tuning = [s for s in all_steps(definition["Steps"]).values() if s["Type"] == "Tuning"]
    assert tuning
    for step in tuning:
        job = step["Arguments"]["TrainingJobDefinition"]
        config = job.get("HyperParameterTuningResourceConfig") or job["ResourceConfig"]
        assert config["VolumeKmsKeyId"] == "${VolumeKmsKeyArn}"
