"""Shared fixtures: an offline, credential-free world and one synthesis per session."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
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

from app import COMPLIANCE_PACKS_CONTEXT, build_app, cdk_json_context, make_app  # noqa: E402
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
    """One synthesized environment: its cloud assembly (directory and per-stack templates) and the stage.

    Under pytest-xdist one worker synthesizes and the others read its assembly from disk; a worker that reads
    it builds the live ``stage`` (construct objects) only if a test asks for it.
    """

    outdir: Path
    assembly: cdk.cx_api.CloudAssembly
    build_stage: Callable[[], object]
    _stage: object = None
    _stack_artifacts: dict | None = None
    _template_texts: dict = field(default_factory=dict)

    @property
    def stage(self):
        if self._stage is None:
            self._stage = self.build_stage()
        return self._stage

    def template_json(self, stack_id: str) -> dict:
        """A fresh copy of the stack's template (tests may change theirs), parsed from the file on disk:
        reading it through jsii costs a round trip of the whole template per call."""
        if stack_id not in self._template_texts:
            self._template_texts[stack_id] = self.template_path(stack_id).read_text(encoding="utf-8")
        return json.loads(self._template_texts[stack_id])

    def template(self, stack_id: str) -> Template:
        return Template.from_json(self.template_json(stack_id))

    def template_path(self, stack_id: str) -> Path:
        return self._stacks()[stack_id][1]

    def messages(self) -> list[tuple[str, str, str]]:
        """``(type, construct path, text)`` of each annotation in the stage's stacks (what ``cdk synth`` prints;
        ``aws:cdk:warning`` and ``aws:cdk:error`` fail ``cdk synth --strict``)."""
        return sorted((m.entry.type, m.id, str(m.entry.data)) for stack, _ in self._stacks().values() for m in stack.messages)

    @property
    def stack_ids(self) -> list[str]:
        return list(self._stacks())

    def _stacks(self) -> dict:
        """``(stack artifact, template path)`` by construct id, in the order the stage defines them."""
        if self._stack_artifacts is None:
            self._stack_artifacts = self._read_stacks()
        return self._stack_artifacts

    def _read_stacks(self) -> dict:
        (stage_id,) = [a.id for a in self.assembly.artifacts if a.id.startswith("assembly-")]
        by_path = {s.hierarchical_id: s for s in self.assembly.get_nested_assembly(stage_id).stacks}
        # tree.json lists the stage's children in construction order (the manifest sorts by dependency).
        stage_name = stage_id.removeprefix("assembly-")
        children = load_json(self.outdir / "tree.json")["tree"]["children"][stage_name]["children"]
        return {
            child: (by_path[path], Path(by_path[path].template_full_path))
            for child in children
            if (path := f"{stage_name}/{child}") in by_path
        }


# What `python -m ops.approved_model` records once a package is approved (tests pass it as context).
APPROVED_PACKAGE = {
    "arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-sandbox-models/12",
    "version": 12,
    "group": "mlp-sandbox-models",
    "creation_time": "2026-11-20T09:30:00Z",
}


def _stage_and_assembly(outdir: Path, env: str | None, config_dir: Path | None, context: dict | None):
    """The app exactly as ``app.py`` builds it (cdk.json context, cdk-nag on), synthesized into ``outdir``, with the
    NIST 800-53 R5, HIPAA Security and PCI DSS 3.2.1 packs next to AwsSolutions (as ``make review`` runs them).

    A developer's own ``cdk.context.json`` is ignored: tests pass what they need in ``context``.
    """
    context = {**cdk_json_context(recorded=False), COMPLIANCE_PACKS_CONTEXT: True, **(context or {})}
    if env:
        context["env"] = env
    app = make_app(outdir=str(outdir), context=context)
    stage = build_app(app, config_dir=config_dir or DEFAULT_CONFIG_DIR)
    return stage, app.synth()


def synthesize(
    outdir: Path, env: str | None = None, config_dir: Path | None = None, *, context: dict | None = None
) -> Synthesized:
    """Synthesize the app exactly as ``app.py`` does, into ``outdir``."""
    stage, assembly = _stage_and_assembly(outdir, env, config_dir, context)
    rebuild = functools.partial(_rebuilt_stage, outdir, env, config_dir, context)
    return Synthesized(outdir=outdir, assembly=assembly, build_stage=rebuild, _stage=stage)


def _rebuilt_stage(outdir: Path, env, config_dir, context):
    return _stage_and_assembly(outdir.with_name(f"{outdir.name}.rebuilt-{os.getpid()}"), env, config_dir, context)[0]


def once_per_run(tmp_path_factory, name: str, make: Callable[[Path], None]) -> tuple[Path, bool]:
    """``make(folder)`` once per test run, and the folder: under pytest-xdist the first worker to ask makes it
    and the others wait for it (a file lock orders them). Also says whether this call made it."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder, True
    folder = tmp_path_factory.getbasetemp().parent / name
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        complete = folder.with_name(f"{folder.name}.complete")
        if complete.exists():
            return folder, False
        make(folder)
        complete.touch()
        return folder, True


