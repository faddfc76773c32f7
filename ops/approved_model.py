"""Record the newest *Approved* model package of a model package group in CDK context.

Run by an operator with credentials::

    python -m ops.approved_model --env dev            # or: make approved-model ENV=dev

It asks SageMaker for the group's approved versioned packages (every page), picks
the one created last (ties: the highest version), describes it, and writes it to
``cdk.context.json`` under ``ml-platform:<env>:approved-model-package``::

    {"arn": "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>",
     "version": <version>, "group": "<group>", "creation_time": "2024-05-01T12:00:00Z",
     # only when the package carries SageMaker Model Monitor's data-quality baseline:
     "data_quality_statistics": "s3://<bucket>/.../statistics.json",
     "data_quality_constraints": "s3://<bucket>/.../constraints.json",
     # only when the package belongs to another account than the environment's (see below):
     "model_data_url": "s3://<producer bucket>/.../model.tar.gz",
     "model_data_key_arn": "arn:aws:kms:<region>:<producer account>:key/<id>",
     "drift_baseline_url": "s3://<producer bucket>/.../baseline.json"}

The two ``data_quality_*`` keys are recorded when the package registers both
``DriftCheckBaselines.ModelDataQuality.Statistics`` and ``.Constraints`` (the model-build
pipeline with ``data_quality_baseline=True``); the monitoring stack's Model Monitor job
definition uses them. The default layout registers only ``Statistics`` (the platform's own
``baseline.json`` profile, not Model Monitor's format): then neither key is recorded.

A package registered in another account (its ARN names an account other than the environment's
``account``) is served only if the environment's roles may read what it points to: the three
cross-account keys record the model archive, the producer's KMS key it is encrypted with (from
``HeadObject``, which needs no decrypt) and the feature profile the drift check reads, so the
serving stack can grant exactly those at synth. The producer shares them
(``pipeline.registry_shared_with_accounts``).

The CDK CLI reads that file on every synth, so synth itself never calls AWS; the app
reads the value back with :func:`read_recorded`.

Exit codes: 0 recorded (or already recorded), 1 no approved package in the group
(the recorded value is kept unless ``--clear``), 2 any other error (usage,
configuration, group not found, an AWS call failed (listing or describing the
package or its archive), the package is no longer Approved when described, a baseline or
archive URI that is not ``s3://``, an archive of another account without a KMS key, unreadable
context file).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent

CONTEXT_KEY_TEMPLATE = "ml-platform:{env}:approved-model-package"
DEFAULT_CONTEXT_FILE = ROOT / "cdk.context.json"

PACKAGE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9-]+/\d+$")
GROUP_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):\d{12}:model-package-group/(?P<name>[A-Za-z0-9-]+)$")
RECORD_KEYS = ("arn", "version", "group", "creation_time")
# Optional, both or neither: Model Monitor's data-quality baseline registered with the package.
BASELINE_KEYS = ("data_quality_statistics", "data_quality_constraints")
# Only for a package of another account: what the serving stack grants its roles on the producer's side.
SOURCE_KEYS = ("model_data_url", "model_data_key_arn", "drift_baseline_url")
S3_URI_PATTERN = re.compile(r"^s3://[a-z0-9.\-]{3,63}/.+$")
KMS_KEY_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_ALLOWED_KEYS = (
    f"the keys {', '.join(RECORD_KEYS)}, plus optionally both {' and '.join(BASELINE_KEYS)}, "
    f"and for a package of another account {', '.join(SOURCE_KEYS)}"
)
_S3_URI_ALLOWED = "an s3:// URI 's3://<bucket>/<key>' (bucket: 3-63 lowercase letters, digits, '.', '-')"

EXIT_OK = 0
EXIT_NONE_APPROVED = 1
EXIT_ERROR = 2

# Error codes SageMaker answers with when a model package group does not exist.
_NOT_FOUND_CODES = frozenset({"ValidationException", "ResourceNotFound", "ResourceNotFoundException"})

ClientFactory = Callable[[str, "str | None"], Any]


class GroupNotFoundError(Exception):
    """The model package group does not exist (or is not visible to the caller)."""


def context_key(env: str) -> str:
    """The CDK context key holding environment ``env``'s approved model package."""
    return CONTEXT_KEY_TEMPLATE.format(env=env)


