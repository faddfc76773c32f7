"""Typed, validated configuration of one platform environment.

Every model forbids unknown keys and is strict about types, so a typo or an
unquoted number in YAML is reported instead of silently ignored or coerced.
Validators raise ``ValueError`` with a message that states what is allowed;
``config.loader`` turns those into one message naming file, key path and value.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import unicodedata
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SANDBOX = "sandbox"

# Ends with a letter or digit: names built from it (``mlp-<env>``, the Studio domain) may not end with '-'.
ENV_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
ENV_NAME_ALLOWED = "2-20 lowercase letters, digits or '-', starting with a letter and ending with a letter or digit"
ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
AZ_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
EMAIL_PATTERN = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[A-Za-z]{2,}$")
# Tags: what IAM, SageMaker and KMS all accept (Unicode letters, digits, spaces and _.:/=+-@).
TAG_KEY_MAX, TAG_VALUE_MAX, TAGS_PER_RESOURCE = 128, 256, 50
# Tags the platform itself puts on one resource at most (a subnet: the environment tag, Name and
# CDK's two subnet tags); the config's tags share the per-resource limit with them.
PLATFORM_TAGS_PER_RESOURCE = 4
RESERVED_TAG_PREFIXES = ("aws:", "aws-cdk:", "ml-platform:")

# CloudWatch Logs accepts only these retention periods: days -> aws_logs.RetentionDays member.
LOG_RETENTION_DAYS = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}  # fmt: skip

VPC_PREFIX_MIN, VPC_PREFIX_MAX = 16, 22
MAX_AZS = 4


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Regions aws-cdk-lib knows about (its bundled region facts; no AWS call)."""
    from aws_cdk import region_info

    return frozenset(r.name for r in region_info.RegionInfo.regions)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_account(value: str) -> str:
    """``value`` if it is an AWS account id (also for the delivery configuration)."""
    if not ACCOUNT_PATTERN.match(value):
        raise ValueError(f"{value!r} is not an AWS account id; allowed: exactly 12 digits, quoted in YAML, e.g. '123456789012'")
    return value


def check_region(value: str) -> str:
    """``value`` if it is a region botocore knows (also for the delivery configuration)."""
    if value not in known_regions():
        raise ValueError(f"{value!r} is not a known AWS region; allowed: a region name such as 'eu-west-1' or 'us-east-1'")
    return value


