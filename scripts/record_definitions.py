#!/usr/bin/env python3
"""Record the pipeline definitions of every shipped environment in pipeline_code/definitions/recorded/.

Builds each environment's stage (the sandbox and config/environments/*.yaml), as if a model package were
approved so the batch-scoring and drift-check pipelines are built too, and writes each definition it
used as ``<pipeline name>.json`` (indented for review) plus ``index.json`` (cache key, digest, the
arguments and builder sources the key covers). Definitions no environment uses any more are removed.
A synth finds a recorded definition by pipeline name and uses it only while its key still matches, so
a stale file is never used; the test suite fails until it is recorded again.

    make definitions        (.venv/bin/python scripts/record_definitions.py)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import build_app, cdk_json_context, make_app  # noqa: E402
from config import load_config  # noqa: E402
from config.loader import available_environments  # noqa: E402
from ops.approved_model import context_key  # noqa: E402
from pipeline_code.definitions import cache  # noqa: E402

# Where the sandbox pretends to be: the package ARN needs a region and an account, the definitions do not.
SANDBOX_REGION, SANDBOX_ACCOUNT = "eu-west-1", "111111111111"


def approved_placeholder(env: str) -> dict:
    """A recorded package for ``env``: serving and monitoring exist, so all three pipelines are built."""
    config = load_config(env)
    group = f"{config.resource_prefix}-models"
    arn = f"arn:aws:sagemaker:{config.region or SANDBOX_REGION}:{config.account or SANDBOX_ACCOUNT}:model-package/{group}/1"
    return {"arn": arn, "version": 1, "group": group, "creation_time": "2026-01-01T00:00:00Z"}


def record() -> dict[str, cache.Recording]:
    cache.recording = {}
    with tempfile.TemporaryDirectory() as outdir:
        for env in available_environments():
            context = {**cdk_json_context(recorded=False), "env": env, context_key(env): approved_placeholder(env)}
            build_app(make_app(outdir=outdir, context=context))  # constructing the stage builds its definitions
    recorded, cache.recording = cache.recording, None
    return recorded


def main() -> int:
    os.environ.pop("CDK_CONTEXT_JSON", None)
    recorded = record()
    cache.RECORDED_DIR.mkdir(exist_ok=True)
    index = {}
    for name, entry in sorted(recorded.items()):
        pretty = json.dumps(json.loads(entry.definition), sort_keys=True, indent=1) + "\n"
        (cache.RECORDED_DIR / f"{name}.json").write_text(pretty, encoding="utf-8")
        index[name] = {"key": entry.key, "sha256": cache.digest(entry.definition), "sources": list(entry.sources), "arguments": entry.arguments}
    (cache.RECORDED_DIR / "index.json").write_text(json.dumps(index, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    for stale in sorted(cache.RECORDED_DIR.glob("*.json")):
        if stale.stem not in index and stale.name != "index.json":
            stale.unlink()
            print(f"removed {stale.relative_to(ROOT)} (no environment uses it)")
    print(f"recorded {len(index)} definitions in {cache.RECORDED_DIR.relative_to(ROOT)}: {', '.join(index)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
