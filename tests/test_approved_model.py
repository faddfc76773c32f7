"""ops.approved_model: the newest Approved package, found offline with botocore's Stubber and recorded in CDK context."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from ops import approved_model
from ops.approved_model import (
    BASELINE_KEYS,
    GroupNotFoundError,
    context_key,
    data_quality_baseline,
    latest_approved,
    main,
    read_recorded,
    record,
)
from tests.conftest import offline_client

ACCOUNT = "111111111111"
REGION = "eu-west-1"
GROUP = "mlp-dev-models"
KEY = "ml-platform:dev:approved-model-package"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
RUN = "s3://mlp-dev-reports-111111111111/mlp-dev-model-build/run-1"
# The default layout: the preprocessing step's own feature profile, not Model Monitor's format.
PROFILE = "s3://mlp-dev-artifacts-111111111111/model-build/run-1/baseline/baseline.json"
# data_quality_baseline=True: Model Monitor's pair from the DataQualityBaseline step.
STATISTICS = f"{RUN}/data-quality-baseline/statistics.json"
CONSTRAINTS = f"{RUN}/data-quality-baseline/constraints.json"
BASELINE = {"data_quality_statistics": STATISTICS, "data_quality_constraints": CONSTRAINTS}


def package_arn(version: int, group: str = GROUP) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"


def summary(version: int, hours: float, status: str = "Approved", group: str = GROUP) -> dict:
    """A ListModelPackages summary for ``version`` created ``hours`` after T0."""
    return {
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": package_arn(version, group),
        "CreationTime": T0 + timedelta(hours=hours),
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
    }


def recorded(version: int, hours: float, group: str = GROUP) -> dict:
    created = (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"arn": package_arn(version, group), "version": version, "group": group, "creation_time": created}


def list_params(group: str = GROUP, token: str | None = None) -> dict:
    params = {
        "ModelPackageGroupName": group,
        "ModelApprovalStatus": "Approved",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "ModelPackageType": "Versioned",
    }
    if token:
        params["NextToken"] = token
    return params


@pytest.fixture
def client():
    """A SageMaker client that never leaves the process (dummy credentials, every call stubbed)."""
    return offline_client("sagemaker", REGION)


@pytest.fixture
def stub(client):
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def add_pages(stub: Stubber, *pages: list[dict], group: str = GROUP) -> None:
    """Queue ListModelPackages pages; every page but the last hands out a NextToken."""
    for i, page in enumerate(pages):
        response: dict = {"ModelPackageSummaryList": page}
        if i < len(pages) - 1:
            response["NextToken"] = f"token-{i + 1}"
        stub.add_response("list_model_packages", response, list_params(group, f"token-{i}" if i else None))


def metrics(uri: str) -> dict:
    return {"ContentType": "application/json", "S3Uri": uri}


# DescribeModelPackage's DriftCheckBaselines as pipeline_code/pipeline.py registers them.
PROFILE_ONLY = {"ModelDataQuality": {"Statistics": metrics(PROFILE)}}
MODEL_MONITOR = {"ModelDataQuality": {"Statistics": metrics(STATISTICS), "Constraints": metrics(CONSTRAINTS)}}


def add_describe(stub: Stubber, arn: str, baselines: dict | None = PROFILE_ONLY, status: str = "Approved") -> None:
    """Queue the DescribeModelPackage answer for ``arn``; the default layout registers only the profile."""
    response = {
        "ModelPackageName": arn.split("/")[-2],
        "ModelPackageGroupName": arn.split("/")[-2],
        "ModelPackageVersion": int(arn.rsplit("/", 1)[1]),
        "ModelPackageArn": arn,
        "CreationTime": T0,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": status,
    }
    if baselines is not None:
        response["DriftCheckBaselines"] = baselines
    response["InferenceSpecification"] = {"Containers": [{"Image": IMAGE, "ModelDataUrl": archive_url(arn)}]}
    stub.add_response("describe_model_package", response, {"ModelPackageName": arn})


IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
PRODUCER = "222222222222"
PRODUCER_KEY = f"arn:aws:kms:{REGION}:{PRODUCER}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def archive_url(arn: str) -> str:
    """Where the producer's pipeline put the archive of package ``arn`` (its own models bucket)."""
    account = arn.split(":")[4]
    return f"s3://mlp-dev-models-{account}/mlp-dev-model-build/run-{arn.rsplit('/', 1)[1]}/model/job/output/model.tar.gz"


@pytest.fixture
def s3():
    session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client("s3")


