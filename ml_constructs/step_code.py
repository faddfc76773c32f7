"""The pipeline's step code, shipped as content-hashed S3 assets."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct


def deterministic_tarball(files: list[Path]) -> bytes:
    """A ``.tar.gz`` of ``files`` (flat) whose bytes depend only on their names and contents."""
    buffer = io.BytesIO()
    # mtime=0 in the gzip header and fixed tar metadata: same inputs, same bytes, same asset hash.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(files, key=lambda p: p.name):
                data = path.read_bytes()
                info = tarfile.TarInfo(name=path.name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _stage(tarball: bytes) -> Path:
    """Write the tarball to a content-named file that CDK then copies into cdk.out as the asset.

    A file already there is trusted only if its bytes are the tarball's; it is (re)written through
    a private temporary file and an atomic rename, so a concurrent synth never sees half a file.
    """
    staged = Path(tempfile.gettempdir()) / f"ml-platform-source-{hashlib.sha256(tarball).hexdigest()}.tar.gz"
    if staged.is_file() and staged.read_bytes() == tarball:
        return staged
    fd, partial = tempfile.mkstemp(dir=staged.parent, prefix=".ml-platform-source-")
    with os.fdopen(fd, "wb") as out:
        out.write(tarball)
    os.replace(partial, staged)
    return staged


class StepCode(Construct):
    """Processing scripts as single-file assets; training/serving code as one ``.tar.gz`` asset.

    SageMaker runs a processing script under its own file name, so script assets keep
    their ``.py`` ending; training ``source_dir`` must be a tarball, which CDK's
    directory assets (zips) are not, so the tarball is built here, deterministically.

    :param scripts: processing scripts by logical name (e.g. ``{"preprocess": path}``).
    :param source_files: files of the training source tarball (``train.py``, ``inference.py``).
        Default: none (no tarball).
    """

    def __init__(self, scope: Construct, id_: str, *, scripts: dict[str, Path], source_files: list[Path] = ()) -> None:
        super().__init__(scope, id_)
        self.scripts = {name: s3_assets.Asset(self, f"{name.title()}Script", path=str(path)) for name, path in scripts.items()}
        self.source_tarball = (
            s3_assets.Asset(self, "TrainingSource", path=str(_stage(deterministic_tarball(list(source_files)))))
            if source_files
            else None
        )

    @property
    def assets(self) -> list[s3_assets.Asset]:
        return [*self.scripts.values(), *([self.source_tarball] if self.source_tarball else [])]

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` (the role SageMaker jobs and models run with) download exactly these objects."""
        # Processing inputs are S3 prefixes: SageMaker lists them before downloading.
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket"],
            resource_arns=[self.assets[0].bucket.bucket_arn],
            conditions={"StringEquals": {"s3:prefix": [asset.s3_object_key for asset in self.assets]}},
        )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[asset.bucket.arn_for_objects(asset.s3_object_key) for asset in self.assets],
        )