# --- finding the package -----------------------------------------------------------------


def latest_approved(client: Any, group: str) -> dict | None:
    """The newest approved versioned package of ``group`` (a name or ARN), or None.

    The result has the recorded shape without the optional baseline keys:
    ``{"arn", "version", "group", "creation_time"}`` (see :func:`data_quality_baseline`).
    Raises :class:`GroupNotFoundError` when the group does not exist.
    """
    from botocore.exceptions import ClientError

    candidates: list[tuple[datetime, int, dict]] = []
    paginator = client.get_paginator("list_model_packages")
    try:
        pages = paginator.paginate(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            ModelPackageType="Versioned",
        )
        for page in pages:
            for summary in page.get("ModelPackageSummaryList", []):
                # Defence in depth: the server-side filter is not the only thing standing
                # between a rejected model and production.
                if summary.get("ModelApprovalStatus") != "Approved":
                    continue
                candidates.append(_candidate(summary, group))
    except ClientError as exc:
        if _error_code(exc) in _NOT_FOUND_CODES:
            raise GroupNotFoundError(_not_found_message(group, exc)) from None
        raise
    if not candidates:
        # An empty list does not prove the group exists: ask, so a typo is not reported as "nothing approved".
        _require_group(client, group)
        return None
    return max(candidates, key=lambda c: (c[0], c[1]))[2]


def _candidate(summary: Mapping, group: str) -> tuple[datetime, int, dict]:
    arn = summary.get("ModelPackageArn", "")
    if not isinstance(arn, str) or not PACKAGE_ARN_PATTERN.fullmatch(arn):
        raise ValueError(f"SageMaker listed an approved package whose ARN {arn!r} is not a versioned model package ARN")
    created = summary.get("CreationTime")
    if not isinstance(created, datetime):
        raise ValueError(f"SageMaker listed approved package {arn} without a creation time")
    created = _as_utc(created)
    version = int(arn.rsplit("/", 1)[1])
    package = {
        "arn": arn,
        "version": version,
        "group": _group_name(summary.get("ModelPackageGroupName") or group),
        "creation_time": _iso_utc(created),
    }
    return created, version, package


def describe_approved(client: Any, arn: str) -> dict:
    """DescribeModelPackage of ``arn``; ValueError when it is no longer Approved (its status changed after the listing)."""
    response = client.describe_model_package(ModelPackageName=arn)
    status = response.get("ModelApprovalStatus")
    if status != "Approved":
        raise ValueError(f"model package {arn} is no longer Approved (now {status or 'without an approval status'}); run again")
    return response


def data_quality_baseline(client: Any, arn: str) -> dict:
    """Model Monitor's data-quality baseline registered with package ``arn``, as the optional record keys.

    ``{"data_quality_statistics": "s3://...", "data_quality_constraints": "s3://..."}`` when the
    package's ``DriftCheckBaselines.ModelDataQuality`` has both a ``Statistics`` and a
    ``Constraints`` S3 URI, else ``{}``: the default layout registers only ``Statistics`` (the
    platform's ``baseline.json`` profile), which Model Monitor cannot use.

    Raises ValueError when the package is no longer Approved (its status changed after the
    listing) or a baseline URI is not an ``s3://`` URI; botocore errors pass through.
    """
    return baseline_of(describe_approved(client, arn))


