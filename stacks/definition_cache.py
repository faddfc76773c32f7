"""A file cache for pipeline definitions: building one imports the SageMaker SDK (1.5 s)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def cached_build(*, cache_dir: Path | None, arguments: dict, sources: list[Path], build: Callable[[], str]) -> str:
    """``build()``, or an earlier result stored in ``cache_dir`` for the same inputs.

    The key covers ``arguments`` (JSON-serialisable), the ``sources`` the builder is made of and the
    SDK version, so a stale entry cannot be used; builds are deterministic, so a hit is
    byte-identical to a rebuild. Without ``cache_dir`` it always builds.
    """
    if cache_dir is None:
        return build()
    digest = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode())
    digest.update(importlib.metadata.version("sagemaker").encode())
    for source in sources:
        digest.update(source.read_bytes())
    entry = cache_dir / f"{digest.hexdigest()}.json"
    if entry.is_file():
        return entry.read_text(encoding="utf-8")
    definition = build()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(definition)
    os.replace(partial, entry)
    return definition
