#!/usr/bin/env python3
"""The delivery pipeline's check after deploying an environment (its ``SmokeCheck`` step).

Acting as the environment's ``mlp-<env>-delivery-smoke-check`` role, in order:

1. every endpoint the serving stack publishes (its ``*EndpointName`` outputs) is ``InService``;
2. when the model-build pipeline was modified after its newest execution started (or never ran),
   one execution is started, so a changed definition is exercised at once;
3. with ``--sample``, one real-time request with the first sample row (target column dropped)
   answers 200.

Exit codes: 0 every check passed (or nothing to check), 1 a check failed, 2 usage or AWS error.
Needs only boto3; run it by hand with the same arguments to repeat a failed check.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ClientFactory = Callable[[str], Any]


def endpoint_names(cloudformation: Any, stack: str) -> list[str]:
    """The endpoint names ``stack`` outputs ([] when the environment serves nothing)."""
    from botocore.exceptions import ClientError

    try:
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return []
        raise
    outputs = described.get("Outputs", [])
    return sorted(o["OutputValue"] for o in outputs if o["OutputKey"].endswith("EndpointName"))


def not_in_service(sagemaker: Any, names: list[str]) -> list[str]:
    statuses = {name: sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] for name in names}
    return [f"{name} is {status}" for name, status in statuses.items() if status != "InService"]


def definition_changed(sagemaker: Any, pipeline: str) -> bool:
    """True when ``pipeline`` was modified after its newest execution was created, or never ran."""
    modified = sagemaker.describe_pipeline(PipelineName=pipeline)["LastModifiedTime"]
    executions = sagemaker.list_pipeline_executions(PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    summaries = executions.get("PipelineExecutionSummaries", [])
    return not summaries or summaries[0]["StartTime"] < modified


def sample_row(path: Path, target_column: str) -> str:
    """The first data row of the CSV at ``path`` without ``target_column``, as one headerless CSV line."""
    with path.open(newline="", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    row.pop(target_column, None)
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row.values())
    return out.getvalue()


def run(args: argparse.Namespace, client: ClientFactory) -> int:
    problems = []
    names = endpoint_names(client("cloudformation"), args.serving_stack)
    sagemaker = client("sagemaker")
    problems += not_in_service(sagemaker, names)
    print(f"endpoints: {', '.join(names) or 'none'}{'' if problems else ' (all InService)'}")
    if definition_changed(sagemaker, args.model_build_pipeline):
        arn = sagemaker.start_pipeline_execution(
            PipelineName=args.model_build_pipeline, PipelineExecutionDescription="Started by the delivery pipeline: the definition changed"
        )["PipelineExecutionArn"]
        print(f"model build: the definition changed; started {arn}")
    else:
        print("model build: definition unchanged since the last execution")
    realtime = [n for n in names if n == args.realtime_endpoint] if args.realtime_endpoint else []
    if args.sample and realtime:
        body = sample_row(Path(args.sample), args.target_column)
        response = client("sagemaker-runtime").invoke_endpoint(EndpointName=realtime[0], ContentType="text/csv", Body=body)
        status = response["ResponseMetadata"]["HTTPStatusCode"]
        print(f"request to {realtime[0]}: HTTP {status}, answer {response['Body'].read().decode('utf-8').strip()!r}")
        if status != 200:
            problems.append(f"{realtime[0]} answered HTTP {status}")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def default_client_factory(region: str, role_arn: str) -> ClientFactory:
    import boto3

    credentials = boto3.client("sts", region_name=region).assume_role(RoleArn=role_arn, RoleSessionName="ml-platform-smoke-check")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
    return session.client


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/smoke_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--role-arn", required=True, help="the environment's smoke-check role")
    parser.add_argument("--serving-stack", required=True, help="e.g. MlPlatform-dev-Serving")
    parser.add_argument("--model-build-pipeline", required=True, help="e.g. mlp-dev-model-build")
    parser.add_argument("--realtime-endpoint", help="the real-time endpoint to send one request to")
    parser.add_argument("--sample", help="CSV with a header row; its first row is sent")
    parser.add_argument("--target-column", default="", help="column of --sample that is not a feature")
    return parser


def main(argv: list[str] | None = None, *, client_factory: ClientFactory | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    args = build_parser().parse_args(argv)
    try:
        return run(args, client_factory or default_client_factory(args.region, args.role_arn))
    except (BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