def baseline_of(package: Mapping) -> dict:
    """The ``data_quality_*`` record keys of a DescribeModelPackage answer (see :func:`data_quality_baseline`)."""
    arn = package.get("ModelPackageArn")
    quality = (package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}
    uris = {
        "data_quality_statistics": ("Statistics", (quality.get("Statistics") or {}).get("S3Uri")),
        "data_quality_constraints": ("Constraints", (quality.get("Constraints") or {}).get("S3Uri")),
    }
    if not all(uri for _, uri in uris.values()):
        return {}
    bad = [
        f"DriftCheckBaselines.ModelDataQuality.{field}.S3Uri is {uri!r}"
        for field, uri in uris.values()
        if not S3_URI_PATTERN.fullmatch(uri)
    ]
    if bad:
        raise ValueError(f"model package {arn}: {'; '.join(bad)}; allowed: {_S3_URI_ALLOWED}")
    return {key: uri for key, (_, uri) in uris.items()}


# Where the drift check finds the feature profile (pipeline_code/steps/drift_check.py, same order).
DRIFT_BASELINE_FIELDS = (
    ("ModelMetrics", "ModelDataQuality", "Statistics"),
    ("DriftCheckBaselines", "ModelDataQuality", "Statistics"),
)


def package_account(arn: str) -> str:
    return arn.split(":")[4]


def producer_sources(package: Mapping, s3: Any) -> dict:
    """The ``model_data_url``, ``model_data_key_arn`` and ``drift_baseline_url`` record keys of a package.

    ``package`` is a DescribeModelPackage answer; ``s3`` an S3 client that may read the archive's
    metadata (HeadObject). ValueError when the package names no ``s3://`` archive or the archive is
    not encrypted with a KMS key; botocore errors pass through.
    """
    arn = package.get("ModelPackageArn")
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    url = containers[0].get("ModelDataUrl")
    if not isinstance(url, str) or not S3_URI_PATTERN.fullmatch(url):
        raise ValueError(
            f"model package {arn}: InferenceSpecification.Containers[0].ModelDataUrl is {url!r}; allowed: {_S3_URI_ALLOWED}"
        )
    bucket, key = url[len("s3://"):].split("/", 1)
    head = s3.head_object(Bucket=bucket, Key=key)
    key_arn = head.get("SSEKMSKeyId")
    if head.get("ServerSideEncryption") != "aws:kms" or not KMS_KEY_ARN_PATTERN.fullmatch(key_arn or ""):
        raise ValueError(
            f"model package {arn}: archive {url} is not encrypted with a KMS key (ServerSideEncryption "
            f"{head.get('ServerSideEncryption')!r}, SSEKMSKeyId {key_arn!r}); allowed: SSE-KMS, as the platform's model bucket writes"
        )
    sources = {"model_data_url": url, "model_data_key_arn": key_arn}
    for path in DRIFT_BASELINE_FIELDS:
        value: Any = package
        for name in path:
            value = value.get(name) if isinstance(value, Mapping) else None
        uri = value.get("S3Uri") if isinstance(value, Mapping) else None
        if uri:
            if not S3_URI_PATTERN.fullmatch(uri):
                raise ValueError(f"model package {arn}: {'.'.join(path)}.S3Uri is {uri!r}; allowed: {_S3_URI_ALLOWED}")
            sources["drift_baseline_url"] = uri
            break
    return sources


