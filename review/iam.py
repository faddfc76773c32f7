"""IAM: each role, who may assume it, and what it may do on which resources (grouped by service)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from review.assembly import Assembly, Stack
from review.document import Para, Section, Table

# An account id alone, or in an IAM ARN whose partition may still be a placeholder (arn:${AWS::Partition}:iam::...).
_ACCOUNT_IN_ARN = re.compile(r"^(?:arn:.*?:iam::)?(\d{12})(?::|$)")


@dataclass(frozen=True)
class Permission:
    """One action on one resource under one condition: the unit the report lists and the diff compares."""

    effect: str
    action: str
    resource: str
    condition: str  # canonical JSON, "" when unconditional
    source: str  # the policy that grants it

    @property
    def service(self) -> str:
        return self.action.split(":", 1)[0] if ":" in self.action else "*"

    @property
    def wildcard(self) -> bool:
        return "*" in self.action or "*" in self.resource


@dataclass
class RoleInfo:
    key: str
    description: str
    trust: list[tuple[str, str, str]]  # (principal, actions, condition)
    cross_account: list[str]
    managed_policy_arns: list[str]
    permissions: list[Permission] = field(default_factory=list)


def _principals(assembly: Assembly, stack: Stack, principal) -> list[str]:
    if principal == "*":
        return ["* (anyone)"]
    out = []
    for kind, values in principal.items():
        for value in values if isinstance(values, list) else [values]:
            out.append(f"{kind}: {assembly.render(stack, value)}")
    return out


def foreign_accounts(principal_text: str, own_account: str | None) -> list[str]:
    """The 12-digit accounts a rendered principal names that are not the environment's own."""
    _, _, value = principal_text.partition(": ")
    match = _ACCOUNT_IN_ARN.match(value)
    if match and match.group(1) != own_account:
        return [match.group(1)]
    return []


def condition_text(statement: dict, assembly: Assembly, stack: Stack) -> str:
    condition = statement.get("Condition")
    if not condition:
        return ""
    rendered = {
        op: {key: _render_value(assembly, stack, v) for key, v in keys.items()} for op, keys in condition.items()
    }
    return json.dumps(rendered, sort_keys=True)


def _render_value(assembly, stack, value):
    if isinstance(value, list):
        return [assembly.render(stack, v) for v in value]
    return assembly.render(stack, value)


def statement_permissions(assembly: Assembly, stack: Stack, document: dict, source: str) -> list[Permission]:
    permissions = []
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", statement.get("NotAction", []))
        resources = statement.get("Resource", statement.get("NotResource", "*"))
        negated = "NotAction" in statement or "NotResource" in statement
        condition = condition_text(statement, assembly, stack)
        for action in actions if isinstance(actions, list) else [actions]:
            for resource in resources if isinstance(resources, list) else [resources]:
                permissions.append(
                    Permission(
                        effect=statement["Effect"] + (" (Not…)" if negated else ""),
                        action=action,
                        resource=assembly.render(stack, resource),
                        condition=condition,
                        source=source,
                    )
                )
    return permissions


