"""``python -m review --env NAME [--base GIT_REF]`` (``make review ENV=name [BASE=ref]``): synthesize the environment
offline with every cdk-nag pack, then write ``cdk.out/review/<env>/index.html`` and ``index.md``."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from config import ConfigError, load_config
from review import report
from review.assembly import Assembly
from review.synth import ROOT, SynthError, export_commit, synthesize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m review", description=__doc__)
    parser.add_argument("--env", default="sandbox")
    parser.add_argument("--base", help="a git ref (commit, branch, tag) to compare with: the 'Changes since' section")
    parser.add_argument("--outdir", type=Path, default=ROOT / "cdk.out", help="the cloud assembly directory (default cdk.out)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.env)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        head = Assembly.read(synthesize(args.env, args.outdir))
        base = None
        if args.base:
            with tempfile.TemporaryDirectory(prefix="review-base-") as tmp:
                checkout = export_commit(args.base, Path(tmp) / "src")
                base = Assembly.read(synthesize(args.env, Path(tmp) / "cdk.out", checkout=checkout))
    except SynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    target = args.outdir / "review" / args.env
    shutil.rmtree(target, ignore_errors=True)
    from review import pictures

    figures = pictures.section(head, target)
    html_file, md_file = report.write(report.build(head, config, base=base, base_ref=args.base, figures=figures), target)
    print(f"Review of '{args.env}': {html_file} (and {md_file.name}, pictures in {target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
