"""What the embedded pipeline definitions share: a file cache (building one imports the SageMaker SDK,
1.5 s) and the placeholders for roles and subnets."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from constructs import Construct

# Context key naming the folder where built definitions are kept (unset: no cache; app.py sets it).
DEFINITION_CACHE_CONTEXT = "ml-platform:definition-cache-dir"


def definition_cache_dir(scope: Construct) -> Path | None:
    """The cache folder ``scope``'s app was given, if any."""
    cache_dir = scope.node.try_get_context(DEFINITION_CACHE_CONTEXT)
    return Path(cache_dir) if cache_dir else None


def role_arn_placeholder(name_placeholder: str) -> str:
    """An ARN-shaped role (so the SDK does not look it up in IAM) whose name the stack fills in."""
    return f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/${{{name_placeholder}}}"


def subnet_placeholders(count: int) -> list[str]:
    """``${SubnetId0}`` .. ``${SubnetId<count-1>}``; the stack maps them with ``subnet_substitutions``."""
    return [f"${{SubnetId{i}}}" for i in range(count)]


def subnet_substitutions(subnet_ids: list[str]) -> dict[str, str]:
    return {f"SubnetId{i}": subnet for i, subnet in enumerate(subnet_ids)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot key a definition cache on {type(value).__name__}")


# Every definition is also made of these: the shared builder code and this module's placeholders.
PIPELINE_CODE = Path(__file__).resolve().parent.parent
SHARED_SOURCES = (Path(__file__).resolve(), PIPELINE_CODE / "pipeline.py")


def cache_key(*, arguments: dict, sources: list[Path]) -> str:
    """What a built definition is made of: ``arguments`` (JSON values or settings models), the builder
    ``sources`` (plus ``SHARED_SOURCES``) and the SDK version."""
    digest = hashlib.sha256(json.dumps(arguments, sort_keys=True, default=_jsonable).encode())
    digest.update(importlib.metadata.version("sagemaker").encode())
    for source in (*SHARED_SOURCES, *sources):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def cached_build(*, cache_dir: Path | None, arguments: dict, sources: list[Path], build: Callable[[], str]) -> str:
    """``build()``, or an earlier result stored in ``cache_dir`` for the same inputs (``cache_key``).

    A stale entry cannot be used; builds are deterministic, so a hit is byte-identical to a
    rebuild. Without ``cache_dir`` it always builds.
    """
    if cache_dir is None:
        return build()
    entry = cache_dir / f"{cache_key(arguments=arguments, sources=sources)}.json"
    if entry.is_file():
        return entry.read_text(encoding="utf-8")
    definition = build()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(definition)
    os.replace(partial, entry)
    return definition
