"""CloudFormation resource schemas as cfn-lint ships them: which properties name a resource and
which ones cannot change without replacing it (offline, no AWS call). Used by the review's change
section and by the lifecycle tests' replacement check."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import cfnlint

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
SCHEMA_REGION = "eu-west-1"


@lru_cache(maxsize=None)
def schema(resource_type: str) -> dict:
    """The resource type's schema; empty for types CloudFormation has none of (``Custom::...``)."""
    file = _providers().get(resource_type)
    return json.loads((SCHEMAS / "resources" / f"{file}.json").read_text(encoding="utf-8")) if file else {}


@lru_cache(maxsize=1)
def _providers() -> dict[str, str]:
    return json.loads((SCHEMAS / "providers" / f"{SCHEMA_REGION}.json").read_text(encoding="utf-8"))


def _path(pointer: str) -> tuple[str, ...]:
    return tuple(pointer.removeprefix("/properties/").split("/"))


def create_only(resource_type: str) -> list[tuple[str, ...]]:
    """Property paths (``("Budget", "BudgetName")``) whose change replaces the resource."""
    return [_path(p) for p in schema(resource_type).get("createOnlyProperties", [])]


def _camel_suffixes(type_name: str) -> set[str]:
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*", type_name)
    return {"".join(words[i:]) for i in range(len(words))}


def name_properties(resource_type: str) -> list[tuple[str, ...]]:
    """The create-only properties that are the resource's own physical name.

    ``Name`` or ``<suffix of the type>Name`` (``AlarmName``, ``GroupName`` of a SecurityGroup,
    ``PolicyName`` of a ScalingPolicy, ``Budget/BudgetName``), not names of other resources
    (a FlowLog's ``LogGroupName``, an ingress rule's ``GroupName``).
    """
    suffixes = _camel_suffixes(resource_type.split("::")[-1]) | {""}
    return [p for p in create_only(resource_type) if p[-1] in {f"{s}Name" for s in suffixes}]


def value_at(properties: dict, path: tuple[str, ...]):
    for part in path:
        if not isinstance(properties, dict) or part not in properties:
            return None
        properties = properties[part]
    return properties


def explicit_names(resource: dict) -> dict[tuple[str, ...], object]:
    """The physical-name properties a template resource sets (empty: CloudFormation names it)."""
    props = resource.get("Properties", {})
    return {p: v for p in name_properties(resource["Type"]) if (v := value_at(props, p)) is not None}