def roles(assembly: Assembly, own_account: str | None) -> dict[str, RoleInfo]:
    """Every role of the assembly with its trust and every permission attached to it from any stack."""
    found: dict[str, RoleInfo] = {}
    for stack, logical_id, role in assembly.resources("AWS::IAM::Role"):
        props = role.get("Properties", {})
        trust, cross = [], []
        for statement in props.get("AssumeRolePolicyDocument", {}).get("Statement", []):
            actions = statement.get("Action", [])
            for principal in _principals(assembly, stack, statement.get("Principal", {})):
                trust.append((principal, ", ".join(actions if isinstance(actions, list) else [actions]), condition_text(statement, assembly, stack)))
                cross += foreign_accounts(principal, own_account)
        info = RoleInfo(
            key=stack.key(logical_id),
            description=props.get("Description", ""),
            trust=trust,
            cross_account=cross,
            managed_policy_arns=[],
        )
        for policy in props.get("Policies", []):
            info.permissions += statement_permissions(assembly, stack, policy["PolicyDocument"], f"inline {policy['PolicyName']}")
        for arn in props.get("ManagedPolicyArns", []):
            target = assembly.referenced_resource(stack, arn)
            if target:
                policy_stack, policy_id = target
                document = policy_stack.resources[policy_id]["Properties"]["PolicyDocument"]
                info.permissions += statement_permissions(assembly, policy_stack, document, policy_stack.key(policy_id))
            else:
                info.managed_policy_arns.append(assembly.render(stack, arn))
        found[f"{stack.id}/{logical_id}"] = info
    # Policies attach themselves to roles (possibly in another stack, through a cross-stack read).
    for stack, logical_id, policy in assembly.resources("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        props = policy["Properties"]
        for role_ref in props.get("Roles", []):
            target = assembly.referenced_resource(stack, role_ref)
            if not target:
                continue
            role_stack, role_id = target
            info = found.get(f"{role_stack.id}/{role_id}")
            if info is not None:
                info.permissions += statement_permissions(assembly, stack, props["PolicyDocument"], stack.key(logical_id))
    return {info.key: info for info in found.values()}


def resource_policy_foreign_principals(assembly: Assembly, own_account: str | None) -> list[list[str]]:
    """Resource policies (buckets, keys, topics, registry) that admit another account: ``[resource, principal, actions]``."""
    rows = []
    fields = {"PolicyDocument", "KeyPolicy", "ModelPackageGroupPolicy"}
    for stack in assembly.stacks.values():
        for logical_id, resource in stack.resources.items():
            for name, document in resource.get("Properties", {}).items():
                if name not in fields or not isinstance(document, dict):
                    continue
                target = resource["Properties"].get("Bucket") or resource["Properties"].get("Topics")
                subject = assembly.render(stack, target) if target else stack.key(logical_id)
                for statement in document.get("Statement", []):
                    if "Principal" not in statement or statement.get("Effect") != "Allow" or resource["Type"].startswith("AWS::IAM::"):
                        continue
                    for principal in _principals(assembly, stack, statement["Principal"]):
                        if foreign_accounts(principal, own_account) or principal.startswith("* "):
                            actions = statement.get("Action", [])
                            rows.append([subject, principal, statement["Effect"] + ": " + ", ".join(actions if isinstance(actions, list) else [actions])])
    return rows


def section(assembly: Assembly, own_account: str | None) -> Section:
    found = roles(assembly, own_account)
    sec = Section("IAM")
    wildcard_count = sum(1 for r in found.values() for p in r.permissions if p.wildcard and p.effect == "Allow")
    deny_count = sum(1 for r in found.values() for p in r.permissions if p.effect.startswith("Deny"))
    crossing = [r.key for r in found.values() if r.cross_account]
    sec.add(
        Para(
            f"{len(found)} roles. Allowed action/resource pairs with a wildcard: {wildcard_count} (cdk-nag's "
            f"acknowledgements with their reasons are under Compliance); explicit denies: {deny_count}. Rows with a "
            "wildcard or a deny are highlighted."
        )
    )
    if crossing:
        sec.add(Para(f"Roles another account may assume: {', '.join(crossing)}.", "warn"))
    summary = Table(["role", "assumed by", "services", "allow", "deny", "wildcards"], [])
    for info in found.values():
        allows = [p for p in info.permissions if p.effect == "Allow"]
        summary.rows.append(
            [
                info.key,
                "; ".join(p for p, _, _ in info.trust),
                ", ".join(sorted({p.service for p in info.permissions})),
                str(len(allows)),
                str(len(info.permissions) - len(allows)),
                str(sum(1 for p in allows if p.wildcard)),
            ]
        )
        if info.cross_account:
            summary.marked.add(len(summary.rows) - 1)
    sec.add(summary)
    foreign = resource_policy_foreign_principals(assembly, own_account)
    if foreign:
        cross = sec.sub("Resource policies admitting another account")
        cross.add(Para("Access granted on this environment's resources to principals outside its account.", "warn"))
        cross.add(Table(["resource", "principal", "statement"], foreign, marked=set(range(len(foreign)))))
    for info in found.values():
        sub = sec.sub(f"Role {info.key}")
        if info.description:
            sub.add(Para(info.description))
        trust = Table(["assumed by", "actions", "condition"], [list(t) for t in info.trust])
        trust.marked = {i for i, t in enumerate(info.trust) if foreign_accounts(t[0], own_account)}
        sub.add(trust)
        if info.managed_policy_arns:
            sub.add(Para("Managed policies from outside the app: " + ", ".join(info.managed_policy_arns), "warn"))
        table = Table(["service", "effect", "actions", "resources", "condition", "granted by"], [])
        grouped: dict[tuple, list[Permission]] = {}
        for p in info.permissions:
            grouped.setdefault((p.service, p.effect, p.resource, p.condition, p.source), []).append(p)
        merged: dict[tuple, set[str]] = {}
        for (service, effect, resource, condition, source), perms in grouped.items():
            actions = tuple(sorted({p.action for p in perms}))
            merged.setdefault((service, effect, actions, condition, source), set()).add(resource)
        for (service, effect, actions, condition, source), resources in sorted(merged.items()):
            table.rows.append([service, effect, ", ".join(actions), "\n".join(sorted(resources)), condition, source])
            if effect.startswith("Deny") or any("*" in a for a in actions) or any(r == "*" or "*" in r for r in resources):
                table.marked.add(len(table.rows) - 1)
        sub.add(table)
    return sec