class KeyedError(ValueError):
    """A cross-field error raised by a model validator, naming the key it is about.

    Pydantic locates model-level errors at the model itself; the loader appends
    ``key`` so the message still names the exact key path.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _tag_chars_ok(text: str) -> bool:
    return all(ch.isalnum() or ch in "_.:/=+-@" or unicodedata.category(ch).startswith("Z") for ch in text)


def _check_unique(values: list, what: str) -> list:
    """Duplicates in a list are a configuration error (they would become clashing constructs)."""
    seen, duplicates = set(), []
    for value in values:
        key = value.lower() if isinstance(value, str) else value
        if key in seen and value not in duplicates:
            duplicates.append(value)
        seen.add(key)
    if duplicates:
        raise ValueError(f"{duplicates[0]!r} appears more than once in {list(values)}; allowed: each {what} once")
    return values


def _partition_of(region: str) -> str:
    from aws_cdk import region_info

    return region_info.RegionInfo.get(region).partition or "aws"


def _check_ids(values: list[str], prefix: str, key: str) -> list[str]:
    pattern = re.compile(rf"^{prefix}-[0-9a-f]{{8}}([0-9a-f]{{9}})?$")
    bad = [v for v in values if not pattern.match(v)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a valid {key}; allowed: ids like '{prefix}-0123456789abcdef0'")
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate {key}s in {values}; allowed: each id once")
    return values


def _check_azs(values: list[str]) -> list[str]:
    bad = [v for v in values if not AZ_PATTERN.match(v)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an availability zone name; allowed: names like 'eu-west-1a'")
    return _check_unique(values, "availability zone")


class NewVpcConfig(StrictModel):
    """A VPC the platform creates: private subnets only, unless NAT is asked for."""

    cidr: str = "10.20.0.0/16"
    az_count: int = Field(default=2, ge=1, le=MAX_AZS)
    nat_gateways: int = Field(default=0, ge=0, le=MAX_AZS)
    # Explicit AZ names avoid an AZ lookup (which needs credentials) for environments with an account.
    availability_zones: list[str] | None = None

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        allowed = f"allowed: an IPv4 network such as '10.20.0.0/16', prefix /{VPC_PREFIX_MIN} to /{VPC_PREFIX_MAX}"
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 CIDR block; {allowed}") from None
        if not VPC_PREFIX_MIN <= network.prefixlen <= VPC_PREFIX_MAX:
            raise ValueError(f"{value!r} has prefix /{network.prefixlen}; {allowed}")
        if not network.is_private:
            raise ValueError(f"{value!r} is not a private (RFC 1918) range; {allowed}")
        return value

    @field_validator("availability_zones")
    @classmethod
    def _azs(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_azs(value)

    @model_validator(mode="after")
    def _consistent(self) -> NewVpcConfig:
        if self.nat_gateways > self.az_count:
            raise KeyedError(
                "nat_gateways",
                f"{self.nat_gateways} exceeds az_count={self.az_count}; "
                f"allowed: 0 (no internet egress) up to one per AZ"
            )
        if self.availability_zones is not None and len(self.availability_zones) != self.az_count:
            raise KeyedError(
                "availability_zones",
                f"lists {len(self.availability_zones)} zones but az_count={self.az_count}; "
                "allowed: exactly az_count zone names"
            )
        return self


class ExistingVpcConfig(StrictModel):
    """A VPC that already exists; the platform adds its security groups and endpoints to it."""

    vpc_id: str
    subnet_ids: list[str] = Field(min_length=1)
    availability_zones: list[str] = Field(min_length=1)
    route_table_ids: list[str] = Field(min_length=1)
    # Central VPCs often have these already; a second S3 gateway on the same route tables, or a
    # second private-DNS interface endpoint for a service, fails the deployment.
    create_s3_gateway_endpoint: bool = True
    create_interface_endpoints: bool = True

    @field_validator("vpc_id")
    @classmethod
    def _vpc(cls, value: str) -> str:
        return _check_ids([value], "vpc", "VPC id")[0]

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        return _check_ids(value, "subnet", "subnet id")

    @field_validator("route_table_ids")
    @classmethod
    def _route_tables(cls, value: list[str]) -> list[str]:
        return _check_ids(value, "rtb", "route table id")

    @field_validator("availability_zones")
    @classmethod
    def _azs(cls, value: list[str]) -> list[str]:
        return _check_azs(value)

    @model_validator(mode="after")
    def _consistent(self) -> ExistingVpcConfig:
        n = len(self.subnet_ids)
        if len(self.availability_zones) != n or len(self.route_table_ids) != n:
            raise KeyedError(
                "subnet_ids",
                f"{n} subnet_ids, {len(self.availability_zones)} availability_zones and "
                f"{len(self.route_table_ids)} route_table_ids; allowed: one zone and one route table per subnet, in order"
            )
        return self


class NetworkConfig(StrictModel):
    """Either ``new_vpc`` or ``existing_vpc``; a new VPC with defaults when neither is given."""

    new_vpc: NewVpcConfig | None = None
    existing_vpc: ExistingVpcConfig | None = None
    flow_log_retention_days: int = 90

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period; allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_new_vpc(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("new_vpc") is None and data.get("existing_vpc") is None:
            return {**data, "new_vpc": {}}
        return data

    @model_validator(mode="after")
    def _one_vpc(self) -> NetworkConfig:
        if self.new_vpc is not None and self.existing_vpc is not None:
            raise KeyedError("existing_vpc", "is set together with new_vpc; allowed: exactly one of new_vpc and existing_vpc")
        return self


INSTANCE_TYPE_PATTERN = re.compile(r"^ml\.[a-z0-9]+(-[a-z0-9]+)?\.[a-z0-9]+$")
# EventBridge Scheduler: cron(minutes hours day-of-month month day-of-week year) or rate(N unit).
SCHEDULE_PATTERN = re.compile(
    r"^(cron\((\S+ ){5}\S+\)|rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\))$"
)


_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
# EventBridge cron fields: name, range, names allowed instead of numbers, extra tokens allowed.
_CRON_FIELDS = [
    ("minutes", 0, 59, [], ""),
    ("hours", 0, 23, [], ""),
    ("day-of-month", 1, 31, [], "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, [], ""),
]


def _cron_field_problem(text: str, name: str, low: int, high: int, names: list[str], extra: str) -> str | None:
    """Why ``text`` is not a valid value of cron field ``name`` (None when it is)."""
    if text == "?" and "?" in extra:
        return None
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            return f"{name} step {step!r} is not a number"
        if base == "*" or ("L" in extra and base in ("L", "LW")):
            continue
        if "#" in base and "#" in extra:
            day, _, nth = base.partition("#")
            if not (day.isdigit() or day.upper() in names) or nth not in {"1", "2", "3", "4", "5"}:
                return f"{name} {base!r} is not '<day>#<1-5>'"
            continue
        if "W" in extra and base.endswith("W") and base[:-1].isdigit():
            base = base[:-1]
        for bound in base.split("-", 1):
            value = names.index(bound.upper()) + 1 if bound.upper() in names else int(bound) if bound.isdigit() else None
            if value is None or not low <= value <= high:
                allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
                return f"{name} {bound!r} is outside {allowed}"
    return None


def _check_schedule(value: str | None) -> str | None:
    """An EventBridge Scheduler expression: ``rate(N unit)`` or a six-field ``cron(...)`` that can fire."""
    if value is None:
        return value
    allowed = "allowed: 'cron(0 3 ? * MON *)' (six fields: minutes hours day-of-month month day-of-week year) or 'rate(7 days)'"
    if not SCHEDULE_PATTERN.match(value):
        raise ValueError(f"{value!r} is not an EventBridge Scheduler expression; {allowed}")
    if value.startswith("cron("):
        fields = value[5:-1].split(" ")
        problems = [p for f, spec in zip(fields, _CRON_FIELDS) if (p := _cron_field_problem(f, *spec))]
        if problems:
            raise ValueError(f"{value!r} is not a valid cron expression: {problems[0]}; {allowed}")
        if (fields[2] == "?") == (fields[4] == "?"):
            raise ValueError(f"{value!r} is not a valid cron expression: exactly one of day-of-month and day-of-week must be '?'; {allowed}")
    return value


def _check_emails(value: list[str]) -> list[str]:
    bad = [v for v in value if not EMAIL_PATTERN.match(v)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an email address; allowed: addresses like 'ml-team@example.com'")
    return _check_unique(value, "address")


# Job kind -> the SageMaker API's instance-type enum for it, and how a message names the kind.
INSTANCE_KINDS = {
    "training": ("TrainingInstanceType", "training jobs"),
    "processing": ("ProcessingInstanceType", "processing jobs"),
    "transform": ("TransformInstanceType", "batch transform jobs"),
    "endpoint": ("ProductionVariantInstanceType", "endpoints"),
}


@lru_cache(maxsize=None)
def sagemaker_instance_types(shape: str) -> tuple[str, ...]:
    """The instance types SageMaker's API lists in enum ``shape`` (botocore's bundled service model; no AWS call)."""
    import botocore.session

    return tuple(botocore.session.get_session().get_service_model("sagemaker").shape_for(shape).enum)


def _has_instance_storage(value: str) -> bool:
    return bool(INSTANCE_STORAGE_FAMILY.match(value.split(".")[1]))


def _check_instance_type(value: str, kind: str, *, volume_key: bool = False) -> str:
    """An instance type SageMaker accepts for jobs of ``kind`` (a key of ``INSTANCE_KINDS``); with
    ``volume_key``, one whose storage volume takes the platform's KMS key (no local NVMe storage)."""
    if not INSTANCE_TYPE_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a SageMaker instance type; allowed: names like 'ml.m5.xlarge'")
    shape, what = INSTANCE_KINDS[kind]
    offered = sagemaker_instance_types(shape)
    if value not in offered:
        usable = [t for t in offered if not (volume_key and _has_instance_storage(t))]
        close = difflib.get_close_matches(value, usable, n=3, cutoff=0.8) or ["ml.m5.large", "ml.m5.xlarge"]
        raise ValueError(
            f"{value!r} is not an instance type SageMaker offers for {what}; "
            f"allowed: one of the {len(offered)} types of its {shape} list, such as {', '.join(close)}"
        )
    return value


