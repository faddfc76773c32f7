"""The delivery pipeline's configuration: ``load_delivery()`` returns a validated ``DeliveryPlan``.

``config/delivery.yaml`` names the tooling account that hosts the pipeline, the source it
watches, and the environments (``config/environments/<name>.yaml``) it deploys, in order.
Every problem, in the file itself and against the environment files, is reported at once,
one line each, naming the file, the key path, the bad value and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator

from config.loader import (
    DEFAULT_CONFIG_DIR,
    ConfigError,
    available_environments,
    describe_error,
    display_path,
    load_config,
    read_mapping,
    report,
)
from config.schema import EMAIL_PATTERN, SANDBOX, PlatformConfig, StrictModel, check_account, check_region

DEFAULT_DELIVERY_FILE = Path(__file__).resolve().parent / "delivery.yaml"

# CodeConnections ARNs; connections created before the 2024 rename keep the codestar-connections service name.
CONNECTION_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"
)
REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
BRANCH_PATTERN = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ToolingAccount(StrictModel):
    """Where the pipeline, its artifact bucket and the approval event bus live."""

    account: str
    region: str

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        return check_account(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return check_region(value)


class ConnectionSource(StrictModel):
    """A Git repository reached through an AWS CodeConnections connection (GitHub, GitLab, Bitbucket)."""

    connection_arn: str
    repository: str
    branch: str = "main"

    @field_validator("connection_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not CONNECTION_ARN_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a connection ARN; allowed: "
                "'arn:aws:codeconnections:<region>:<12-digit account>:connection/<uuid>' (or codestar-connections)"
            )
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not REPOSITORY_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a repository; allowed: 'owner/name' as the Git host spells it")
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        if not BRANCH_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a branch name; allowed: letters, digits and ._/-")
        return value


class S3Source(StrictModel):
    """A zip of the repository uploaded to a versioned bucket in the tooling account."""

    bucket: str
    key: str

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not BUCKET_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a bucket name; allowed: 3-63 lowercase letters, digits, '.' or '-'")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not value.endswith(".zip") or value.startswith("/"):
            raise ValueError(f"{value!r} is not an object key of a zip; allowed: a key such as 'ml-platform/source.zip'")
        return value


class SourceConfig(StrictModel):
    """Exactly one of ``connection`` and ``s3``."""

    connection: ConnectionSource | None = None
    s3: S3Source | None = None

    @model_validator(mode="after")
    def _one(self) -> SourceConfig:
        if (self.connection is None) == (self.s3 is None):
            raise ValueError("set exactly one of source.connection and source.s3 (CodeCommit is closed to new customers)")
        return self


class DeliveryConfig(StrictModel):
    """``config/delivery.yaml`` as written; cross-file checks happen in :func:`parse_delivery`."""

    tooling: ToolingAccount
    source: SourceConfig
    # Environment names, deployed in this order.
    environments: list[str] = Field(min_length=1)
    # Stages that wait for a person before deploying. Default: the last environment.
    manual_approval: list[str] | None = None
    notification_emails: list[str] = Field(default_factory=list)

    @field_validator("notification_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not EMAIL_PATTERN.match(v)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an email address; allowed: addresses like 'ml-team@example.com'")
        return value


@dataclass(frozen=True)
class DeliveryPlan:
    """A validated delivery configuration with its environments loaded."""

    tooling: ToolingAccount
    source: SourceConfig
    environments: tuple[PlatformConfig, ...]
    manual_approval: frozenset[str]
    notification_emails: tuple[str, ...]

    def needs_approval(self, env: str) -> bool:
        return env in self.manual_approval


def load_delivery(path: Path = DEFAULT_DELIVERY_FILE, *, config_dir: Path = DEFAULT_CONFIG_DIR) -> DeliveryPlan:
    """Load and validate the delivery configuration at ``path`` against the environments in ``config_dir``."""
    if not path.is_file():
        raise ConfigError(f"no delivery configuration: {display_path(path)} does not exist; copy the shipped example and edit it")
    return parse_delivery(path.read_text(encoding="utf-8"), source=path, config_dir=config_dir)


def parse_delivery(text: str, *, source: Path, config_dir: Path = DEFAULT_CONFIG_DIR) -> DeliveryPlan:
    where = display_path(source)
    heading = f"Invalid delivery configuration in {where}"
    data = read_mapping(text, where=where, what="delivery configuration")
    try:
        config = DeliveryConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(report(heading, [describe_error(e, DeliveryConfig) for e in exc.errors()])) from None

    problems: list[str] = []
    known = available_environments(config_dir)
    loaded: list[PlatformConfig] = []
    seen_targets: dict[tuple[str, str], str] = {}
    for i, name in enumerate(config.environments):
        key = f"environments[{i}]"
        if name in config.environments[:i]:
            problems.append(f"{key}: {name!r} is listed twice; allowed: each environment once")
            continue
        if name not in known:
            problems.append(f"{key}: unknown environment {name!r}: there is no {display_path(config_dir / f'{name}.yaml')}; allowed: {', '.join(n for n in known if n != SANDBOX) or 'none yet'}")
            continue
        try:
            env = load_config(name, config_dir=config_dir)
        except ConfigError as exc:
            problems.append(f"{key}: environment {name!r} does not load: {exc}")
            continue
        if env.account is None or env.region is None:
            problems.append(f"{key}: environment {name!r} has no account and region; allowed: environments with both set (the pipeline deploys into an account)")
            continue
        target = (env.account, env.region)
        if target in seen_targets:
            problems.append(
                f"{key}: environment {name!r} deploys to account {env.account} in {env.region}, as {seen_targets[target]!r} does; "
                "allowed: one environment per account and region"
            )
            continue
        seen_targets[target] = name
        loaded.append(env)
    approval = config.manual_approval if config.manual_approval is not None else config.environments[-1:]
    for i, name in enumerate(approval):
        if name not in config.environments:
            problems.append(f"manual_approval[{i}]: {name!r} is not a stage of this pipeline; allowed: one of {', '.join(config.environments)}")
    if problems:
        raise ConfigError(report(heading, problems))
    return DeliveryPlan(
        tooling=config.tooling,
        source=config.source,
        environments=tuple(loaded),
        manual_approval=frozenset(approval),
        notification_emails=tuple(config.notification_emails),
    )
