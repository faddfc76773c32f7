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


def _members(paths: list[Path]) -> dict[str, Path]:
    """Archive name -> file: a file under its name, a package directory's ``.py`` files under ``<dir>/``."""
    members = {}
    for path in paths:
        if path.is_dir():
            for source in path.rglob("*.py"):
                members[f"{path.name}/{source.relative_to(path).as_posix()}"] = source
        else:
            members[path.name] = path
    return members


def deterministic_tarball(files: list[Path]) -> bytes:
    """A ``.tar.gz`` of ``files`` whose bytes depend only on their names and contents.

    Files go in at the top level; a directory (a Python package) adds its ``.py`` files under its name.
    """
    buffer = io.BytesIO()
    # mtime=0 in the gzip header and fixed tar metadata: same inputs, same bytes, same asset hash.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in sorted(_members(list(files)).items()):
                data = path.read_bytes()
                info = tarfile.TarInfo(name=name)
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
    """Step code as content-hashed ``.tar.gz`` assets: one per processing job, one training/serving source.

    A job's entry point ships with the helpers it imports, so each is a tarball; a training
    ``source_dir`` must be one anyway, and CDK's directory assets are zips, so the tarballs are built
    here, deterministically (same files, same bytes, same object key). A processing job unpacks its
    tarball itself (``pipeline_code.pipeline.tarball_command``).

    :param processing: the files of each processing job's tarball, by logical name (e.g.
        ``{"preprocess": [preprocess.py, stepkit.py]}``; a package directory adds its ``.py`` files).
        Default: none.
    :param source_files: files of the training source tarball (``train.py``, ``inference.py``, ...).
        Default: none (no tarball).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        processing: dict[str, list[Path]] | None = None,
        source_files: list[Path] = (),
    ) -> None:
        super().__init__(scope, id_)
        self.processing = {
            name: s3_assets.Asset(self, f"{name.title().replace('-', '')}Code", path=str(_stage(deterministic_tarball(files))))
            for name, files in (processing or {}).items()
        }
        self.source_tarball = (
            s3_assets.Asset(self, "TrainingSource", path=str(_stage(deterministic_tarball(list(source_files)))))
            if source_files
            else None
        )

    @property
    def assets(self) -> list[s3_assets.Asset]:
        return [*self.processing.values(), *([self.source_tarball] if self.source_tarball else [])]

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