# Families with local NVMe instance storage: SageMaker refuses a volume KMS key for them.
INSTANCE_STORAGE_FAMILY = re.compile(r"^(\w+\d+[a-z]*d[a-z]*|g5|g6|g6e|p5|p5e|trn1)$")


def _check_volume_encryptable(value: str, kind: str) -> str:
    """An instance type for ``kind`` whose storage volume takes the platform's KMS key (no local NVMe storage)."""
    _check_instance_type(value, kind, volume_key=True)
    if _has_instance_storage(value):
        raise ValueError(
            f"{value!r} has local NVMe instance storage, which takes no customer-managed KMS key; "
            "allowed: instance types with EBS storage, such as 'ml.m5.large' or 'ml.c5.xlarge'"
        )
    return value


class TuningConfig(StrictModel):
    """Hyperparameter tuning (Bayesian, objective validation:accuracy) instead of one training job."""

    max_jobs: int = Field(default=10, ge=1, le=500)
    max_parallel_jobs: int = Field(default=2, ge=1, le=100)
    early_stopping: bool = True

    @model_validator(mode="after")
    def _parallel(self) -> TuningConfig:
        if self.max_parallel_jobs > self.max_jobs:
            raise KeyedError("max_parallel_jobs", f"{self.max_parallel_jobs} exceeds max_jobs={self.max_jobs}; allowed: at most max_jobs")
        return self


