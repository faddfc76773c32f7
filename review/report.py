"""The review of one environment: its sections built from the cloud assembly and the configuration, written as
``index.html`` (self-contained) and ``index.md`` with the pictures next to them."""

from __future__ import annotations

from pathlib import Path

from review import compliance, cost, diff, encryption, iam, network, retention
from review.assembly import Assembly
from review.document import Report, Section, to_html, to_markdown


def build(assembly: Assembly, config, *, base: Assembly | None = None, base_ref: str | None = None,
          figures: Section | None = None) -> Report:
    sections = []
    if base is not None:
        sections.append(diff.section(base, assembly, base_ref=base_ref or "BASE", config=config))
    if figures is not None:
        sections.append(figures)
    sections += [
        iam.section(assembly, getattr(config, "account", None)),
        network.section(assembly),
        encryption.section(assembly),
        retention.section(assembly, config),
        cost.section(assembly, config),
        compliance.section(assembly),
    ]
    prices = cost.price_table(getattr(config, "region", None))
    open_findings = [f for f in compliance.findings(assembly) if not f.acknowledged_id]
    summary = [
        f"Environment '{config.name}': account {getattr(config, 'account', None) or 'any (sandbox)'}, region {getattr(config, 'region', None) or 'any (sandbox)'}; "
        f"stacks: {', '.join(s.name for s in assembly.stacks.values())}.",
        f"Generated from the cloud assembly in {_shown_path(assembly.outdir)} and the configuration only (no AWS call).",
        f"Always-on cost: about ${cost.monthly_total(assembly, prices):,.2f} per month ({prices['region']} prices of {prices['as_of']}).",
        f"cdk-nag packs: {', '.join(compliance.packs(assembly)) or 'none'}; unacknowledged findings: {len(open_findings)}.",
    ]
    return Report(title=f"Review of {assembly.stage}", summary=summary, sections=sections)


def write(report: Report, outdir: Path) -> tuple[Path, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    html_file, md_file = outdir / "index.html", outdir / "index.md"
    html_file.write_text(to_html(report), encoding="utf-8")
    md_file.write_text(to_markdown(report, base_dir=outdir), encoding="utf-8")
    return html_file, md_file


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
