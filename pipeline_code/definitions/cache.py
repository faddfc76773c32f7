"""What the embedded pipeline definitions share: the committed definitions of the shipped environments and a
file cache for the rest (building one imports the SageMaker SDK, 2 s), and the placeholders for roles and
subnets."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
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


# The definitions the shipped environments use, built once and committed like code (``make definitions``):
# a fresh clone, CI and the delivery pipeline's synth use them without importing the SageMaker SDK. Each is
# ``<pipeline name>.json`` (indented for review), listed in ``index.json`` with its cache key and digest.
RECORDED_DIR = Path(__file__).resolve().parent / "recorded"


@dataclass(frozen=True)
class Recording:
    """One definition a synth used, as ``make definitions`` records it."""

    key: str
    definition: str
    arguments: dict
    sources: tuple[str, ...]


# Set by ``scripts/record_definitions.py`` while it builds the shipped environments: every definition used.
recording: dict[str, Recording] | None = None


def canonical(definition_text: str) -> str:
    """The compact form the builders emit (``pipeline.definition_json``), from either form."""
    return json.dumps(json.loads(definition_text), sort_keys=True, separators=(",", ":"))


def digest(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def recorded_index() -> dict[str, dict]:
    """``{pipeline name: {"key", "sha256", "arguments", "sources"}}`` of the committed definitions."""
    index = RECORDED_DIR / "index.json"
    return json.loads(index.read_text(encoding="utf-8")) if index.is_file() else {}


def _recorded(name: str | None, key: str) -> str | None:
    entry = recorded_index().get(name or "")
    if entry is None or entry["key"] != key:
        return None
    definition = canonical((RECORDED_DIR / f"{name}.json").read_text(encoding="utf-8"))
    if digest(definition) != entry["sha256"]:
        raise ValueError(f"{RECORDED_DIR / name}.json was edited by hand: run `make definitions` to record it again")
    return definition


def cached_build(*, cache_dir: Path | None, arguments: dict, sources: list[Path], build: Callable[[], str]) -> str:
    """``build()``, or an earlier result for the same inputs (``cache_key``): the committed one in
    ``RECORDED_DIR`` for the pipeline of that name, else one stored in ``cache_dir``.

    A stale entry cannot be used; builds are deterministic, so a hit is byte-identical to a
    rebuild. Without ``cache_dir`` it always builds.
    """
    if cache_dir is None:
        return build()
    key = cache_key(arguments=arguments, sources=sources)
    definition = _recorded(arguments.get("pipeline_name"), key) or _cached(cache_dir, key, build)
    if recording is not None:
        recording[arguments["pipeline_name"]] = Recording(
            key=key,
            definition=definition,
            arguments=json.loads(json.dumps(arguments, sort_keys=True, default=_jsonable)),
            sources=tuple(str(source.relative_to(PIPELINE_CODE.parent)) for source in sources),
        )
    return definition


def cached(build: Callable[..., str], *, sources: list[Path]) -> Callable[..., str]:
    """``build`` as the stacks call it: ``(cache_dir=..., **arguments)``, reused while its inputs (the
    arguments, ``sources`` and the SDK version) hold; see ``cached_build``."""

    def build_or_reuse(*, cache_dir: Path | None, **arguments: Any) -> str:
        return cached_build(cache_dir=cache_dir, arguments=arguments, sources=sources, build=lambda: build(**arguments))

    build_or_reuse.__doc__ = f"``{build.__name__}(**arguments)``, reused from ``cache_dir`` while its inputs hold."
    return build_or_reuse


def _cached(cache_dir: Path, key: str, build: Callable[[], str]) -> str:
    entry = cache_dir / f"{key}.json"
    if entry.is_file():
        return entry.read_text(encoding="utf-8")
    definition = build()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(definition)
    os.replace(partial, entry)
    return definition
