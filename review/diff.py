"""Changes since BASE: what a pull request's reviewer needs first — wider permissions, new security-group rules,
stateful resources replaced or deleted, and the change of the always-on cost."""

from __future__ import annotations

from review import cost, iam, network, retention
from review.assembly import Assembly
from review.cfn_schemas import create_only, value_at
from review.document import Para, Section, Table


def widened(base: Assembly, head: Assembly, own_account: str | None) -> list[list[str]]:
    """``[role, change, detail]`` for each permission a role gains (new Allow, or a Deny removed), and new roles."""
    before, after = iam.roles(base, own_account), iam.roles(head, own_account)
    rows = []
    for key, info in after.items():
        def pairs(perms, effect):
            return {(p.action, p.resource, p.condition) for p in perms if p.effect.startswith(effect)}

        old = before.get(key)
        if old is None:
            rows.append([key, "new role", f"{len(info.permissions)} permissions; assumed by " + "; ".join(t[0] for t in info.trust)])
            continue
        for action, resource, condition in sorted(pairs(info.permissions, "Allow") - pairs(old.permissions, "Allow")):
            rows.append([key, "allows", f"{action} on {resource}" + (f" if {condition}" if condition else "")])
        for action, resource, condition in sorted(pairs(old.permissions, "Deny") - pairs(info.permissions, "Deny")):
            rows.append([key, "no longer denies", f"{action} on {resource}" + (f" if {condition}" if condition else "")])
        for principal in sorted({t[0] for t in info.trust} - {t[0] for t in old.trust}):
            rows.append([key, "may now be assumed by", principal])
    return rows


def rules_added(base: Assembly, head: Assembly) -> list[list[str]]:
    before, after = network.security_group_rules(base), network.security_group_rules(head)
    rows = []
    for group, rules in after.items():
        for rule in sorted(set(rules) - set(before.get(group, []))):
            rows.append([group, *rule])
    return rows


def stateful_changes(base: Assembly, head: Assembly) -> list[list[str]]:
    """``[resource, type, change]``: deleted, replaced (create-only property changed) or no longer retained."""
    rows = []
    for stack, logical_id, resource in base.resources(*retention.STATEFUL_TYPES):
        name = stack.key(logical_id)
        other = head.stacks.get(stack.id)
        new = other.resources.get(logical_id) if other else None
        if new is None or new["Type"] != resource["Type"]:
            rows.append([name, resource["Type"], "deleted (or replaced under a new logical id)"])
            continue
        changed = [
            "/".join(path) for path in create_only(resource["Type"])
            if value_at(resource.get("Properties", {}), path) != value_at(new.get("Properties", {}), path)
        ]
        if changed:
            rows.append([name, resource["Type"], f"replaced: create-only {', '.join(changed)} changed"])
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            old_value, new_value = resource.get(policy, "Delete"), new.get(policy, "Delete")
            if old_value != new_value:
                rows.append([name, resource["Type"], f"{policy} {old_value} -> {new_value}"])
    return rows


def section(base: Assembly, head: Assembly, *, base_ref: str, config) -> Section:
    sec = Section(f"Changes since {base_ref}")
    own = getattr(config, "account", None)
    region = getattr(config, "region", None)
    prices = cost.price_table(region)
    before, after = cost.monthly_total(base, prices), cost.monthly_total(head, prices)
    widened_rows = widened(base, head, own)
    rule_rows = rules_added(base, head)
    stateful_rows = stateful_changes(base, head)
    sec.add(Para(
        f"Roles with wider permissions: {len({r[0] for r in widened_rows})}; security-group rules added: {len(rule_rows)}; "
        f"stateful resources replaced, deleted or no longer retained: {len(stateful_rows)}; always-on cost "
        f"${before:,.2f} -> ${after:,.2f} per month ({after - before:+,.2f}).",
        "warn" if widened_rows or rule_rows or stateful_rows else "info",
    ))
    stacks_before, stacks_after = set(base.stacks), set(head.stacks)
    if stacks_before != stacks_after:
        sec.add(Para(f"Stacks added: {', '.join(sorted(stacks_after - stacks_before)) or 'none'}; removed: {', '.join(sorted(stacks_before - stacks_after)) or 'none'}."))
    sec.sub("Wider permissions").add(Table(["role", "change", "permission"], widened_rows) if widened_rows else Para("None."))
    sec.sub("Security-group rules added").add(Table(["group", "direction", "ports", "peer", "description"], rule_rows) if rule_rows else Para("None."))
    sec.sub("Stateful resources replaced or deleted").add(Table(["resource", "type", "change"], stateful_rows, marked=set(range(len(stateful_rows)))) if stateful_rows else Para("None."))
    return sec
