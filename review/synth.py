"""Synthesize an environment offline, as ``make synth`` does, into a given directory — of this checkout or of
another commit (``git archive`` into a temporary directory).

It runs the checkout's ``app.py`` the way the CDK CLI does (``CDK_OUTDIR``, ``CDK_CONTEXT_JSON``), so an older
commit synthesizes with its own code whatever its internal API was. cdk-nag failing (exit 1) still leaves the
assembly and the validation report: the review shows the findings.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The context key app.py reads to add the NIST 800-53 R5, HIPAA Security and PCI DSS 3.2.1 packs to AwsSolutions.
# app.COMPLIANCE_PACKS_CONTEXT (not imported: that would load the CDK into the reviewing process).
COMPLIANCE_PACKS_CONTEXT = "ml-platform:compliance-packs"


class SynthError(Exception):
    """The app did not produce a cloud assembly; the message has its output."""


def context_of(checkout: Path, env: str, *, compliance_packs: bool) -> dict:
    """What the CLI would pass: cdk.json's context, the recorded cdk.context.json values, the environment."""
    context = json.loads((checkout / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    recorded = checkout / "cdk.context.json"
    if recorded.is_file():
        context.update(json.loads(recorded.read_text(encoding="utf-8")))
    context["env"] = env
    if compliance_packs:
        context[COMPLIANCE_PACKS_CONTEXT] = True
    return context


def synthesize(env: str, outdir: Path, *, checkout: Path = ROOT, compliance_packs: bool = True) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    environ = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context_of(checkout, env, compliance_packs=compliance_packs)),
        "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # A commit's pipeline definitions are cached by content: the checkout's cache serves the base too.
        "ML_PLATFORM_CACHE_DIR": os.environ.get("ML_PLATFORM_CACHE_DIR", str(ROOT / ".cache")),
    }
    result = subprocess.run([sys.executable, "app.py"], cwd=checkout, env=environ, capture_output=True, text=True)
    if not (outdir / "manifest.json").is_file() or (result.returncode and "cdk-nag" not in result.stderr):
        raise SynthError(f"synth of '{env}' in {checkout} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return outdir


def export_commit(ref: str, target: Path, *, repo: Path = ROOT) -> Path:
    """The tree of ``ref`` unpacked into ``target`` (no checkout, no worktree bookkeeping)."""
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref], capture_output=True, check=False)
    if archive.returncode:
        raise SynthError(f"git archive {ref} failed: {archive.stderr.decode(errors='replace').strip()}")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target