def _require_group(client: Any, group: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as exc:
        if _error_code(exc) in _NOT_FOUND_CODES:
            raise GroupNotFoundError(_not_found_message(group, exc)) from None
        raise


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _not_found_message(group: str, exc: Exception) -> str:
    detail = getattr(exc, "response", {}).get("Error", {}).get("Message", "") or str(exc)
    return f"model package group {group!r} not found ({_error_code(exc)}: {detail})"


def _group_name(group: str) -> str:
    match = GROUP_ARN_PATTERN.match(group)
    return match["name"] if match else group


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _iso_utc(value: datetime) -> str:
    return _as_utc(value).isoformat().replace("+00:00", "Z")


# --- the recorded value ------------------------------------------------------------------


def read_recorded(context: Mapping, env: str) -> dict | None:
    """Environment ``env``'s recorded approved package from CDK ``context``, or None if none is recorded.

    Raises ValueError naming the context key, every problem and what is allowed when the value is malformed.
    """
    key = context_key(env)
    value = context.get(key)
    if value is None:
        return None
    return _validated(value, key, env)


def _validated(value: Any, key: str, env: str) -> dict:
    how = f"as recorded by `python -m ops.approved_model --env {env}`"
    if not isinstance(value, Mapping):
        raise ValueError(
            f"context key {key!r}: got {value!r} ({type(value).__name__}); "
            f"allowed: a mapping with keys {', '.join(RECORD_KEYS)} "
            f"(plus optionally both {' and '.join(BASELINE_KEYS)}), {how}"
        )
    problems = []
    missing = [k for k in RECORD_KEYS if k not in value]
    if missing:
        problems.append(f"missing key(s) {', '.join(missing)}; allowed: {_ALLOWED_KEYS}")
    unknown = sorted(str(k) for k in value if k not in (*RECORD_KEYS, *BASELINE_KEYS, *SOURCE_KEYS))
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}; allowed: {_ALLOWED_KEYS}")
    arn, version, group, created = (value.get(k) for k in RECORD_KEYS)
    arn_ok = isinstance(arn, str) and PACKAGE_ARN_PATTERN.fullmatch(arn)
    if "arn" in value and not arn_ok:
        problems.append(
            f"arn: got {arn!r}; allowed: a versioned model package ARN "
            "'arn:aws:sagemaker:<region>:<12-digit account>:model-package/<group>/<version>'"
        )
    if "version" in value:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            problems.append(f"version: got {version!r}; allowed: a positive integer")
        elif arn_ok and int(arn.rsplit("/", 1)[1]) != version:
            problems.append(f"version: got {version!r} but the arn names version {arn.rsplit('/', 1)[1]}; allowed: the arn's version")
    if "group" in value:
        if not isinstance(group, str) or not re.fullmatch(r"[A-Za-z0-9-]+", group):
            problems.append(f"group: got {group!r}; allowed: a model package group name (letters, digits, '-')")
        elif arn_ok and arn.split("/")[-2].lower() != group.lower():
            problems.append(f"group: got {group!r} but the arn names group {arn.split('/')[-2]!r}; allowed: the arn's group")
    if "creation_time" in value and _parse_utc(created) is None:
        problems.append(f"creation_time: got {created!r}; allowed: an ISO 8601 UTC timestamp such as '2024-05-01T12:00:00Z'")
    baseline = [k for k in BASELINE_KEYS if k in value]
    if len(baseline) == 1:
        absent = next(k for k in BASELINE_KEYS if k not in value)
        problems.append(
            f"{absent}: missing while {baseline[0]} is recorded; "
            f"allowed: both {' and '.join(BASELINE_KEYS)} (Model Monitor's baseline) or neither"
        )
    for k in baseline:
        if not isinstance(value[k], str) or not S3_URI_PATTERN.fullmatch(value[k]):
            problems.append(f"{k}: got {value[k]!r}; allowed: {_S3_URI_ALLOWED}")
    sources = [k for k in SOURCE_KEYS if k in value]
    for k in sources:
        pattern, allowed = (
            (KMS_KEY_ARN_PATTERN, "a KMS key ARN 'arn:aws:kms:<region>:<account>:key/<id>'")
            if k == "model_data_key_arn"
            else (S3_URI_PATTERN, _S3_URI_ALLOWED)
        )
        if not isinstance(value[k], str) or not pattern.fullmatch(value[k]):
            problems.append(f"{k}: got {value[k]!r}; allowed: {allowed}")
    if problems:
        raise ValueError(f"context key {key!r} is malformed ({how}):\n" + "\n".join(f"  - {p}" for p in problems))
    return {k: value[k] for k in (*RECORD_KEYS, *baseline, *sources)}


