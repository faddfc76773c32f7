"""Encryption: every data store and channel with the key that protects it; the keys, their rotation, who may use them."""

from __future__ import annotations

import json

from review.assembly import Assembly, Stack
from review.document import Para, Section, Table
from review.iam import condition_text

_USE_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt", "kms:CreateGrant", "kms:*")


def _key(assembly: Assembly, stack: Stack, value) -> str:
    return assembly.render(stack, value) if value else ""


def stores(assembly: Assembly) -> list[list[str]]:
    """``[resource, kind, encryption, key]`` of each data store and channel the app defines."""
    rows = []
    for stack, logical_id, resource in assembly.resources(
        "AWS::S3::Bucket", "AWS::SNS::Topic", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::SageMaker::Domain",
        "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Pipeline", "AWS::Lambda::Function", "AWS::SSM::Parameter",
        "AWS::SageMaker::MlflowTrackingServer", "AWS::StepFunctions::StateMachine",
    ):
        props = resource.get("Properties", {})
        name, kind = stack.key(logical_id), resource["Type"].split("::", 1)[1]
        if kind == "S3::Bucket":
            rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [{}])
            default = rules[0].get("ServerSideEncryptionByDefault", {})
            algorithm = default.get("SSEAlgorithm", "SSE-S3 (S3 default)")
            key = _key(assembly, stack, default.get("KMSMasterKeyID"))
            rows.append([name, kind, f"{algorithm}{', bucket key' if rules[0].get('BucketKeyEnabled') else ''}", key or "AWS owned"])
        elif kind in ("SNS::Topic", "SQS::Queue"):
            key = props.get("KmsMasterKeyId")
            rows.append([name, kind, "SSE-KMS" if key else "none", _key(assembly, stack, key)])
        elif kind == "Logs::LogGroup":
            key = props.get("KmsKeyId")
            rows.append([name, kind, "KMS" if key else "CloudWatch Logs default (AWS owned)", _key(assembly, stack, key)])
        elif kind == "SageMaker::Domain":
            rows.append([name, kind, "home EFS and Studio volumes", _key(assembly, stack, props.get("KmsKeyId")) or "AWS owned"])
        elif kind == "SageMaker::EndpointConfig":
            rows.append([name, kind, "instance volumes", _key(assembly, stack, props.get("KmsKeyId")) or "AWS owned"])
            capture = props.get("DataCaptureConfig")
            if capture:
                rows.append([f"{name} data capture", kind, "captured requests", _key(assembly, stack, capture.get("KmsKeyId")) or "bucket default"])
            async_config = props.get("AsyncInferenceConfig", {}).get("OutputConfig")
            if async_config:
                rows.append([f"{name} async output", kind, "responses", _key(assembly, stack, async_config.get("KmsKeyId")) or "bucket default"])
        elif kind == "SageMaker::Pipeline":
            _, values = _sub(props)
            body = _body(props)
            volume = "VolumeKmsKeyId" in body
            inter = "EnableInterContainerTrafficEncryption" in body
            keys = sorted({
                assembly.render(stack, v) for v in values.values()
                if (target := assembly.referenced_resource(stack, v)) and target[0].resources[target[1]]["Type"] == "AWS::KMS::Key"
            })
            rows.append([name, kind, f"job volumes and outputs{' + inter-container traffic' if inter else ''}" if volume else "jobs without a volume key", ", ".join(keys)])
        elif kind == "Lambda::Function":
            if props.get("Environment"):
                rows.append([name, kind, "environment variables", _key(assembly, stack, props.get("KmsKeyArn")) or "AWS owned"])
        elif kind == "SSM::Parameter":
            rows.append([name, kind, f"{props.get('Type')} (names and ids, no secrets)", ""])
        elif kind == "SageMaker::MlflowTrackingServer":
            rows.append([name, kind, "artifacts in the artifact store bucket", assembly.render(stack, props.get("ArtifactStoreUri", ""))])
        elif kind == "StepFunctions::StateMachine":
            config = props.get("EncryptionConfiguration", {})
            rows.append([name, kind, config.get("Type", "AWS owned"), _key(assembly, stack, config.get("KmsKeyId"))])
    return rows


