"""Shared fixtures: an offline, credential-free world and one synthesis per session."""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# Before aws_cdk is imported: jsii runs on the project's Node, and no AWS credentials exist.
os.environ["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"
for _var in [v for v in os.environ if v.startswith("AWS_")]:
    del os.environ[_var]
os.environ.update(
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    AWS_EC2_METADATA_DISABLED="true",
)
os.environ.pop("CDK_CONTEXT_JSON", None)
sys.path.insert(0, str(ROOT))

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from app import build_app, cdk_json_context, make_app  # noqa: E402
from config import ConfigError, load_config  # noqa: E402
from config.loader import DEFAULT_CONFIG_DIR  # noqa: E402


class AwsCallAttempted(AssertionError):
    """Raised when code under test tries to reach AWS (or any host) over the network."""


def _refuse(*_args, **_kwargs):
    raise AwsCallAttempted("a network connection was attempted during the tests; synth and tests must stay offline")


@pytest.fixture(autouse=True, scope="session")
def no_network():
    """Any TCP/UDP connection or botocore request fails the test that made it."""
    patcher = pytest.MonkeyPatch()
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            _refuse()
        return real_connect(sock, address)

    patcher.setattr(socket.socket, "connect", guarded_connect)
    patcher.setattr(socket.socket, "connect_ex", lambda sock, address: guarded_connect(sock, address))
    patcher.setattr(socket, "create_connection", _refuse)
    try:
        import botocore.endpoint

        patcher.setattr(botocore.endpoint.Endpoint, "make_request", _refuse)
    except ImportError:  # pragma: no cover - botocore is a dev dependency
        pass
    yield
    patcher.undo()


@dataclass
class Synthesized:
    """One synthesized environment: the stage, its assembly directory and per-stack templates."""

    stage: object
    outdir: Path
    assembly: cdk.cx_api.CloudAssembly

    def template_json(self, stack_id: str) -> dict:
        return self._artifact(stack_id).template

    def template(self, stack_id: str) -> Template:
        return Template.from_json(self.template_json(stack_id))

    def template_path(self, stack_id: str) -> Path:
        return Path(self._artifact(stack_id).template_full_path)

    @property
    def stack_ids(self) -> list[str]:
        return [s.node.id for s in self.stage.stacks]

    def _artifact(self, stack_id: str):
        stack = next(s for s in self.stage.stacks if s.node.id == stack_id)
        return self.assembly.get_nested_assembly(self.stage.artifact_id).get_stack_artifact(stack.artifact_id)


# What `python -m ops.approved_model` records once a package is approved (tests pass it as context).
APPROVED_PACKAGE = {
    "arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-sandbox-models/12",
    "version": 12,
    "group": "mlp-sandbox-models",
    "creation_time": "2026-11-20T09:30:00Z",
}


def synthesize(
    outdir: Path, env: str | None = None, config_dir: Path | None = None, *, context: dict | None = None
) -> Synthesized:
    """Synthesize the app exactly as ``app.py`` does (cdk.json context, cdk-nag on).

    A developer's own ``cdk.context.json`` is ignored: tests pass what they need in ``context``.
    """
    context = {**cdk_json_context(recorded=False), **(context or {})}
    if env:
        context["env"] = env
    app = make_app(outdir=str(outdir), context=context)
    stage = build_app(app, config_dir=config_dir or DEFAULT_CONFIG_DIR)
    assembly = app.synth()
    return Synthesized(stage=stage, outdir=outdir, assembly=assembly)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Synthesized:
    """The default platform, synthesized once for the whole session."""
    return synthesize(tmp_path_factory.mktemp("cdk.out.sandbox"))


@pytest.fixture(scope="session")
def network(sandbox) -> Template:
    return sandbox.template("Network")


@pytest.fixture(scope="session")
def foundation(sandbox) -> Template:
    return sandbox.template("Foundation")


def resources_of(template_json: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == resource_type}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def logical_id(template_json: dict, resource_type: str, prefix: str) -> str:
    """The one resource of ``resource_type`` whose logical id is ``prefix`` plus CDK's hash."""
    (match,) = [k for k in resources_of(template_json, resource_type) if k.startswith(prefix) and not k[len(prefix)].islower()]
    return match


def properties(template_json: dict, resource_type: str, prefix: str) -> dict:
    """The properties of the one resource ``logical_id`` finds."""
    return template_json["Resources"][logical_id(template_json, resource_type, prefix)]["Properties"]


def output_of(value) -> str:
    """The cross-stack output a value is read from: its name (Fn::GetStackOutput) or export (Fn::ImportValue)."""
    if "Fn::ImportValue" in value:
        return value["Fn::ImportValue"]
    return value["Fn::GetStackOutput"]["OutputName"]


def pipeline_sub(template_json: dict, prefix: str | None = None) -> tuple[str, dict]:
    """A SageMaker pipeline's definition body and its Fn::Sub values (the one pipeline, or the one named ``prefix``)."""
    if prefix is None:
        ((_, pipeline),) = resources_of(template_json, "AWS::SageMaker::Pipeline").items()
        props = pipeline["Properties"]
    else:
        props = properties(template_json, "AWS::SageMaker::Pipeline", prefix)
    body, values = props["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return body, values


def role_policies(template_json: dict) -> list[dict]:
    """Inline policies and the customer-managed overflow policies CDK splits long ones into."""
    return [*resources_of(template_json, "AWS::IAM::Policy").values(), *resources_of(template_json, "AWS::IAM::ManagedPolicy").values()]


def role_statements(template_json: dict, role: str) -> list[dict]:
    """Every policy statement attached to the role whose logical id starts with ``role``."""
    role_id = logical_id(template_json, "AWS::IAM::Role", role)
    statements = []
    for policy in role_policies(template_json):
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def config_error(tmp_path: Path, yaml_text: str, name: str = "sandbox") -> str:
    """The message of the ConfigError ``load_config`` raises for ``yaml_text`` as ``<name>.yaml`` in ``tmp_path``."""
    (tmp_path / f"{name}.yaml").write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(name, config_dir=tmp_path)
    return str(caught.value)


@pytest.fixture(scope="session")
def examples(tmp_path_factory) -> dict[str, Synthesized]:
    """The shipped example environments (account-bound, new and existing VPC), synthesized once."""
    return {env: synthesize(tmp_path_factory.mktemp(f"cdk.out.{env}"), env) for env in ("dev", "prod")}


def approved_context(env: str = "sandbox", package: dict = APPROVED_PACKAGE) -> dict:
    return {f"ml-platform:{env}:approved-model-package": package}


@pytest.fixture(scope="session")
def serving(tmp_path_factory) -> Synthesized:
    """The default platform with an approved model package recorded: it serves that package."""
    return synthesize(tmp_path_factory.mktemp("cdk.out.serving"), context=approved_context())


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` applied key by key (nested mappings merged, anything else replaced)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def synthesize_changed(outdir: Path, config_dir: Path, env: str, changes: dict, *, context: dict | None = None) -> Synthesized:
    """Environment ``env`` (a shipped example, or the built-in sandbox) with ``changes`` to its YAML, synthesized."""
    shipped = DEFAULT_CONFIG_DIR / f"{env}.yaml"
    base = yaml.safe_load(shipped.read_text(encoding="utf-8")) if shipped.is_file() else {}
    (config_dir / f"{env}.yaml").write_text(yaml.safe_dump(merged(base, changes)), encoding="utf-8")
    return synthesize(outdir, env, config_dir, context=context)


_BASELINE = "s3://mlp-dev-reports/mlp-dev-model-build/exec-1/data-quality-baseline"
# A dev package registered with a Model Monitor baseline.
MODEL_MONITOR_PACKAGE = {
    "arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-dev-models/3",
    "version": 3,
    "group": "mlp-dev-models",
    "creation_time": "2026-11-20T09:30:00Z",
    "data_quality_statistics": f"{_BASELINE}/statistics.json",
    "data_quality_constraints": f"{_BASELINE}/constraints.json",
}
MODEL_MONITOR_CHANGES = {"monitoring": {"model_monitor": {"enabled": True}}}


@pytest.fixture(scope="session")
def model_monitor(tmp_path_factory) -> Synthesized:
    """The dev example with Model Monitor switched on and a package with its baseline recorded."""
    return synthesize_changed(
        tmp_path_factory.mktemp("cdk.out.model-monitor"),
        tmp_path_factory.mktemp("config.model-monitor"),
        "dev",
        MODEL_MONITOR_CHANGES,
        context=approved_context("dev", MODEL_MONITOR_PACKAGE),
    )


@pytest.fixture(scope="session")
def every_synth(sandbox, examples, serving, model_monitor) -> list[Synthesized]:
    return [sandbox, *examples.values(), serving, model_monitor]