def missing_for_account(record: Mapping, account: str | None) -> list[str]:
    """The cross-account keys ``record`` lacks to be served in ``account`` (none for a package of that account).

    An environment without an account (the sandbox) serves what its own account registered.
    """
    if account is None or package_account(record["arn"]) == account:
        return []
    return [k for k in ("model_data_url", "model_data_key_arn") if k not in record]


def _parse_utc(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value  # Python 3.10 does not read "Z"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0 else None


# --- the context file --------------------------------------------------------------------


def load_context(context_file: Path) -> dict:
    """The JSON object in ``context_file`` ({} when it does not exist or is empty)."""
    path = Path(context_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}; allowed: a JSON object of context keys")
    return data


def write_context(context_file: Path, data: Mapping) -> bool:
    """Write ``data`` (sorted keys, 2-space indent, trailing newline) atomically; False if the bytes were already there."""
    path = Path(context_file)
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    encoded = text.encode("utf-8")
    try:
        if path.read_bytes() == encoded:
            return False
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(encoded)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600; keep the file readable as before
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return True


def record(context_file: Path, env: str, package: Mapping) -> None:
    """Record ``package`` as ``env``'s approved model package in ``context_file``, keeping every other key."""
    key = context_key(env)
    value = _validated(package, key, env)  # never write what the serving stack would refuse
    data = load_context(context_file)
    data[key] = value
    write_context(context_file, data)


def forget(context_file: Path, env: str) -> Any:
    """Remove ``env``'s recorded package from ``context_file``; the removed value (None if there was none)."""
    key = context_key(env)
    data = load_context(context_file)
    if key not in data:
        return None
    previous = data.pop(key)
    write_context(context_file, data)
    return previous


# --- the command -------------------------------------------------------------------------


def default_client_factory(region: str, profile: str | None, service: str = "sagemaker") -> Any:
    """A ``service`` client for ``region`` from the default credential chain (or ``profile``)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(profile_name=profile, region_name=region)
    return session.client(service, config=Config(retries={"mode": "standard", "max_attempts": 5}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops.approved_model",
        description="Record the newest Approved model package of a model package group in CDK context "
        f"(key {CONTEXT_KEY_TEMPLATE.format(env='<env>')}), so synth never calls AWS. When the package "
        "carries SageMaker Model Monitor's data-quality baseline (DriftCheckBaselines.ModelDataQuality "
        "Statistics and Constraints) its two S3 URIs are recorded too, for the Model Monitor schedule.",
        epilog="Exit codes: 0 recorded, 1 no approved package (recorded value kept unless --clear), 2 error.",
    )
    parser.add_argument("--env", required=True, help="environment: config/environments/<env>.yaml or 'sandbox'")
    parser.add_argument("--group", help="model package group name or ARN (default: mlp-<env>-models)")
    parser.add_argument("--region", help="AWS region (default: the environment's configured region)")
    parser.add_argument("--profile", help="AWS named profile (default: the default credential chain)")
    parser.add_argument(
        "--context-file",
        type=Path,
        default=DEFAULT_CONTEXT_FILE,
        help="CDK context file to update (default: cdk.context.json at the repository root)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be recorded; write nothing")
    parser.add_argument(
        "--clear",
        action="store_true",
        help="when the group has no approved package, remove the previously recorded value",
    )
    return parser


def main(
    argv: list[str] | None = None, *, client_factory: ClientFactory | None = None, s3_client_factory: ClientFactory | None = None
) -> int:
    """Run the command; returns the exit code.

    ``client_factory`` makes the SageMaker client, ``s3_client_factory`` the S3 client (only for a
    package of another account). Default: boto3 clients from the default credential chain.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error (argparse has printed it)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR

    try:
        config = load_config(args.env)
    except ConfigError as exc:
        return _fail(str(exc))
    group = args.group or f"{config.resource_prefix}-models"
    region = args.region or config.region
    if not region:
        return _fail(f"no region for environment {config.name!r}: it configures none; pass --region")
    group_arn = GROUP_ARN_PATTERN.match(group)
    if group.startswith("arn:") and not group_arn:
        return _fail(
            f"--group {group!r} is not a model package group ARN; "
            "allowed: a group name or 'arn:aws:sagemaker:<region>:<account>:model-package-group/<name>'"
        )
    if group_arn and group_arn["region"] != region:
        return _fail(f"group {group} is in region {group_arn['region']}, not {region}; pass --region {group_arn['region']}")

    context_file: Path = args.context_file
    key = context_key(config.name)
    try:
        previous = load_context(context_file).get(key)  # an unreadable file stops us before any AWS call
    except ValueError as exc:
        return _fail(str(exc))

    try:
        client = (client_factory or default_client_factory)(region, args.profile)
        package = latest_approved(client, group)
    except GroupNotFoundError as exc:
        return _fail(f"{exc}; check --group, --region and the account your credentials belong to")
    except (BotoCoreError, ClientError, ValueError) as exc:
        return _fail(f"looking up approved packages of {group!r} in {region} failed: {exc}")
    if package is not None:
        try:
            described = describe_approved(client, package["arn"])
            package = {**package, **baseline_of(described)}
        except (BotoCoreError, ClientError, ValueError) as exc:
            return _fail(f"describing model package {package['arn']} failed: {exc}")
        if config.account is not None and package_account(package["arn"]) != config.account:
            try:
                s3 = (s3_client_factory or (lambda r, p: default_client_factory(r, p, "s3")))(region, args.profile)
                package = {**package, **producer_sources(described, s3)}
            except (BotoCoreError, ClientError, ValueError) as exc:
                return _fail(
                    f"reading where model package {package['arn']} of account {package_account(package['arn'])} "
                    f"keeps its archive failed: {exc}; that account must share it (pipeline.registry_shared_with_accounts)"
                )

    where = _display(context_file)
    if package is None:
        print(f"no approved model package in group {group}", file=sys.stderr)
        if previous is None:
            return EXIT_NONE_APPROVED
        if not args.clear:
            print(f"kept {key} = {_describe(previous)} in {where} (pass --clear to remove it)", file=sys.stderr)
        elif args.dry_run:
            print(f"would remove {key} = {_describe(previous)} from {where} (dry run)", file=sys.stderr)
        else:
            try:
                forget(context_file, config.name)
            except (OSError, ValueError) as exc:
                return _fail(f"could not update {where}: {exc}")
            print(f"removed {key} = {_describe(previous)} from {where}", file=sys.stderr)
        return EXIT_NONE_APPROVED

    if previous == package:
        change = " (unchanged)"
    elif previous is not None:
        change = f" (previously {_describe(previous)})"
    else:
        change = ""
    summary = f"{key} = {_describe(package)}"
    if args.dry_run:
        print(f"would record {summary} in {where}{change} (dry run)")
        return EXIT_OK
    try:
        record(context_file, config.name, package)
    except (OSError, ValueError) as exc:
        return _fail(f"could not update {where}: {exc}")
    print(f"recorded {summary} in {where}{change}")
    return EXIT_OK


def _describe(value: Any) -> str:
    if isinstance(value, Mapping) and isinstance(value.get("arn"), str):
        details = f"version {value.get('version')}, created {value.get('creation_time')}"
        if any(k in value for k in BASELINE_KEYS):
            details += (
                f", Model Monitor baseline statistics {value.get('data_quality_statistics')}"
                f" constraints {value.get('data_quality_constraints')}"
            )
        if "model_data_url" in value:
            details += f", archive {value['model_data_url']} with key {value.get('model_data_key_arn')}"
        return f"{value['arn']} ({details})"
    return json.dumps(value, sort_keys=True)


def _display(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