class PipelineConfig(StrictModel):
    """The model-build pipeline: preprocess, train or tune, evaluate, gate on accuracy, register."""

    target_column: str = Field(default="label", min_length=1, max_length=128)
    training_mode: Literal["train", "tune"] = "train"
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    accuracy_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    approval_status: Literal["PendingManualApproval", "Approved"] = "PendingManualApproval"
    processing_instance_type: str = "ml.m5.xlarge"
    processing_instance_count: int = Field(default=1, ge=1, le=20)
    training_instance_type: str = "ml.m5.xlarge"
    inference_instance_types: list[str] = Field(default_factory=lambda: ["ml.m5.large"], min_length=1)
    transform_instance_types: list[str] = Field(default_factory=lambda: ["ml.m5.large"], min_length=1)
    max_run_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    max_wait_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    # Reuse a step's result for identical arguments for this many days; 0 = never. Only safe when
    # InputDataUrl names immutable dataset versions (a scheduled run reuses the same URL).
    cache_days: int = Field(default=0, ge=0, le=365)
    # EventBridge Scheduler expression for retraining; none means no schedule.
    schedule: str | None = None
    # Accounts (e.g. staging, production) that may describe the registry's packages and create models from them.
    registry_shared_with_accounts: list[str] = Field(default_factory=list)
    # Email addresses subscribed to pipeline success/failure notifications.
    notification_emails: list[str] = Field(default_factory=list)

    # Jobs and endpoints get the platform's volume key: no NVMe instance-storage families.
    @field_validator("processing_instance_type")
    @classmethod
    def _processing_type(cls, value: str) -> str:
        return _check_volume_encryptable(value, "processing")

    @field_validator("training_instance_type")
    @classmethod
    def _training_type(cls, value: str) -> str:
        return _check_volume_encryptable(value, "training")

    @field_validator("inference_instance_types")
    @classmethod
    def _inference_types(cls, value: list[str]) -> list[str]:
        return _check_unique([_check_instance_type(v, "endpoint") for v in value], "instance type")

    @field_validator("transform_instance_types")
    @classmethod
    def _transform_types(cls, value: list[str]) -> list[str]:
        return _check_unique([_check_instance_type(v, "transform") for v in value], "instance type")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return _check_schedule(value)

    @field_validator("registry_shared_with_accounts")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not ACCOUNT_PATTERN.match(v)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an AWS account id; allowed: 12-digit strings, quoted in YAML")
        return _check_unique(value, "account")

    @field_validator("notification_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return _check_emails(value)

    @field_validator("target_column")
    @classmethod
    def _target(cls, value: str) -> str:
        if value.strip() != value or "," in value:
            raise ValueError(f"{value!r} is not a usable column name; allowed: no commas, no surrounding spaces")
        return value

    @model_validator(mode="after")
    def _spot(self) -> PipelineConfig:
        if self.max_wait_minutes < self.max_run_minutes:
            raise KeyedError(
                "max_wait_minutes",
                f"{self.max_wait_minutes} is shorter than max_run_minutes={self.max_run_minutes}; "
                "allowed: at least max_run_minutes (spot training waits for capacity within it)",
            )
        return self


# Instance types Studio's JupyterLab and Code Editor apps accept (a subset of CloudFormation's
# AppInstanceType list, which tests/test_studio.py checks them against).
STUDIO_INSTANCE_TYPES = tuple(
    f"ml.{family}.{size}"
    for family, sizes in {
        "t3": ("medium", "large", "xlarge", "2xlarge"),
        "m5": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge"),
        "m6i": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge"),
        "c5": ("large", "xlarge", "2xlarge", "4xlarge", "9xlarge"),
        "r5": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge"),
        "g5": ("xlarge", "2xlarge", "4xlarge", "8xlarge"),
    }.items()
    for size in sizes
)
PERSONAS = ("data_scientist", "lead")
# Studio's 63-character space name less the hash suffix the platform adds (ml_constructs.studio_domain).
MAX_SPACE_NAME_LENGTH = 52
USER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
LIFECYCLE_CONFIG_ARN_PATTERN = re.compile(
    r"^arn:(?P<partition>aws[a-z\-]*):sagemaker:(?P<region>[a-z0-9\-]+):(?P<account>\d{12}):studio-lifecycle-config/[A-Za-z0-9\-]+$"
)
GIT_URL_PATTERN = re.compile(r"^https://[A-Za-z0-9.\-]+(:\d+)?/\S+$")
# Git hosts on the internet: Studio clones over HTTPS from the user's app, in the VPC, so a VPC
# without NAT cannot reach them (there is no VPC endpoint for them).
PUBLIC_GIT_HOSTS = ("github.com", "gitlab.com", "bitbucket.org")


def git_host(url: str) -> str:
    """The host name of an ``https://`` Git URL, lower case, without a port."""
    return url.split("/")[2].split(":")[0].lower()


def is_public_git_host(host: str) -> bool:
    return any(host == public or host.endswith(f".{public}") for public in PUBLIC_GIT_HOSTS)


class StudioUser(StrictModel):
    """One person: a user profile with the role of their persona."""

    name: str
    persona: Literal["data_scientist", "lead"] = "data_scientist"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not USER_NAME_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a valid user profile name; allowed: 1-63 letters, digits and '-', starting and ending with a letter or digit")
        return value


class SharedSpace(StrictModel):
    """A JupyterLab space every user can open; its owner is fixed when it is created."""

    name: str
    owner: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not USER_NAME_PATTERN.match(value) or len(value) > MAX_SPACE_NAME_LENGTH:
            raise ValueError(
                f"{value!r} is not a valid space name; allowed: 1-{MAX_SPACE_NAME_LENGTH} letters, digits and '-', "
                "starting and ending with a letter or digit (the space's own name adds '-' and a 10-character hash)"
            )
        return value


class MlflowConfig(StrictModel):
    """SageMaker managed MLflow tracking server for experiment tracking."""

    enabled: bool = True
    size: Literal["Small", "Medium", "Large"] = "Small"


class StudioConfig(StrictModel):
    """The VPC-only Studio domain, its users and experiment tracking."""

    enabled: bool = True
    default_instance_type: str = "ml.t3.medium"
    # Apps idle this long are shut down (Studio's own limits: 60 minutes to a year).
    idle_timeout_minutes: int = Field(default=120, ge=60, le=525_600)
    notebook_output_sharing: bool = False
    git_repositories: list[str] = Field(default_factory=list, max_length=30)
    shared_spaces: list[SharedSpace] = Field(default_factory=list)
    users: list[StudioUser] = Field(default_factory=list)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    # Studio lifecycle configurations (ARNs) offered to each app type (a configuration has one app type).
    jupyterlab_lifecycle_config_arns: list[str] = Field(default_factory=list, max_length=30)
    code_editor_lifecycle_config_arns: list[str] = Field(default_factory=list, max_length=30)
    # What happens to the users' home EFS when the domain is deleted: retained (SageMaker's default) or deleted.
    home_efs_on_delete: Literal["retain", "delete"] = "retain"

    @field_validator("jupyterlab_lifecycle_config_arns", "code_editor_lifecycle_config_arns")
    @classmethod
    def _lifecycle_configs(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not LIFECYCLE_CONFIG_ARN_PATTERN.match(v)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not a Studio lifecycle configuration ARN; allowed: "
                "'arn:aws:sagemaker:<region>:<account>:studio-lifecycle-config/<name>'"
            )
        return _check_unique(value, "lifecycle configuration")

    @field_validator("default_instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        if value not in STUDIO_INSTANCE_TYPES:
            raise ValueError(f"{value!r} is not an instance type Studio apps run on; allowed: {', '.join(STUDIO_INSTANCE_TYPES)}")
        return value

    @field_validator("git_repositories")
    @classmethod
    def _git(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not GIT_URL_PATTERN.match(v)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an https Git URL; allowed: URLs like 'https://github.com/org/repo.git'")
        return _check_unique(value, "repository")

    @field_validator("shared_spaces")
    @classmethod
    def _spaces(cls, value: list[SharedSpace]) -> list[SharedSpace]:
        _check_unique([space.name for space in value], "space name")
        return value

    @model_validator(mode="after")
    def _unique_users(self) -> StudioConfig:
        names = [u.name for u in self.users]
        orphans = [space.owner for space in self.shared_spaces if space.owner not in names]
        if orphans:
            raise KeyedError("shared_spaces", f"owner {orphans[0]!r} is not one of the users; allowed: {names or 'no users configured'}")
        try:
            _check_unique(names, "user name")
        except ValueError as exc:
            raise KeyedError("users", str(exc)) from None
        return self


ENDPOINT_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
S3_PREFIX_PATTERN = re.compile(r"^([A-Za-z0-9!_.*'()\-]+/)+$")
MAX_ENDPOINT_INSTANCES = 100


def _check_endpoint_name(value: str | None) -> str | None:
    if value is not None and not ENDPOINT_NAME_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a valid endpoint name; allowed: 1-63 letters, digits and '-', starting and ending with a letter or digit")
    return value


def _check_prefix(value: str) -> str:
    if not S3_PREFIX_PATTERN.match(value):
        raise ValueError(f"{value!r} is not an S3 key prefix; allowed: folder names ending in '/', e.g. 'multi-model/'")
    return value


class ScalingConfig(StrictModel):
    """Application Auto Scaling of one endpoint variant (target tracking).

    Application Auto Scaling rejects an update that changes a registered variant's instance type:
    deploy once with ``enabled: false``, then change the type, then turn it back on.
    """

    enabled: bool = True
    min_capacity: int = Field(default=1, ge=0, le=MAX_ENDPOINT_INSTANCES)
    max_capacity: int = Field(default=4, ge=1, le=MAX_ENDPOINT_INSTANCES)
    # The platform's reference settings: scale in slowly, scale out fast.
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600)

    @model_validator(mode="after")
    def _range(self) -> ScalingConfig:
        if self.min_capacity > self.max_capacity:
            raise KeyedError("min_capacity", f"{self.min_capacity} exceeds max_capacity={self.max_capacity}; allowed: min_capacity <= max_capacity")
        return self


class RolloutConfig(StrictModel):
    """How an endpoint update shifts traffic (blue/green) and when it rolls back.

    ``canary``: ``canary_percent`` of the capacity first, then the rest; ``linear``: steps of
    ``linear_step_percent``; ``all_at_once``: everything, then a bake period. Each step waits
    ``wait_seconds``; any rollback alarm in ALARM meanwhile sends all traffic back to the old fleet.
    SageMaker sizes canary and linear steps at most half the variant's instances, so they need
    at least two instances at all times (``scaling.min_capacity >= 2``).
    """

    mode: Literal["canary", "linear", "all_at_once"] = "all_at_once"
    canary_percent: int = Field(default=10, ge=1, le=50)
    linear_step_percent: int = Field(default=20, ge=10, le=50)
    wait_seconds: int = Field(default=300, ge=0, le=3600)
    # How long the old fleet stays after the shift (instant rollback still possible).
    termination_wait_seconds: int = Field(default=120, ge=0, le=3600)
    max_execution_seconds: int = Field(default=3600, ge=600, le=14400)
    # Rollback alarms: server errors per minute, and p99 model latency.
    max_5xx_errors_per_minute: int = Field(default=5, ge=1, le=100_000)
    max_model_latency_ms: int = Field(default=1000, ge=1, le=3_600_000)

    @property
    def shift_steps(self) -> int:
        """Traffic shifts in one update, each followed by ``wait_seconds``."""
        return {"canary": 2, "linear": -(-100 // self.linear_step_percent), "all_at_once": 1}[self.mode]

    @model_validator(mode="after")
    def _timeout(self) -> RolloutConfig:
        needed = self.shift_steps * self.wait_seconds + self.termination_wait_seconds
        if needed >= self.max_execution_seconds:
            raise KeyedError(
                "max_execution_seconds",
                f"{self.max_execution_seconds} s is not longer than the update's waits ({self.shift_steps} x wait_seconds="
                f"{self.wait_seconds} + termination_wait_seconds={self.termination_wait_seconds} = {needed} s); allowed: more than {needed}",
            )
        return self


class EndpointSettings(StrictModel):
    """What every endpoint section (realtime, multi_model, asynchronous) has in common."""

    enabled: bool = True
    # The stable name clients call; default ``<prefix>-<kind>``.
    endpoint_name: str | None = None
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = Field(default=1, ge=1, le=MAX_ENDPOINT_INSTANCES)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)

    @field_validator("endpoint_name")
    @classmethod
    def _endpoint_name(cls, value: str | None) -> str | None:
        return _check_endpoint_name(value)

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return _check_volume_encryptable(value, "endpoint")

    def _check_capacity(self, *, allow_zero: bool) -> None:
        if self.rollout.mode != "all_at_once" and min(self.scaling.min_capacity, self.initial_instance_count) < 2:
            raise KeyedError(
                "rollout.mode",
                f"{self.rollout.mode!r} needs at least 2 instances at all times (scaling.min_capacity="
                f"{self.scaling.min_capacity}, initial_instance_count={self.initial_instance_count}); "
                "allowed: 'all_at_once', or min_capacity and initial_instance_count of 2 or more",
            )
        if not allow_zero and self.scaling.min_capacity < 1:
            raise KeyedError("scaling.min_capacity", f"{self.scaling.min_capacity} instances; allowed: at least 1 (this endpoint cannot scale to zero)")
        if not self.scaling.min_capacity <= self.initial_instance_count <= self.scaling.max_capacity:
            raise KeyedError(
                "initial_instance_count",
                f"{self.initial_instance_count} is outside scaling.min_capacity..max_capacity "
                f"({self.scaling.min_capacity}..{self.scaling.max_capacity}); allowed: a count in that range",
            )


class RealtimeEndpointConfig(EndpointSettings):
    """The real-time endpoint serving the latest approved model package."""

    variant_name: str = "AllTraffic"
    # Share of requests (and their responses) written to the capture bucket.
    data_capture_percentage: int = Field(default=100, ge=0, le=100)
    target_invocations_per_instance: float = Field(default=70.0, gt=0, le=100_000)

    @field_validator("variant_name")
    @classmethod
    def _variant(cls, value: str) -> str:
        if not ENDPOINT_NAME_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a valid variant name; allowed: 1-63 letters, digits and '-'")
        return value

    @model_validator(mode="after")
    def _capacity(self) -> RealtimeEndpointConfig:
        self._check_capacity(allow_zero=False)
        return self


class MultiModelEndpointConfig(EndpointSettings):
    """One endpoint hosting every model archive under ``model_data_prefix`` of the models bucket."""

    model_data_prefix: str = "multi-model/"
    target_invocations_per_instance: float = Field(default=70.0, gt=0, le=100_000)

    @field_validator("model_data_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _check_prefix(value)

    @model_validator(mode="after")
    def _capacity(self) -> MultiModelEndpointConfig:
        self._check_capacity(allow_zero=False)
        return self


class AsyncEndpointConfig(EndpointSettings):
    """Asynchronous endpoint: requests and results in S3, completion notices on SNS.

    ``scaling.min_capacity: 0`` lets it scale to zero when the queue is empty; a request then
    waits for an instance to start.
    """

    max_concurrent_invocations_per_instance: int = Field(default=4, ge=1, le=1000)
    data_capture_percentage: int = Field(default=100, ge=0, le=100)
    target_backlog_per_instance: float = Field(default=5.0, gt=0, le=100_000)

    @model_validator(mode="after")
    def _capacity(self) -> AsyncEndpointConfig:
        self._check_capacity(allow_zero=True)
        return self


class BatchScoringConfig(StrictModel):
    """A batch-scoring pipeline: one transform job over headerless CSV files with the approved model."""

    enabled: bool = True
    instance_type: str = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=MAX_ENDPOINT_INSTANCES)
    max_payload_mb: int = Field(default=6, ge=1, le=100)
    # Parallel requests per instance; 0 lets SageMaker choose.
    max_concurrent_transforms: int = Field(default=0, ge=0, le=1000)
    # EventBridge Scheduler expression; none means started by hand or by another system.
    schedule: str | None = None

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return _check_volume_encryptable(value, "transform")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return _check_schedule(value)

    @model_validator(mode="after")
    def _payload(self) -> BatchScoringConfig:
        if self.max_concurrent_transforms * self.max_payload_mb > 100:
            raise KeyedError(
                "max_concurrent_transforms",
                f"{self.max_concurrent_transforms} x max_payload_mb={self.max_payload_mb} exceeds 100 MB; "
                "allowed: max_concurrent_transforms x max_payload_mb <= 100 (SageMaker's limit)",
            )
        return self


class ServingConfig(StrictModel):
    """Endpoints and batch scoring for the latest approved model package (recorded in CDK context)."""

    enabled: bool = True
    realtime: RealtimeEndpointConfig = Field(default_factory=RealtimeEndpointConfig)
    multi_model: MultiModelEndpointConfig = Field(default_factory=MultiModelEndpointConfig)
    asynchronous: AsyncEndpointConfig = Field(default_factory=AsyncEndpointConfig)
    batch: BatchScoringConfig = Field(default_factory=BatchScoringConfig)

    def endpoint_names(self, resource_prefix: str) -> dict[str, str]:
        """Section -> the name each enabled endpoint gets: its ``endpoint_name`` or ``<prefix>-<kind>``."""
        sections = {"realtime": (self.realtime, "realtime"), "multi_model": (self.multi_model, "multi-model"),
                    "asynchronous": (self.asynchronous, "async")}  # fmt: skip
        return {key: e.endpoint_name or f"{resource_prefix}-{kind}" for key, (e, kind) in sections.items() if e.enabled}


METRIC_NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9.\-_/#:]{1,255}$")


class DriftCheckConfig(StrictModel):
    """The platform's own drift check (no Model Monitor): a processing job comparing captured requests
    with the training baseline profile, on a schedule."""

    enabled: bool = True
    # EventBridge Scheduler expression; hourly, like the platform's reference setup.
    schedule: str = "cron(5 * * * ? *)"
    instance_type: str = "ml.m5.large"
    # A feature drifts when its population stability index (or, numeric, its KS distance) exceeds these.
    psi_threshold: float = Field(default=0.2, gt=0, le=10)
    ks_threshold: float = Field(default=0.1, gt=0, le=1)
    metric_namespace: str = "MlPlatform/Drift"

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return _check_schedule(value)

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return _check_volume_encryptable(value, "processing")

    @field_validator("metric_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not METRIC_NAMESPACE_PATTERN.match(value) or value.startswith("AWS/"):
            raise ValueError(f"{value!r} is not a custom CloudWatch namespace; allowed: 1-255 of A-Z a-z 0-9 . - _ / # :, not starting with 'AWS/'")
        return value


class AlarmThresholds(StrictModel):
    """When the monitoring alarms fire (each evaluated per endpoint)."""

    drifted_features: int = Field(default=1, ge=1, le=1000)
    server_error_rate_percent: float = Field(default=1.0, gt=0, le=100)
    client_error_rate_percent: float = Field(default=5.0, gt=0, le=100)
    model_latency_p99_ms: int = Field(default=500, ge=1, le=3_600_000)
    cpu_utilization_percent: float = Field(default=80.0, gt=0, le=100)
    memory_utilization_percent: float = Field(default=85.0, gt=0, le=100)
    # A real-time endpoint that serves nothing this long is probably cut off from its clients; 0 = no alarm.
    invocations_absent_minutes: int = Field(default=60, ge=0, le=1440)
    # An asynchronous request waiting longer than this in the queue means too little capacity.
    async_oldest_request_minutes: int = Field(default=30, ge=1, le=1440)

    @field_validator("invocations_absent_minutes")
    @classmethod
    def _absent(cls, value: int) -> int:
        if value % 5:
            raise ValueError(f"{value} is not a multiple of 5; allowed: 0 (off) or 5-1440 in steps of 5 minutes")
        return value


class ModelMonitorConfig(StrictModel):
    """SageMaker Model Monitor data-quality schedules, for accounts that still have Model Monitor."""

    enabled: bool = False
    instance_type: str = "ml.m5.xlarge"

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return _check_volume_encryptable(value, "processing")


class BudgetConfig(StrictModel):
    """A monthly AWS Budget on the environment's cost-allocation tag."""

    enabled: bool = True
    monthly_limit_usd: float = Field(default=1000.0, gt=0, le=10_000_000)
    forecast_alert_percent: float = Field(default=80.0, gt=0, le=1000)
    actual_alert_percent: float = Field(default=100.0, gt=0, le=1000)


class MonitoringConfig(StrictModel):
    """Alarms, dashboard, drift monitoring, retraining on drift and the budget."""

    # Subscribed to every alarm and budget alert.
    notification_emails: list[str] = Field(default_factory=list)
    drift_check: DriftCheckConfig = Field(default_factory=DriftCheckConfig)
    alarms: AlarmThresholds = Field(default_factory=AlarmThresholds)
    # Start the model-build pipeline when the real-time endpoint's drift alarm goes to ALARM.
    retrain_on_drift: bool = False
    model_monitor: ModelMonitorConfig = Field(default_factory=ModelMonitorConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)

    @field_validator("notification_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return _check_emails(value)


class PlatformConfig(StrictModel):
    """One environment of the platform (``config/environments/<name>.yaml``)."""

    name: str = SANDBOX
    account: str | None = None
    region: str | None = None
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    # Cost-allocation tags applied to every taggable resource.
    tags: dict[str, str] = Field(default_factory=dict)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    studio: StudioConfig = Field(default_factory=StudioConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    # What CloudFormation does with buckets, keys and log groups when the stack is deleted.
    stateful_resources_on_delete: Literal["retain", "destroy"] = "retain"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENV_NAME_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a valid environment name; allowed: {ENV_NAME_ALLOWED}")
        return value

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        return value if value is None else check_account(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return value if value is None else check_region(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        limit = TAGS_PER_RESOURCE - PLATFORM_TAGS_PER_RESOURCE
        if len(value) > limit:
            raise ValueError(
                f"{len(value)} tags; allowed: at most {limit} (AWS allows {TAGS_PER_RESOURCE} per resource, "
                f"the platform sets up to {PLATFORM_TAGS_PER_RESOURCE} itself)"
            )
        chars = "letters, digits, spaces or _.:/=+-@"
        for key, tag_value in value.items():
            if not 1 <= len(key) <= TAG_KEY_MAX or not _tag_chars_ok(key):
                raise ValueError(f"tag key {key!r} is invalid; allowed: 1-{TAG_KEY_MAX} {chars}")
            if key.lower().startswith(RESERVED_TAG_PREFIXES):
                raise ValueError(
                    f"tag key {key!r} is reserved; allowed: keys not starting with {', '.join(map(repr, RESERVED_TAG_PREFIXES))} "
                    "(the platform sets 'ml-platform:environment' itself; the budget filters on it)"
                )
            if len(tag_value) > TAG_VALUE_MAX or not _tag_chars_ok(tag_value):
                raise ValueError(f"tag {key!r} has the value {tag_value!r}; allowed: 0-{TAG_VALUE_MAX} {chars}")
        _check_unique(list(value), "tag key (case-insensitive)")
        return value

    @model_validator(mode="after")
    def _environment_rules(self) -> PlatformConfig:
        if self.name != SANDBOX and (self.account is None or self.region is None):
            missing = " and ".join(k for k in ("account", "region") if getattr(self, k) is None)
            raise KeyedError(missing.split(" ")[0], f"missing for environment {self.name!r} (no {missing}); allowed: only the sandbox may leave account and region unset")
        if (self.account is None) != (self.region is None):
            raise KeyedError("region" if self.region is None else "account", "only one of account and region is set; allowed: both or neither")
        if self.stateful_resources_on_delete == "destroy" and self.name != SANDBOX:
            raise KeyedError(
                "stateful_resources_on_delete",
                f"'destroy' in environment {self.name!r}; allowed: 'destroy' only in the sandbox, 'retain' everywhere"
            )
        if self.account is not None and self.account in self.pipeline.registry_shared_with_accounts:
            raise KeyedError(
                "pipeline.registry_shared_with_accounts",
                f"lists the environment's own account {self.account}; allowed: other accounts only",
            )
        realtime = self.serving.realtime
        if not (self.serving.enabled and realtime.enabled and realtime.data_capture_percentage > 0):
            for key, on in (("monitoring.retrain_on_drift", self.monitoring.retrain_on_drift),
                            ("monitoring.model_monitor.enabled", self.monitoring.model_monitor.enabled)):  # fmt: skip
                if on:
                    raise KeyedError(key, "is true but the real-time endpoint captures no traffic; allowed: true only with "
                                     "serving.realtime enabled and data_capture_percentage above 0")
        if self.monitoring.retrain_on_drift and not self.monitoring.drift_check.enabled:
            raise KeyedError("monitoring.retrain_on_drift", "is true but monitoring.drift_check.enabled is false; allowed: retraining on drift needs the drift check")
        existing = self.network.existing_vpc
        if existing is not None and self.region is not None:
            foreign = [az for az in existing.availability_zones if not az.startswith(self.region)]
            if foreign:
                raise KeyedError("network.existing_vpc.availability_zones", f"{foreign} are not in region {self.region!r}; allowed: zones of that region")
        new = self.network.new_vpc
        if self.studio.enabled and new is not None and new.nat_gateways == 0:
            public = [url for url in self.studio.git_repositories if is_public_git_host(git_host(url))]
            if public:
                raise KeyedError(
                    "studio.git_repositories",
                    f"{public} are on the internet, but network.new_vpc.nat_gateways is 0 (VPC-only, no route out), "
                    "so Studio cannot clone them; allowed: repositories on hosts reachable from the VPC, or "
                    "nat_gateways of 1 or more",
                )
        if new is not None and new.availability_zones and self.region is not None:
            foreign = [az for az in new.availability_zones if not az.startswith(self.region)]
            if foreign:
                raise KeyedError("network.new_vpc.availability_zones", f"{foreign} are not in region {self.region!r}; allowed: zones of that region")
        self._check_arns()
        self._check_endpoint_names()
        return self

    def git_reachability_warnings(self) -> list[str]:
        """Git repositories Studio may not reach from the VPC: said at synth, as no config rule can know.

        Hosts on the internet in an existing VPC (it may or may not route out) and any other host in
        a new VPC without NAT (reachable only if it is inside the VPC or routed to it).
        """
        if not self.studio.enabled:
            return []
        warnings = []
        for url in self.studio.git_repositories:
            host = git_host(url)
            if self.network.existing_vpc is not None and is_public_git_host(host):
                warnings.append(
                    f"studio.git_repositories: {url} is on the internet; Studio clones it only if the existing VPC "
                    f"{self.network.existing_vpc.vpc_id} routes to it (NAT gateway or proxy)"
                )
            elif self.network.new_vpc is not None and self.network.new_vpc.nat_gateways == 0 and not is_public_git_host(host):
                warnings.append(
                    f"studio.git_repositories: {url}: the VPC has no NAT gateway, so Studio clones it only if "
                    f"{host} is inside the VPC or routed to it"
                )
        return warnings
    def _check_arns(self) -> None:
        """Lifecycle configurations must live where the domain does: its partition, region and account."""
        for key in ("jupyterlab_lifecycle_config_arns", "code_editor_lifecycle_config_arns"):
            for arn in getattr(self.studio, key):
                parts = LIFECYCLE_CONFIG_ARN_PATTERN.match(arn)
                expected = {"region": self.region, "partition": _partition_of(self.region) if self.region else None, "account": self.account}
                wrong = [f"{part} {parts[part]!r}" for part, want in expected.items() if want is not None and parts[part] != want]
                if wrong:
                    raise KeyedError(
                        f"studio.{key}",
                        f"{arn!r} has {', '.join(wrong)}; allowed: a lifecycle configuration of the environment "
                        f"(partition {expected['partition']!r}, region {self.region!r}, account {self.account!r})",
                    )

    def _check_endpoint_names(self) -> None:
        """Explicit and default endpoint names may not collide (SageMaker compares them case-insensitively)."""
        if not self.serving.enabled:
            return
        seen: dict[str, str] = {}
        for section, name in self.serving.endpoint_names(self.resource_prefix).items():
            if name.lower() in seen:
                raise KeyedError(
                    f"serving.{section}.endpoint_name",
                    f"{name!r} is also the name of serving.{seen[name.lower()]}; allowed: a distinct name per endpoint "
                    f"(defaults: {self.resource_prefix}-realtime, -multi-model, -async)",
                )
            seen[name.lower()] = section

    @property
    def is_sandbox(self) -> bool:
        return self.name == SANDBOX

    @property
    def resource_prefix(self) -> str:
        """Prefix for the few names clients rely on (pipelines, log groups, parameters)."""
        return f"mlp-{self.name}"
