"""The report as data (sections of paragraphs, tables and figures) and its two renderings: Markdown and one
self-contained HTML file (inline CSS and SVG, no script, no external reference), so it opens from disk."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Para:
    text: str
    # "warn" marks what a reviewer must look at (wildcards, internet paths, unacknowledged findings).
    level: str = "info"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    # Rows whose index is here are highlighted (cross-account trust, explicit denies, widened permissions).
    marked: set[int] = field(default_factory=set)


@dataclass
class Figure:
    """A generated picture: ``svg`` is inlined into the HTML, the Markdown links the file next to it."""

    svg_file: Path
    caption: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    subsections: list["Section"] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")

    def add(self, *blocks) -> "Section":
        self.blocks.extend(blocks)
        return self

    def sub(self, title: str) -> "Section":
        section = Section(title)
        self.subsections.append(section)
        return section


@dataclass
class Report:
    title: str
    summary: list[str]
    sections: list[Section]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>") or " "


def to_markdown(report: Report, *, base_dir: Path) -> str:
    lines = [f"# {report.title}", ""]
    lines += [f"- {item}" for item in report.summary] + [""]
    lines += ["Contents: " + " · ".join(f"[{s.title}](#{s.anchor})" for s in report.sections), ""]

    def emit(section: Section, depth: int) -> None:
        lines.extend([f"{'#' * depth} {section.title}", ""])
        for block in section.blocks:
            if isinstance(block, Para):
                lines.extend([f"> **Review:** {block.text}" if block.level == "warn" else block.text, ""])
            elif isinstance(block, Table):
                lines.append("| " + " | ".join(block.headers) + " |")
                lines.append("|" + "---|" * len(block.headers))
                for index, row in enumerate(block.rows):
                    cells = [_md_cell(c) for c in row]
                    if index in block.marked:
                        cells[0] = f"**{cells[0]}** ⚠"
                    lines.append("| " + " | ".join(cells) + " |")
                lines.append("")
            elif isinstance(block, Figure):
                lines.extend([f"![{block.caption}]({block.svg_file.relative_to(base_dir).as_posix()})", ""])
        for sub in section.subsections:
            emit(sub, depth + 1)

    for section in report.sections:
        emit(section, 2)
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1b1f24;line-height:1.4}
h1{border-bottom:2px solid #d0d7de}h2{border-bottom:1px solid #d0d7de;margin-top:2.5rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0}
tr.marked td{background:#fff4e5}td code{white-space:pre-wrap;word-break:break-all}
.warn{border-left:4px solid #d4a72c;background:#fff8c5;padding:.4rem .7rem}
nav a{margin-right:1rem}figure{margin:1rem 0;overflow:auto}figure svg{max-width:100%;height:auto}
"""


def to_html(report: Report) -> str:
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1><ul>",
        *[f"<li>{esc(item)}</li>" for item in report.summary],
        "</ul><nav>",
        *[f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in report.sections],
        "</nav>",
    ]

    def emit(section: Section, depth: int) -> None:
        out.append(f'<h{depth} id="{section.anchor}">{esc(section.title)}</h{depth}>')
        for block in section.blocks:
            if isinstance(block, Para):
                out.append(f'<p class="warn">{esc(block.text)}</p>' if block.level == "warn" else f"<p>{esc(block.text)}</p>")
            elif isinstance(block, Table):
                out.append("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in block.headers) + "</tr></thead><tbody>")
                for index, row in enumerate(block.rows):
                    cls = ' class="marked"' if index in block.marked else ""
                    cells = "".join(f"<td><code>{esc(str(c))}</code></td>" if i else f"<td>{esc(str(c))}</td>" for i, c in enumerate(row))
                    out.append(f"<tr{cls}>{cells}</tr>")
                out.append("</tbody></table>")
            elif isinstance(block, Figure):
                svg = block.svg_file.read_text(encoding="utf-8")
                svg = svg[svg.find("<svg"):]  # drop the XML prolog and doctype: inline SVG needs neither
                out.append(f"<figure>{svg}<figcaption>{esc(block.caption)}</figcaption></figure>")
        for sub in section.subsections:
            emit(sub, min(depth + 1, 6))

    for section in report.sections:
        emit(section, 2)
    out.append("</body></html>")
    return "\n".join(out) + "\n"