@pytest.fixture
def s3_stub(s3):
    with Stubber(s3) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def add_head(s3_stub: Stubber, arn: str, encryption: dict | None = None) -> None:
    """Queue HeadObject of ``arn``'s archive: SSE-KMS with the producer's models key unless ``encryption``."""
    bucket, key = archive_url(arn)[len("s3://"):].split("/", 1)
    answer = encryption if encryption is not None else {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": PRODUCER_KEY}
    s3_stub.add_response("head_object", {"ContentLength": 1024, **answer}, {"Bucket": bucket, "Key": key})


def add_group_exists(stub: Stubber, group: str = GROUP) -> None:
    stub.add_response(
        "describe_model_package_group",
        {
            "ModelPackageGroupName": group,
            "ModelPackageGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{group}",
            "CreationTime": T0,
            "CreatedBy": {},
            "ModelPackageGroupStatus": "Completed",
        },
        {"ModelPackageGroupName": group},
    )


def run(client, *args: str, s3=None) -> int:
    """``main`` with ``client`` (and ``s3``) injected; the factories also check the region they were asked for."""
    calls = []

    def factory(region, profile):
        calls.append((region, profile))
        return client

    def s3_factory(region, profile):
        calls.append(("s3", region, profile))
        assert s3 is not None, "no S3 call for a package of the environment's own account"
        return s3

    code = main(list(args), client_factory=factory, s3_client_factory=s3_factory)
    run.calls = calls
    return code


# --- latest_approved ---------------------------------------------------------------------


def test_newest_approved_wins_over_newer_rejected_and_pending(client, stub):
    # The server filters on Approved; the client filters again in case it did not.
    add_pages(stub, [summary(4, 4, "PendingManualApproval"), summary(3, 3, "Rejected"), summary(2, 2), summary(1, 1)])
    assert latest_approved(client, GROUP) == recorded(2, 2)


@pytest.mark.parametrize(
    "page, expected",
    [
        # Version 2 was rejected, then re-approved; version 3, created later, is approved too: 3 wins.
        ([summary(3, 3), summary(2, 2), summary(1, 1, "Rejected")], recorded(3, 3)),
        # Version 3 was rejected after approval; the re-approved old version 2 is the newest approved.
        ([summary(3, 3, "Rejected"), summary(2, 2), summary(1, 1)], recorded(2, 2)),
        # Listing order is not trusted: the maximum creation time wins wherever it appears.
        ([summary(1, 1), summary(2, 2), summary(3, 3)], recorded(3, 3)),
    ],
    ids=["newer-approved-beats-reapproved", "reapproved-old-after-newer-rejected", "order-independent"],
)
def test_reapproved_old_version_vs_newer_approved(client, stub, page, expected):
    add_pages(stub, page)
    assert latest_approved(client, GROUP) == expected


def test_creation_time_tie_goes_to_the_highest_version(client, stub):
    add_pages(stub, [summary(7, 5), summary(9, 5), summary(8, 5)])
    assert latest_approved(client, GROUP)["version"] == 9


def test_every_page_is_read_and_the_newest_on_page_three_wins(client, stub):
    add_pages(
        stub,
        [summary(5, 5), summary(4, 4)],
        [summary(3, 3), summary(2, 2, "Rejected")],
        [summary(9, 9), summary(1, 1)],
    )
    assert latest_approved(client, GROUP) == recorded(9, 9)
    # The fixture asserts that all three pages (token-1, token-2 sent back) were requested.


def test_creation_time_is_recorded_in_utc(client, stub):
    local = summary(3, 0)
    local["CreationTime"] = datetime(2024, 5, 1, 14, 30, 15, tzinfo=timezone(timedelta(hours=2)))
    add_pages(stub, [local])
    assert latest_approved(client, GROUP)["creation_time"] == "2024-05-01T12:30:15Z"


def test_nothing_approved_returns_none_once_the_group_is_known(client, stub):
    add_pages(stub, [summary(2, 2, "Rejected"), summary(1, 1, "PendingManualApproval")])
    add_group_exists(stub)
    assert latest_approved(client, GROUP) is None


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFound"])
def test_missing_group_raises(client, stub, code):
    stub.add_client_error("list_model_packages", code, f"ModelPackageGroup {GROUP} does not exist.", 400, expected_params=list_params())
    with pytest.raises(GroupNotFoundError, match=f"'{GROUP}' not found"):
        latest_approved(client, GROUP)


def test_empty_listing_of_a_missing_group_is_not_reported_as_nothing_approved(client, stub):
    add_pages(stub, [])
    stub.add_client_error(
        "describe_model_package_group", "ValidationException", "ModelPackageGroup does not exist.", 400, expected_params={"ModelPackageGroupName": GROUP}
    )
    with pytest.raises(GroupNotFoundError):
        latest_approved(client, GROUP)


def test_other_aws_errors_are_not_mistaken_for_a_missing_group(client, stub):
    from botocore.exceptions import ClientError

    stub.add_client_error("list_model_packages", "AccessDeniedException", "not authorized", 400, expected_params=list_params())
    with pytest.raises(ClientError):
        latest_approved(client, GROUP)


# --- data_quality_baseline ---------------------------------------------------------------


def test_model_monitor_pair_is_the_baseline(client, stub):
    add_describe(stub, package_arn(2), MODEL_MONITOR)
    assert data_quality_baseline(client, package_arn(2)) == BASELINE


@pytest.mark.parametrize(
    "baselines",
    [
        PROFILE_ONLY,
        None,
        {},
        {"ModelQuality": {"Statistics": metrics(STATISTICS), "Constraints": metrics(CONSTRAINTS)}},
        {"ModelDataQuality": {"Constraints": metrics(CONSTRAINTS)}},
    ],
    ids=["profile-only", "no-baselines", "empty", "other-slot", "constraints-only"],
)
def test_no_model_monitor_pair_is_no_baseline(client, stub, baselines):
    # Only Statistics (the platform's baseline.json profile) is not Model Monitor's: a Constraints entry is.
    add_describe(stub, package_arn(2), baselines)
    assert data_quality_baseline(client, package_arn(2)) == {}


def test_a_baseline_that_is_not_an_s3_uri_is_refused(client, stub):
    https = "https://mlp-dev-reports.s3.eu-west-1.amazonaws.com/run-1/constraints.json"
    add_describe(stub, package_arn(2), {"ModelDataQuality": {"Statistics": metrics(STATISTICS), "Constraints": metrics(https)}})
    with pytest.raises(ValueError) as caught:
        data_quality_baseline(client, package_arn(2))
    message = str(caught.value)
    assert f"DriftCheckBaselines.ModelDataQuality.Constraints.S3Uri is {https!r}" in message
    assert "Statistics" not in message.split("; allowed")[0]
    assert "allowed: an s3:// URI" in message


def test_a_package_that_is_no_longer_approved_is_refused(client, stub):
    # Rejected between the listing and the describe call: the listing's answer is out of date.
    add_describe(stub, package_arn(2), MODEL_MONITOR, status="Rejected")
    with pytest.raises(ValueError, match=r"no longer Approved \(now Rejected\); run again"):
        data_quality_baseline(client, package_arn(2))


# --- the context file --------------------------------------------------------------------


def test_context_key_names_the_environment():
    assert context_key("dev") == KEY
    assert context_key("prod") == "ml-platform:prod:approved-model-package"


def test_recording_merges_keys_sorted_with_two_space_indent(tmp_path):
    path = tmp_path / "cdk.context.json"
    path.write_text('{\n    "zeta": 1,\n    "availability-zones:account=1:region=r": ["a", "b"]\n}', encoding="utf-8")
    record(path, "dev", recorded(3, 3))
    expected = {"availability-zones:account=1:region=r": ["a", "b"], KEY: recorded(3, 3), "zeta": 1}
    assert json.loads(path.read_text(encoding="utf-8")) == expected
    assert path.read_text(encoding="utf-8") == json.dumps(expected, indent=2, sort_keys=True) + "\n"


def test_recording_is_byte_stable_and_atomic(tmp_path):
    path = tmp_path / "cdk.context.json"
    record(path, "dev", recorded(3, 3))
    first = path.read_bytes()
    os.utime(path, (0, 0))
    record(path, "dev", dict(reversed(list(recorded(3, 3).items()))))
    assert path.read_bytes() == first
    assert path.stat().st_mtime == 0, "an unchanged file is not rewritten"
    record(path, "prod", recorded(4, 4))
    assert list(json.loads(path.read_bytes())) == sorted([KEY, "ml-platform:prod:approved-model-package"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdk.context.json"], "no temporary file is left behind"
    assert path.read_bytes().endswith(b"}\n")


def test_recording_keeps_the_file_mode(tmp_path):
    path = tmp_path / "cdk.context.json"
    path.write_text("{}\n", encoding="utf-8")
    path.chmod(0o644)
    record(path, "dev", recorded(3, 3))
    assert path.stat().st_mode & 0o777 == 0o644


def test_record_refuses_what_the_serving_stack_would_refuse(tmp_path):
    path = tmp_path / "cdk.context.json"
    with pytest.raises(ValueError, match=KEY):
        record(path, "dev", {**recorded(3, 3), "arn": "not-an-arn"})
    assert not path.exists()


def test_read_recorded_round_trip(tmp_path):
    path = tmp_path / "cdk.context.json"
    record(path, "dev", recorded(3, 3))
    context = json.loads(path.read_text(encoding="utf-8"))
    assert read_recorded(context, "dev") == recorded(3, 3)
    assert read_recorded(context, "prod") is None
    assert read_recorded({}, "dev") is None


@pytest.mark.parametrize(
    "value, problem",
    [
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-dev-models/3", "allowed: a mapping with keys arn, version, group, creation_time"),
        ({**recorded(3, 3), "arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/mlp-dev-models"}, "arn: got"),
        ({**recorded(3, 3), "arn": "arn:aws:sagemaker:eu-west-1:1111:model-package/mlp-dev-models/3"}, "allowed: a versioned model package ARN"),
        ({**recorded(3, 3), "version": "3"}, "version: got '3'; allowed: a positive integer"),
        ({**recorded(3, 3), "version": 4}, "allowed: the arn's version"),
        ({**recorded(3, 3), "group": "other-models"}, "allowed: the arn's group"),
        ({**recorded(3, 3), "creation_time": "yesterday"}, "creation_time: got 'yesterday'; allowed: an ISO 8601 UTC timestamp"),
        ({**recorded(3, 3), "creation_time": "2024-05-01T12:00:00+02:00"}, "allowed: an ISO 8601 UTC timestamp"),
        ({k: v for k, v in recorded(3, 3).items() if k != "group"}, "missing key(s) group"),
        ({**recorded(3, 3), "endpoint": "x"}, "unknown key(s) endpoint"),
    ],
    ids=["string", "group-arn", "short-account", "version-type", "version-mismatch", "group-mismatch", "time", "time-not-utc", "missing", "unknown"],
)
def test_malformed_recorded_value_names_the_key_and_what_is_allowed(value, problem):
    with pytest.raises(ValueError) as caught:
        read_recorded({KEY: value}, "dev")
    message = str(caught.value)
    assert repr(KEY) in message
    assert problem in message


def test_read_recorded_returns_the_baseline_when_recorded(tmp_path):
    path = tmp_path / "cdk.context.json"
    record(path, "dev", {**recorded(3, 3), **BASELINE})
    context = json.loads(path.read_text(encoding="utf-8"))
    assert context[KEY] == {**recorded(3, 3), **BASELINE}
    assert read_recorded(context, "dev") == {**recorded(3, 3), **BASELINE}
    assert "data_quality_statistics" not in read_recorded({KEY: recorded(3, 3)}, "dev")


@pytest.mark.parametrize("present, absent", [BASELINE_KEYS, tuple(reversed(BASELINE_KEYS))])
def test_half_a_baseline_names_the_missing_key(present, absent):
    with pytest.raises(ValueError) as caught:
        read_recorded({KEY: {**recorded(3, 3), present: BASELINE[present]}}, "dev")
    message = str(caught.value)
    assert repr(KEY) in message
    assert f"  - {absent}: missing while {present} is recorded; allowed: both data_quality_statistics and data_quality_constraints" in message


@pytest.mark.parametrize(
    "uri",
    [
        "https://mlp-dev-reports.s3.amazonaws.com/run-1/statistics.json",
        "s3://Mlp-Dev-Reports/run-1/statistics.json",
        "s3://mlp-dev-reports/",
        "s3://mlp-dev-reports",
        "s3://ab/statistics.json",
        f"s3://{'b' * 64}/statistics.json",
        f"{STATISTICS}\n",
        "",
        None,
        5,
    ],
    ids=["https", "uppercase-bucket", "no-key", "no-slash", "short-bucket", "long-bucket", "newline", "empty", "none", "int"],
)
def test_malformed_baseline_uri_names_the_key_and_what_is_allowed(uri):
    with pytest.raises(ValueError) as caught:
        read_recorded({KEY: {**recorded(3, 3), **BASELINE, "data_quality_statistics": uri}}, "dev")
    message = str(caught.value)
    assert repr(KEY) in message
    assert f"  - data_quality_statistics: got {uri!r}; allowed: an s3:// URI 's3://<bucket>/<key>'" in message
    assert "data_quality_constraints" not in message.split("allowed: an s3://")[0]


def test_unknown_keys_are_refused_next_to_a_baseline():
    with pytest.raises(ValueError, match=r"unknown key\(s\) data_quality_baseline; allowed: the keys arn, version, group, creation_time"):
        read_recorded({KEY: {**recorded(3, 3), **BASELINE, "data_quality_baseline": STATISTICS}}, "dev")


def test_record_refuses_a_malformed_baseline(tmp_path):
    path = tmp_path / "cdk.context.json"
    with pytest.raises(ValueError, match="data_quality_constraints: missing"):
        record(path, "dev", {**recorded(3, 3), "data_quality_statistics": STATISTICS})
    assert not path.exists()


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError) as caught:
        read_recorded({KEY: {"arn": "x", "version": True, "group": "", "creation_time": 5}}, "dev")
    message = str(caught.value)
    assert all(f"  - {field}:" in message for field in ("arn", "version", "group", "creation_time"))


def test_every_baseline_problem_is_reported_at_once():
    value = {**recorded(3, 3), "data_quality_statistics": "http://x/y", "monitor": True}
    with pytest.raises(ValueError) as caught:
        read_recorded({KEY: value}, "dev")
    message = str(caught.value)
    assert "  - unknown key(s) monitor;" in message
    assert "  - data_quality_constraints: missing while data_quality_statistics is recorded;" in message
    assert "  - data_quality_statistics: got 'http://x/y';" in message


# --- the command -------------------------------------------------------------------------


def test_command_records_with_the_environment_defaults(client, stub, tmp_path, capsys):
    add_pages(stub, [summary(2, 2), summary(1, 1)])
    add_describe(stub, package_arn(2))
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--context-file", str(path)) == 0
    assert run.calls == [(REGION, None)], "the region comes from config/environments/dev.yaml"
    assert json.loads(path.read_text(encoding="utf-8")) == {KEY: recorded(2, 2)}
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert f"recorded {KEY} = {package_arn(2)} (version 2" in out


def test_command_records_the_model_monitor_baseline(client, stub, tmp_path, capsys):
    add_pages(stub, [summary(2, 2), summary(1, 1)])
    add_describe(stub, package_arn(2), MODEL_MONITOR)
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--context-file", str(path)) == 0
    context = json.loads(path.read_text(encoding="utf-8"))
    assert context == {KEY: {**recorded(2, 2), **BASELINE}}
    assert read_recorded(context, "dev") == {**recorded(2, 2), **BASELINE}
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert (
        f"recorded {KEY} = {package_arn(2)} (version 2, created 2024-05-01T14:00:00Z, "
        f"Model Monitor baseline statistics {STATISTICS} constraints {CONSTRAINTS}) in " in out
    )


def test_command_records_no_baseline_for_the_profile_alone(client, stub, tmp_path, capsys):
    add_pages(stub, [summary(2, 2)])
    add_describe(stub, package_arn(2), PROFILE_ONLY)
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--context-file", str(path)) == 0
    assert json.loads(path.read_text(encoding="utf-8")) == {KEY: recorded(2, 2)}
    out = capsys.readouterr().out
    assert "baseline" not in out and PROFILE not in out


def test_command_names_the_baseline_it_gained(client, stub, tmp_path, capsys):
    # A value recorded before the baseline keys existed is replaced, and the line says what changed.
    path = tmp_path / "cdk.context.json"
    record(path, "dev", recorded(2, 2))
    for _ in range(2):
        add_pages(stub, [summary(2, 2)])
        add_describe(stub, package_arn(2), MODEL_MONITOR)
    assert run(client, "--env", "dev", "--context-file", str(path)) == 0
    out = capsys.readouterr().out
    assert f"constraints {CONSTRAINTS}) in " in out
    assert out.rstrip().endswith(f"(previously {package_arn(2)} (version 2, created 2024-05-01T14:00:00Z))")
    assert run(client, "--env", "dev", "--context-file", str(path)) == 0
    assert capsys.readouterr().out.rstrip().endswith("(unchanged)")


def test_command_names_the_previous_value_when_it_changes(client, stub, tmp_path, capsys):
    path = tmp_path / "cdk.context.json"
    record(path, "dev", recorded(1, 1))
    for _ in range(2):
        add_pages(stub, [summary(2, 2), summary(1, 1)])
        add_describe(stub, package_arn(2))
    assert run(client, "--env", "dev", "--context-file", str(path)) == 0
    assert f"(previously {package_arn(1)} (version 1, created 2024-05-01T13:00:00Z))" in capsys.readouterr().out
    assert run(client, "--env", "dev", "--context-file", str(path)) == 0
    assert capsys.readouterr().out.rstrip().endswith("(unchanged)")


def test_command_passes_group_region_and_profile(client, stub, tmp_path):
    group = "team-models"
    add_pages(stub, [summary(1, 1, group=group)], group=group)
    add_describe(stub, package_arn(1, group))
    path = tmp_path / "cdk.context.json"
    args = ("--env", "dev", "--group", group, "--region", "us-east-1", "--profile", "ops", "--context-file", str(path))
    assert run(client, *args) == 0
    assert run.calls == [("us-east-1", "ops")]
    assert read_recorded(json.loads(path.read_text(encoding="utf-8")), "dev")["group"] == group


def shared_package(version: int = 6) -> tuple[str, dict]:
    """A group of another account (the producer's) and its approved package ``version``."""
    group_arn = f"arn:aws:sagemaker:{REGION}:{PRODUCER}:model-package-group/{GROUP}"
    shared = summary(version, 6)
    shared["ModelPackageArn"] = f"arn:aws:sagemaker:{REGION}:{PRODUCER}:model-package/{GROUP}/{version}"
    shared["ModelPackageGroupName"] = group_arn
    return group_arn, shared


def test_command_accepts_a_group_arn(client, stub, s3, s3_stub, tmp_path):
    group_arn, shared = shared_package()
    add_pages(stub, [shared], group=group_arn)
    add_describe(stub, shared["ModelPackageArn"])
    add_head(s3_stub, shared["ModelPackageArn"])
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--group", group_arn, "--context-file", str(path), s3=s3) == 0
    value = json.loads(path.read_text(encoding="utf-8"))[KEY]
    assert value["group"] == GROUP and value["arn"].endswith(f":{PRODUCER}:model-package/mlp-dev-models/6")


def test_a_package_of_another_account_records_what_serving_it_needs(client, stub, s3, s3_stub, tmp_path, capsys):
    group_arn, shared = shared_package()
    arn = shared["ModelPackageArn"]
    add_pages(stub, [shared], group=group_arn)
    add_describe(stub, arn)
    add_head(s3_stub, arn)
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--group", group_arn, "--context-file", str(path), s3=s3) == 0
    assert run.calls == [(REGION, None), ("s3", REGION, None)]
    value = json.loads(path.read_text(encoding="utf-8"))[KEY]
    assert {k: value[k] for k in approved_model.SOURCE_KEYS} == {
        "model_data_url": archive_url(arn),
        "model_data_key_arn": PRODUCER_KEY,
        "drift_baseline_url": PROFILE,  # DriftCheckBaselines.ModelDataQuality.Statistics, what the drift check reads
    }
    assert read_recorded({KEY: value}, "dev") == value
    assert f"archive {archive_url(arn)} with key {PRODUCER_KEY}" in capsys.readouterr().out


def test_a_package_of_the_environments_account_needs_no_s3_call(client, stub, tmp_path):
    add_pages(stub, [summary(2, 2)])
    add_describe(stub, package_arn(2))
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--context-file", str(path)) == 0
    assert not set(approved_model.SOURCE_KEYS) & set(json.loads(path.read_text(encoding="utf-8"))[KEY])


@pytest.mark.parametrize(
    ("encryption", "problem"),
    [({"ServerSideEncryption": "AES256"}, "is not encrypted with a KMS key"),
     ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/x"}, "is not encrypted with a KMS key")],
)  # fmt: skip
def test_a_foreign_archive_without_a_kms_key_exits_2(client, stub, s3, s3_stub, tmp_path, capsys, encryption, problem):
    group_arn, shared = shared_package()
    add_pages(stub, [shared], group=group_arn)
    add_describe(stub, shared["ModelPackageArn"])
    add_head(s3_stub, shared["ModelPackageArn"], encryption)
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--group", group_arn, "--context-file", str(path), s3=s3) == 2
    assert problem in capsys.readouterr().err and not path.exists()


def test_a_foreign_archive_we_may_not_read_exits_2_naming_the_sharing_setting(client, stub, s3, s3_stub, tmp_path, capsys):
    group_arn, shared = shared_package()
    add_pages(stub, [shared], group=group_arn)
    add_describe(stub, shared["ModelPackageArn"])
    bucket, key = archive_url(shared["ModelPackageArn"])[len("s3://"):].split("/", 1)
    s3_stub.add_client_error("head_object", "403", "Forbidden", 403, expected_params={"Bucket": bucket, "Key": key})
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--group", group_arn, "--context-file", str(path), s3=s3) == 2
    err = capsys.readouterr().err
    assert "Forbidden" in err and "pipeline.registry_shared_with_accounts" in err and not path.exists()


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [("model_data_url", "https://x/y", "model_data_url: got 'https://x/y'; allowed: an s3:// URI"),
     ("model_data_key_arn", "alias/mlp-dev/models", "model_data_key_arn: got 'alias/mlp-dev/models'; allowed: a KMS key ARN"),
     ("drift_baseline_url", 7, "drift_baseline_url: got 7; allowed: an s3:// URI")],
)  # fmt: skip
def test_malformed_cross_account_keys_name_the_key(key, value, problem):
    with pytest.raises(ValueError, match="malformed") as caught:
        read_recorded({KEY: {**recorded(1, 1), key: value}}, "dev")
    assert problem in str(caught.value)


def test_a_cross_account_record_must_say_where_the_archive_is():
    foreign = {**recorded(1, 1), "arn": f"arn:aws:sagemaker:{REGION}:{PRODUCER}:model-package/{GROUP}/1"}
    assert approved_model.missing_for_account(foreign, ACCOUNT) == ["model_data_url", "model_data_key_arn"]
    assert approved_model.missing_for_account({**foreign, "model_data_url": "s3://b/k", "model_data_key_arn": PRODUCER_KEY}, ACCOUNT) == []
    assert approved_model.missing_for_account(foreign, PRODUCER) == []
    assert approved_model.missing_for_account(foreign, None) == [], "the sandbox serves its own account's packages"


def test_group_arn_in_another_region_is_refused(client, tmp_path, capsys):
    group_arn = f"arn:aws:sagemaker:us-west-2:{ACCOUNT}:model-package-group/{GROUP}"
    assert run(client, "--env", "dev", "--group", group_arn, "--context-file", str(tmp_path / "c.json")) == 2
    assert "pass --region us-west-2" in capsys.readouterr().err
    assert run.calls == []


def test_nothing_approved_exits_1_and_leaves_the_file_unchanged(client, stub, tmp_path, capsys):
    path = tmp_path / "cdk.context.json"
    record(path, "dev", recorded(1, 1))
    before = path.read_bytes()
    os.utime(path, (0, 0))
    add_pages(stub, [summary(2, 2, "Rejected")], [summary(3, 3, "PendingManualApproval")])
    add_group_exists(stub)
    assert run(client, "--env", "dev", "--context-file", str(path)) == 1
    assert path.read_bytes() == before and path.stat().st_mtime == 0
    err = capsys.readouterr().err
    assert f"no approved model package in group {GROUP}" in err
    assert "pass --clear to remove it" in err


def test_nothing_approved_without_a_file_creates_none(client, stub, tmp_path):
    add_pages(stub, [])
    add_group_exists(stub)
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--context-file", str(path)) == 1
    assert not path.exists()


def test_clear_removes_the_recorded_value_only_when_nothing_is_approved(client, stub, tmp_path, capsys):
    path = tmp_path / "cdk.context.json"
    path.write_text(json.dumps({"other": True}), encoding="utf-8")
    record(path, "dev", recorded(1, 1))
    add_pages(stub, [summary(1, 1, "Rejected")])
    add_group_exists(stub)
    assert run(client, "--env", "dev", "--clear", "--context-file", str(path)) == 1
    assert path.read_text(encoding="utf-8") == '{\n  "other": true\n}\n'
    assert f"removed {KEY} = {package_arn(1)}" in capsys.readouterr().err


def test_clear_with_dry_run_removes_nothing(client, stub, tmp_path, capsys):
    path = tmp_path / "cdk.context.json"
    record(path, "dev", recorded(1, 1))
    before = path.read_bytes()
    add_pages(stub, [])
    add_group_exists(stub)
    assert run(client, "--env", "dev", "--clear", "--dry-run", "--context-file", str(path)) == 1
    assert path.read_bytes() == before
    assert "would remove" in capsys.readouterr().err


def test_clear_keeps_nothing_from_an_approved_package(client, stub, tmp_path):
    add_pages(stub, [summary(2, 2)])
    add_describe(stub, package_arn(2))
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--clear", "--context-file", str(path)) == 0
    assert json.loads(path.read_text(encoding="utf-8")) == {KEY: recorded(2, 2)}


@pytest.mark.parametrize("existing", [None, '{"other": 1}\n'])
def test_dry_run_writes_nothing(client, stub, tmp_path, capsys, existing):
    path = tmp_path / "cdk.context.json"
    if existing is not None:
        path.write_text(existing, encoding="utf-8")
    add_pages(stub, [summary(2, 2)])
    add_describe(stub, package_arn(2))
    assert run(client, "--env", "dev", "--dry-run", "--context-file", str(path)) == 0
    assert (path.read_text(encoding="utf-8") if path.exists() else None) == existing
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if existing is None else ["cdk.context.json"])
    assert f"would record {KEY} = {package_arn(2)}" in capsys.readouterr().out


def test_dry_run_shows_the_baseline_it_would_record(client, stub, tmp_path, capsys):
    add_pages(stub, [summary(2, 2)])
    add_describe(stub, package_arn(2), MODEL_MONITOR)
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--dry-run", "--context-file", str(path)) == 0
    assert not path.exists()
    assert f"Model Monitor baseline statistics {STATISTICS} constraints {CONSTRAINTS})" in capsys.readouterr().out


@pytest.mark.parametrize("code", ["ValidationException", "ResourceNotFound"])
def test_missing_group_exits_2_with_a_message(client, stub, tmp_path, capsys, code):
    stub.add_client_error("list_model_packages", code, f"ModelPackageGroup {GROUP} does not exist.", 400, expected_params=list_params())
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--context-file", str(path)) == 2
    err = capsys.readouterr().err
    assert f"error: model package group '{GROUP}' not found ({code}: ModelPackageGroup {GROUP} does not exist.)" in err
    assert "check --group, --region" in err
    assert not path.exists()


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationException", "ThrottlingException"])
def test_describe_failing_exits_2_and_writes_nothing(client, stub, tmp_path, capsys, code):
    path = tmp_path / "cdk.context.json"
    record(path, "dev", recorded(1, 1))
    before = path.read_bytes()
    add_pages(stub, [summary(2, 2)])
    stub.add_client_error("describe_model_package", code, "not authorized", 400, expected_params={"ModelPackageName": package_arn(2)})
    assert run(client, "--env", "dev", "--context-file", str(path)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"error: describing model package {package_arn(2)} failed: " in captured.err
    assert code in captured.err
    assert path.read_bytes() == before


@pytest.mark.parametrize("dry_run", [False, True])
def test_describe_problems_exit_2_even_in_a_dry_run(client, stub, tmp_path, capsys, dry_run):
    bad = {"ModelDataQuality": {"Statistics": metrics("https://example.com/statistics.json"), "Constraints": metrics(CONSTRAINTS)}}
    add_pages(stub, [summary(2, 2)])
    add_describe(stub, package_arn(2), bad)
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--context-file", str(path), *(["--dry-run"] if dry_run else [])) == 2
    assert "Statistics.S3Uri is 'https://example.com/statistics.json'" in capsys.readouterr().err
    assert not path.exists()


def test_a_package_rejected_after_the_listing_is_not_recorded(client, stub, tmp_path, capsys):
    add_pages(stub, [summary(2, 2)])
    add_describe(stub, package_arn(2), status="Rejected")
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "dev", "--context-file", str(path)) == 2
    assert "no longer Approved (now Rejected)" in capsys.readouterr().err
    assert not path.exists()


def test_other_aws_errors_exit_2(client, stub, tmp_path, capsys):
    stub.add_client_error("list_model_packages", "AccessDeniedException", "not authorized", 400, expected_params=list_params())
    assert run(client, "--env", "dev", "--context-file", str(tmp_path / "c.json")) == 2
    assert "AccessDeniedException" in capsys.readouterr().err


def test_sandbox_needs_a_region(client, tmp_path, capsys):
    assert run(client, "--env", "sandbox", "--context-file", str(tmp_path / "c.json")) == 2
    assert "no region for environment 'sandbox'" in capsys.readouterr().err
    assert run.calls == [], "no client is created without a region"


def test_sandbox_with_a_region_uses_the_sandbox_group(client, stub, tmp_path):
    add_pages(stub, [summary(1, 1, group="mlp-sandbox-models")], group="mlp-sandbox-models")
    add_describe(stub, package_arn(1, "mlp-sandbox-models"))
    path = tmp_path / "cdk.context.json"
    assert run(client, "--env", "sandbox", "--region", REGION, "--context-file", str(path)) == 0
    assert "ml-platform:sandbox:approved-model-package" in json.loads(path.read_text(encoding="utf-8"))


def test_unknown_environment_exits_2(client, tmp_path, capsys):
    assert run(client, "--env", "staging", "--context-file", str(tmp_path / "c.json")) == 2
    assert "unknown environment 'staging'" in capsys.readouterr().err


def test_unreadable_context_file_stops_before_any_aws_call(client, tmp_path, capsys):
    path = tmp_path / "cdk.context.json"
    path.write_text("{not json", encoding="utf-8")
    assert run(client, "--env", "dev", "--context-file", str(path)) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    assert run.calls == []
    assert path.read_text(encoding="utf-8") == "{not json"


def test_usage(capsys):
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: python -m ops.approved_model [-h] --env ENV [--group GROUP]")
    assert main([]) == 2
    assert "--env" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "Model Monitor's data-quality baseline" in " ".join(capsys.readouterr().out.split())


def test_default_client_comes_from_a_boto3_session(client, stub, tmp_path, monkeypatch):
    """Without a factory the command builds a boto3 session client for the environment's region."""
    made = []

    def fake_client(session, service_name, **kwargs):
        made.append((service_name, session.region_name))
        return client

    monkeypatch.setattr(boto3.session.Session, "client", fake_client)
    add_pages(stub, [summary(1, 1)])
    add_describe(stub, package_arn(1))
    assert main(["--env", "dev", "--context-file", str(tmp_path / "c.json")]) == 0
    assert made == [("sagemaker", REGION)]


def test_default_context_file_is_the_repository_cdk_context():
    from tests.conftest import ROOT

    assert approved_model.DEFAULT_CONTEXT_FILE == ROOT / "cdk.context.json"
    assert Path(approved_model.__file__).parent.name == "ops"