def synthesize_once(
    tmp_path_factory, name: str, env: str | None = None, config_dir: Path | None = None, *, context: dict | None = None
) -> Synthesized:
    """``synthesize`` once per test run; the workers that did not synthesize read the same cloud assembly."""
    made: list[Synthesized] = []
    outdir, _ = once_per_run(tmp_path_factory, f"cdk.out.{name}", lambda out: made.append(synthesize(out, env, config_dir, context=context)))
    if made:
        return made[0]
    rebuild = functools.partial(_rebuilt_stage, outdir, env, config_dir, context)
    return Synthesized(outdir=outdir, assembly=cdk.cx_api.CloudAssembly(str(outdir)), build_stage=rebuild)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Synthesized:
    """The default platform, synthesized once for the whole session."""
    return synthesize_once(tmp_path_factory, "sandbox")


@pytest.fixture(scope="session")
def network(sandbox) -> Template:
    return sandbox.template("Network")


@pytest.fixture(scope="session")
def foundation(sandbox) -> Template:
    return sandbox.template("Foundation")


def platform_app(**context) -> cdk.App:
    """An app as ``app.make_app`` makes it (cdk.json's context, the definition cache, no stack traces), for tests
    that build a stage themselves; it writes to a temporary folder."""
    return make_app(outdir=tempfile.mkdtemp(prefix="cdk.out."), context={**cdk_json_context(recorded=False), **context})


def template_of(stack: cdk.Stack) -> dict:
    """``stack``'s template from its stage's one cached synthesis.

    ``Template.from_stack`` re-synthesizes the whole stage on every call; several stacks of one stage cost one synth here.
    """
    return cdk.Stage.of(stack).synth().get_stack_artifact(stack.artifact_id).template


@pytest.fixture
def no_recorded_definitions(monkeypatch):
    """The file cache alone answers: no committed definition (for tests of the cache itself)."""
    from pipeline_code.definitions import cache

    monkeypatch.setattr(cache, "recorded_index", lambda: {})


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


@functools.lru_cache(maxsize=None)
def _botocore_session():
    import botocore.session

    return botocore.session.get_session()


def offline_client(service: str, region: str = "eu-west-1"):
    """A real botocore client with dummy credentials, for Stubber: nothing it sends leaves the process.

    One botocore session serves every test, so each service model is parsed once per worker, not per test.
    """
    return _botocore_session().create_client(service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")


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
    return {env: synthesize_once(tmp_path_factory, env, env) for env in ("dev", "prod")}


def approved_context(env: str = "sandbox", package: dict = APPROVED_PACKAGE) -> dict:
    return {f"ml-platform:{env}:approved-model-package": package}


@pytest.fixture(scope="session")
def serving(tmp_path_factory) -> Synthesized:
    """The default platform with an approved model package recorded: it serves that package."""
    return synthesize_once(tmp_path_factory, "serving", context=approved_context())


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` applied key by key (nested mappings merged, anything else replaced)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def synthesize_changed(outdir: Path, config_dir: Path, env: str, changes: dict, *, context: dict | None = None) -> Synthesized:
    """Environment ``env`` (a shipped example, or the built-in sandbox) with ``changes`` to its YAML, synthesized."""
    write_changed(config_dir, env, changes)
    return synthesize(outdir, env, config_dir, context=context)


def write_changed(config_dir: Path, env: str, changes: dict) -> None:
    """``config_dir/<env>.yaml``: the shipped example (or the built-in sandbox) with ``changes`` to its YAML."""
    shipped = DEFAULT_CONFIG_DIR / f"{env}.yaml"
    base = yaml.safe_load(shipped.read_text(encoding="utf-8")) if shipped.is_file() else {}
    (config_dir / f"{env}.yaml").write_text(yaml.safe_dump(merged(base, changes)), encoding="utf-8")


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
    config_dir = tmp_path_factory.mktemp("config.model-monitor")
    write_changed(config_dir, "dev", MODEL_MONITOR_CHANGES)
    return synthesize_once(tmp_path_factory, "model-monitor", "dev", config_dir, context=approved_context("dev", MODEL_MONITOR_PACKAGE))


@pytest.fixture(scope="session")
def every_synth(sandbox, examples, serving, model_monitor) -> list[Synthesized]:
    return [sandbox, *examples.values(), serving, model_monitor]
