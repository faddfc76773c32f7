"""AWS access: S3 URIs, the region and boto3 clients (boto3 is imported only when a client is made)."""

from __future__ import annotations

import os
import re
from typing import Any, Optional, Tuple

from .errors import DriftCheckError

_S3_URI_RE = re.compile(r"^s3://([^/\s]+)(?:/(.*))?$")


def parse_s3_uri(uri: str) -> Tuple[str, str]:
    """(bucket, key or prefix) of ``s3://bucket/key``; ValueError if ``uri`` is not one."""
    match = _S3_URI_RE.match(uri)
    if not match:
        raise ValueError(f"not an S3 URI (s3://bucket/prefix): {uri!r}")
    return match.group(1), match.group(2) or ""


def _region() -> Optional[str]:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def make_cloudwatch_client() -> Any:
    region = _region()
    if not region:
        raise DriftCheckError("no AWS region to publish metrics to: set AWS_REGION (or use --no-publish-metrics)")
    try:
        import boto3
    except ImportError:
        raise DriftCheckError("boto3 is not installed, so metrics cannot be published (use --no-publish-metrics)") from None
    return boto3.client("cloudwatch", region_name=region)


def make_client(service: str, purpose: str) -> Any:
    """A boto3 client (standard retry mode: throttling and 5xx are retried with backoff)."""
    region = _region()
    if not region:
        raise DriftCheckError(f"no AWS region to {purpose}: set AWS_REGION")
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise DriftCheckError(f"boto3 is not installed, so the script cannot {purpose}") from None
    return boto3.client(service, region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 8}))
