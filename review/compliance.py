"""Compliance: every cdk-nag pack's findings and acknowledgements (rule, construct, reason).

cdk-nag 3 writes ``validation-report.json``: per pack, ``violations`` (unacknowledged) and ``suppressedViolations``
(acknowledged, with the acknowledging construct and reason). The acknowledgements themselves are construct
metadata (``aws:cdk:acknowledged-rules`` in each stack's metadata file); one that matches no finding is stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from review.assembly import Assembly
from review.document import Para, Section, Table

ACKNOWLEDGED = "aws:cdk:acknowledged-rules"
# CDK's own built-in template validation (off at synth: cfn-lint runs in the tests) acknowledges its rules too.
NOT_A_PACK = ("CloudFormation-Validate::",)


@dataclass(frozen=True)
class Finding:
    pack: str
    rule: str
    construct: str
    acknowledged_id: str | None = None
    acknowledged_at: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Acknowledgement:
    construct: str  # the path the acknowledgement is attached to (no leading slash)
    id: str  # "<pack>::<rule>[<finding>]"
    reason: str


def packs(assembly: Assembly) -> list[str]:
    return [report["pluginName"] for report in assembly.validation.get("pluginReports", [])]


def findings(assembly: Assembly) -> list[Finding]:
    out = []
    for report in assembly.validation.get("pluginReports", []):
        for violation in report.get("violations", []):
            for construct in violation["violatingConstructs"]:
                out.append(Finding(report["pluginName"], violation["ruleName"], construct["constructPath"]))
        for violation in report.get("suppressedViolations", []):
            for construct in violation["violatingConstructs"]:
                out.append(Finding(report["pluginName"], violation["ruleName"], construct["constructPath"],
                                   violation.get("acknowledgedId"), violation.get("acknowledgedAt"), violation.get("reason")))
    return out


def acknowledgements(assembly: Assembly) -> list[Acknowledgement]:
    out = []
    for stack in assembly.stacks.values():
        for path, entries in stack.metadata.items():
            for entry in entries:
                if entry.get("type") != ACKNOWLEDGED:
                    continue
                for rule_id, reason in entry["data"].items():
                    if not rule_id.startswith(NOT_A_PACK):
                        out.append(Acknowledgement(path.lstrip("/"), rule_id, reason))
    return sorted(set(out), key=lambda a: (a.construct, a.id))


def unmatched(assembly: Assembly) -> list[Acknowledgement]:
    """Acknowledgements no finding of any pack run used: they hide nothing today and would hide a new finding."""
    used = {(f.acknowledged_at, f.acknowledged_id) for f in findings(assembly) if f.acknowledged_id}
    return [a for a in acknowledgements(assembly) if (a.construct, a.id) not in used]


def _short(path: str, stage: str) -> str:
    return path.removeprefix(f"{stage}/")


def section(assembly: Assembly) -> Section:
    sec = Section("Compliance")
    run = packs(assembly)
    every = findings(assembly)
    open_findings = [f for f in every if not f.acknowledged_id]
    stale = unmatched(assembly)
    sec.add(Para(f"cdk-nag packs run: {', '.join(run) or 'none (no validation report)'}. "
                 f"Findings: {len(every)}, acknowledged: {len(every) - len(open_findings)}, unacknowledged: {len(open_findings)}; "
                 f"acknowledgements matching no finding: {len(stale)}.", "warn" if open_findings or stale else "info"))
    counts = Table(["pack", "findings", "acknowledged", "unacknowledged"], [])
    for pack in run:
        mine = [f for f in every if f.pack == pack]
        counts.rows.append([pack, str(len(mine)), str(sum(1 for f in mine if f.acknowledged_id)), str(sum(1 for f in mine if not f.acknowledged_id))])
    sec.add(counts)
    if open_findings:
        sub = sec.sub("Unacknowledged findings")
        rows = [[f.pack, f.rule, _short(f.construct, assembly.stage)] for f in open_findings]
        sub.add(Table(["pack", "rule", "construct"], rows, marked=set(range(len(rows)))))
    acknowledged = sec.sub("Acknowledged findings")
    rows = sorted({(f.pack, f.rule, _short(f.construct, assembly.stage), _short(f.acknowledged_at or "", assembly.stage), f.reason or "")
                   for f in every if f.acknowledged_id})
    acknowledged.add(Table(["pack", "rule", "construct", "acknowledged at", "reason"], [list(r) for r in rows]))
    if stale:
        sub = sec.sub("Acknowledgements matching no finding")
        sub.add(Table(["construct", "id", "reason"], [[_short(a.construct, assembly.stage), a.id, a.reason] for a in stale]))
    return sec