def _sub(props: dict):
    body = props.get("PipelineDefinition", {}).get("PipelineDefinitionBody")
    if isinstance(body, dict) and "Fn::Sub" in body:
        return body["Fn::Sub"][0], body["Fn::Sub"][1]
    return (body if isinstance(body, str) else json.dumps(body)), {}


def _body(props: dict) -> str:
    return _sub(props)[0]


def tls_only(assembly: Assembly) -> list[list[str]]:
    rows = []
    for stack, _, policy in assembly.resources("AWS::S3::BucketPolicy"):
        text = json.dumps(policy["Properties"]["PolicyDocument"])
        rows.append([
            assembly.render(stack, policy["Properties"]["Bucket"]),
            "yes" if '"aws:SecureTransport": "false"' in text else "no",
            "TLS 1.2+" if "s3:TlsVersion" in text else "any TLS",
        ])
    return rows


def keys(assembly: Assembly) -> list[list[str]]:
    aliases = {}
    for stack, _, alias in assembly.resources("AWS::KMS::Alias"):
        target = assembly.referenced_resource(stack, alias["Properties"]["TargetKeyId"])
        if target:
            aliases.setdefault(target[0].key(target[1]), []).append(alias["Properties"]["AliasName"])
    rows = []
    for stack, logical_id, key in assembly.resources("AWS::KMS::Key"):
        props = key["Properties"]
        users, admins = set(), set()
        for statement in props.get("KeyPolicy", {}).get("Statement", []):
            if statement.get("Effect") != "Allow" or "Principal" not in statement:
                continue
            actions = statement.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            principal = statement["Principal"]
            names = [f"{kind}: {assembly.render(stack, v)}" for kind, vs in (principal.items() if isinstance(principal, dict) else [("AWS", principal)]) for v in (vs if isinstance(vs, list) else [vs])]
            via = condition_text(statement, assembly, stack)
            suffix = f" (if {via})" if via else ""
            if any(a.startswith(_USE_ACTIONS) for a in actions):
                users.update(f"{n}{suffix}" for n in names)
            else:
                admins.update(names)
        rotation = props.get("EnableKeyRotation", False)
        period = props.get("RotationPeriodInDays", 365 if rotation else None)
        rows.append([
            stack.key(logical_id),
            ", ".join(aliases.get(stack.key(logical_id), [])),
            f"every {period} days" if rotation else "no",
            "\n".join(sorted(users)),
            "\n".join(sorted(admins)),
        ])
    return rows


def section(assembly: Assembly) -> Section:
    sec = Section("Encryption")
    rows = stores(assembly)
    marked = {i for i, r in enumerate(rows) if r[2].startswith(("none", "CloudWatch Logs default", "jobs without")) or "AWS owned" in r[3]}
    sec.add(Para("Each data store and channel with its encryption and key; rows without a customer-managed key are highlighted."))
    sec.add(Table(["resource", "kind", "encryption", "key"], rows, marked=marked))
    transport = sec.sub("In transit")
    transport.add(Para("Bucket policies that deny requests without TLS (aws:SecureTransport) and below TLS 1.2 (s3:TlsVersion). "
                       "Calls from the VPC to AWS APIs go through interface endpoints (HTTPS)."))
    tls = tls_only(assembly)
    transport.add(Table(["bucket", "denies non-TLS", "minimum"], tls, marked={i for i, r in enumerate(tls) if r[1] == "no"}))
    key_sec = sec.sub("Keys")
    key_rows = keys(assembly)
    key_sec.add(Table(["key", "aliases", "rotation", "may use it", "may administer it"], key_rows, marked={i for i, r in enumerate(key_rows) if r[2] == "no"}))
    return sec
