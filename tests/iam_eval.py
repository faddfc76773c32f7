"""A small IAM evaluator for the tests: synthesized templates resolved to example values, and a role's
identity policies evaluated for one API call.

What it models (and nothing more): explicit deny over allow over implicit deny; Action/NotAction,
Resource/NotResource with ``*``/``?`` wildcards; the condition operators the platform writes
(String[Not]Equals, String[Not]Like, Arn[Not]Equals, Arn[Not]Like, Null, Bool, each with ``IfExists`` and
the ``ForAnyValue:``/``ForAllValues:`` set qualifiers). Anything else raises, so an operator the
platform starts using cannot be silently misread. Resource policies (bucket, key) are not evaluated:
the calls checked here are same-account, where an identity-policy allow suffices except for KMS, whose
key policies the platform writes from the same grants.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"

# -- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One authorization: an action on one resource, with the condition keys the request carries."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _bool_equals(policy: str, value) -> bool:
    text = str(value).lower() if not isinstance(value, str) else value.lower()
    return str(policy).lower() == text


# Base operator -> (compare one policy value with one request value, negated)
_OPERATORS = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringLike": (_glob, False),
    "StringNotLike": (_glob, True),
    "ArnEquals": (_glob, False),
    "ArnLike": (_glob, False),
    "ArnNotEquals": (_glob, True),
    "ArnNotLike": (_glob, True),
    "Bool": (_bool_equals, False),
}


def _lookup(context: dict, key: str) -> tuple[bool, Any]:
    """Condition keys are case-insensitive."""
    for name, value in context.items():
        if name.lower() == key.lower():
            return True, value
    return False, None


def condition_holds(operator: str, key: str, policy_values, context: dict) -> bool:
    """One ``operator: {key: policy_values}`` entry of a Condition block."""
    present, value = _lookup(context, key)
    if operator == "Null":
        (expected,) = _as_list(policy_values)
        return (not present) == (str(expected).lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise ValueError(f"condition operator {operator!r} is not modelled by this evaluator")
    compare, negated = _OPERATORS[base]
    policy_values = [str(v) if not isinstance(v, str) else v for v in _as_list(policy_values)]

    def matches(one) -> bool:
        hit = any(compare(p, one) for p in policy_values)
        return not hit if negated else hit

    if qualifier == "ForAnyValue":
        return present and any(matches(v) for v in _as_list(value))
    if qualifier == "ForAllValues":
        return not present or all(matches(v) for v in _as_list(value))
    if not present:
        # A missing key matches nothing: positive operators fail, negated ones hold.
        return if_exists or negated
    if isinstance(value, list):
        raise ValueError(f"{operator} on multivalued key {key!r} needs ForAnyValue/ForAllValues")
    return matches(value)


def statement_applies(statement: dict, request: Request) -> bool:
    if "Action" in statement:
        action_ok = any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["Action"]))
    else:
        action_ok = not any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["NotAction"]))
    if not action_ok:
        return False
    if "Resource" in statement:
        resource_ok = any(_glob(r, request.resource) for r in _as_list(statement["Resource"]))
    else:
        resource_ok = not any(_glob(r, request.resource) for r in _as_list(statement["NotResource"]))
    if not resource_ok:
        return False
    return all(
        condition_holds(operator, key, values, request.context)
        for operator, entries in statement.get("Condition", {}).items()
        for key, values in entries.items()
    )


def evaluate(statements: list[dict], request: Request) -> str:
    """``Allow``, ``ExplicitDeny`` or ``ImplicitDeny`` for ``request`` under identity ``statements``."""
    applying = [s for s in statements if statement_applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return EXPLICIT_DENY
    if any(s["Effect"] == "Allow" for s in applying):
        return ALLOW
    return IMPLICIT_DENY


# -- templates resolved to example values ----------------------------------------------------

EXAMPLE_ACCOUNT = "111111111111"
EXAMPLE_REGION = "eu-west-1"
# CloudFormation's generated names end in a 12-character random suffix (13 with the dash).
_SUFFIX = "-ABCDEFGHIJKL"


def _digits(stack: str, logical_id: str) -> str:
    """17 hex digits, stable for one resource: distinct resources get distinct ids."""
    return hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:17]


def _generated_name(stack: str, logical_id: str, limit: int) -> str:
    """A physical name as CloudFormation generates it: as long as the limit allows (the worst case)."""
    room = limit - len(_SUFFIX)
    head = f"{stack}-{logical_id}"
    return head[:room] + _SUFFIX


class Resolver:
    """Resolve the intrinsic functions of a set of templates (one environment) to concrete example values.

    :param templates: template of each stack, by stack name.
    :param account: the environment's account (example one when account-agnostic).
    :param region: the environment's region.
    """

    def __init__(self, templates: dict[str, dict], *, account: str = EXAMPLE_ACCOUNT, region: str = EXAMPLE_REGION) -> None:
        self.templates = templates
        self.account, self.region, self.partition = account, region, "aws"

    def resolve(self, stack: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {k: self.resolve(stack, v) for k, v in value.items()}
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return self._ref(stack, arg)
        if fn == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._get_att(stack, logical_id, attribute)
        if fn == "Fn::Join":
            separator, parts = arg
            return separator.join(str(p) for p in self.resolve(stack, parts))
        if fn == "Fn::Select":
            index, items = self.resolve(stack, arg)
            return items[int(index)]
        if fn == "Fn::Split":
            separator, text = self.resolve(stack, arg)
            return text.split(separator)
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            variables = self.resolve(stack, variables)
            return re.sub(
                r"\$\{([^}!][^}]*)\}",
                lambda m: str(variables[m.group(1)] if m.group(1) in variables else self._sub_name(stack, m.group(1))),
                text,
            )
        if fn == "Fn::GetStackOutput":
            return self._output(self.resolve(stack, arg["StackName"]), arg["OutputName"])
        if fn == "Fn::ImportValue":
            return self._import(self.resolve(stack, arg))
        if fn == "Fn::FindInMap":
            name, top, second = self.resolve(stack, arg)
            return self.templates[stack]["Mappings"][name][top][second]
        raise ValueError(f"{fn} is not resolved by the test resolver")

    def _sub_name(self, stack: str, name: str) -> Any:
        return self._get_att(stack, *name.split(".", 1)) if "." in name else self._ref(stack, name)

    def _output(self, stack: str, output: str) -> Any:
        return self.resolve(stack, self.templates[stack]["Outputs"][output]["Value"])

    def _import(self, export: str) -> Any:
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                if "Export" in output and self.resolve(stack, output["Export"]["Name"]) == export:
                    return self.resolve(stack, output["Value"])
        raise KeyError(f"no stack exports {export!r}")

    def _ref(self, stack: str, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        template = self.templates[stack]
        if name in template.get("Parameters", {}):
            return template["Parameters"][name].get("Default", f"{name}-value")
        resource_type = template["Resources"][name]["Type"]
        props = template["Resources"][name].get("Properties", {})
        return self._physical_id(stack, name, resource_type, props)

    def _physical_id(self, stack: str, logical_id: str, resource_type: str, props: dict) -> str:
        named = {
            "AWS::IAM::Role": ("RoleName", 64),
            "AWS::S3::Bucket": ("BucketName", 63),
            "AWS::Lambda::Function": ("FunctionName", 64),
            "AWS::Logs::LogGroup": ("LogGroupName", 512),
            "AWS::SageMaker::Pipeline": ("PipelineName", 256),
            "AWS::SageMaker::ModelPackageGroup": ("ModelPackageGroupName", 63),
            "AWS::SageMaker::Model": ("ModelName", 63),
            "AWS::SageMaker::Endpoint": ("EndpointName", 63),
            "AWS::SageMaker::EndpointConfig": ("EndpointConfigName", 63),
        }
        if resource_type in named:
            prop, limit = named[resource_type]
            if prop in props:
                return self.resolve(stack, props[prop])
            name = _generated_name(stack, logical_id, limit)
            return name.lower() if resource_type == "AWS::S3::Bucket" else name
        digits = _digits(stack, logical_id)
        ids = {
            "AWS::EC2::VPC": f"vpc-{digits}",
            "AWS::EC2::Subnet": f"subnet-{digits}",
            "AWS::EC2::SecurityGroup": f"sg-{digits}",
            "AWS::KMS::Key": f"{digits[:8]}-{digits[8:12]}-4{digits[12:15]}-8{digits[15:17]}0-{digits[:12]}",
            "AWS::SNS::Topic": f"arn:aws:sns:{self.region}:{self.account}:{_generated_name(stack, logical_id, 256)}",
            "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{self.account}:policy/{_generated_name(stack, logical_id, 128)}",
        }
        return ids.get(resource_type, _generated_name(stack, logical_id, 128))

    def _get_att(self, stack: str, logical_id: str, attribute: str) -> Any:
        resource = self.templates[stack]["Resources"][logical_id]
        resource_type, props = resource["Type"], resource.get("Properties", {})
        ref = self._ref(stack, logical_id)
        arns = {
            "AWS::IAM::Role": f"arn:aws:iam::{self.account}:role/{ref}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{ref}",
            "AWS::KMS::Key": f"arn:aws:kms:{self.region}:{self.account}:key/{ref}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{self.region}:{self.account}:function:{ref}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{self.region}:{self.account}:log-group:{ref}:*",
            "AWS::SNS::Topic": ref,
            "AWS::SQS::Queue": f"arn:aws:sqs:{self.region}:{self.account}:{logical_id}",
        }
        if resource_type == "AWS::SageMaker::Domain":
            domain_id = "d-" + _digits(stack, logical_id)[:12]
            return {
                "DomainId": domain_id,
                "DomainArn": f"arn:aws:sagemaker:{self.region}:{self.account}:domain/{domain_id}",
                "Url": f"https://{domain_id}.studio.{self.region}.sagemaker.aws",
                "HomeEfsFileSystemId": "fs-0123456789abcdef0",
                "SecurityGroupIdForDomainBoundary": "sg-0d0d0d0d0d0d0d0d0",
            }[attribute]
        if resource_type == "AWS::SageMaker::MlflowTrackingServer" and attribute == "TrackingServerArn":
            name = self.resolve(stack, props["TrackingServerName"])
            return f"arn:aws:sagemaker:{self.region}:{self.account}:mlflow-tracking-server/{name}"
        if resource_type.startswith("AWS::SageMaker::") and attribute.endswith("Arn"):
            kind = re.sub(r"(?<!^)(?=[A-Z])", "-", resource_type.split("::")[2]).lower()
            return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{str(ref).lower()}"
        if attribute == "Arn" and resource_type in arns:
            return arns[resource_type]
        if attribute == "GroupId" and resource_type == "AWS::EC2::SecurityGroup":
            return ref
        if attribute in ("Name", "TopicName"):
            return ref
        if attribute == "VpcId":
            return self.resolve(stack, props["VpcId"])
        if attribute == "DefaultSecurityGroup" and resource_type == "AWS::EC2::VPC":
            return "sg-" + _digits(stack, logical_id)[:17]
        raise ValueError(f"Fn::GetAtt {logical_id}.{attribute} ({resource_type}) is not resolved by the test resolver")


# -- a role's policies across the stacks of one environment ----------------------------------


@dataclass
class RolePolicies:
    """The identity policies attached to one role, resolved (the role's own, and from every stack)."""

    role_name: str
    stack: str
    logical_id: str
    inline: list[dict] = field(default_factory=list)
    managed: list[dict] = field(default_factory=list)
    aws_managed: list[str] = field(default_factory=list)
    managed_arns: list[str] = field(default_factory=list)

    @property
    def statements(self) -> list[dict]:
        return [s for doc in self.inline + self.managed for s in _as_list(doc["Statement"])]

    @property
    def inline_size(self) -> int:
        """What IAM counts against the 10,240-character limit: all inline policies, whitespace excluded."""
        return sum(policy_size(doc) for doc in self.inline)


def policy_size(document: dict) -> int:
    return len(re.sub(r"\s", "", json.dumps(document, separators=(",", ":"))))


def collect_role_policies(resolver: Resolver) -> dict[str, RolePolicies]:
    """Every role of every stack, by physical name, with the policies attached to it anywhere."""
    roles: dict[str, RolePolicies] = {}
    for stack, template in resolver.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::IAM::Role":
                name = resolver.resolve(stack, {"Ref": logical_id})
                entry = roles[name] = RolePolicies(role_name=name, stack=stack, logical_id=logical_id)
                props = resolver.resolve(stack, resource.get("Properties", {}))
                entry.inline += [p["PolicyDocument"] for p in props.get("Policies", [])]
                entry.aws_managed += [a for a in props.get("ManagedPolicyArns", []) if a and ":aws:policy/" in a]
                entry.managed_arns = [a for a in props.get("ManagedPolicyArns", []) if a and ":aws:policy/" not in a]
    managed_by_arn = {}
    for stack, template in resolver.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                continue
            props = resolver.resolve(stack, resource["Properties"])
            attached = props.get("Roles", [])
            for role in attached:
                bucket = roles[role].inline if resource["Type"] == "AWS::IAM::Policy" else roles[role].managed
                bucket.append(props["PolicyDocument"])
            if resource["Type"] == "AWS::IAM::ManagedPolicy":
                managed_by_arn[resolver.resolve(stack, {"Ref": logical_id})] = (props["PolicyDocument"], attached)
    for entry in roles.values():
        for arn in entry.managed_arns:
            document, attached = managed_by_arn[arn]
            if entry.role_name not in attached:
                entry.managed.append(document)
    return roles


def fill(pattern: str, values: dict[str, str]) -> str:
    """A duty table's example ARN with the environment's names filled in (``{name}`` placeholders)."""
    return pattern.format(**values)


def matching_actions(pattern: str, actions: list[str]) -> list[str]:
    return [a for a in actions if fnmatch.fnmatchcase(a.lower(), pattern.lower())]


def resolver_for(synth) -> Resolver:
    """The resolver of one synthesized environment (a ``conftest.Synthesized``)."""
    import aws_cdk as cdk

    templates = {stack.stack_name: synth.template_json(stack.node.id) for stack in synth.stage.stacks}
    account, region = synth.stage.account, synth.stage.region
    return Resolver(
        templates,
        account=EXAMPLE_ACCOUNT if account is None or cdk.Token.is_unresolved(account) else account,
        region=EXAMPLE_REGION if region is None or cdk.Token.is_unresolved(region) else region,
    )


def policy_statements(value: Any) -> list[dict]:
    """Every policy statement anywhere in a (resolved) template fragment: identity, trust and resource policies."""
    if isinstance(value, list):
        return [s for v in value for s in policy_statements(v)]
    if not isinstance(value, dict):
        return []
    if "Effect" in value and ("Action" in value or "NotAction" in value):
        return [value]
    return [s for v in value.values() for s in policy_statements(v)]
