"""The pipeline's step code, shipped as content-hashed S3 assets."""

from __future__ import annotations

import gzip
import hashlib
import io
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


class StepCode(Construct):
    """Processing scripts as single-file assets; training/serving code as one ``.tar.gz`` asset.

    SageMaker runs a processing script under its own file name, so script assets keep
    their ``.py`` ending; training ``source_dir`` must be a tarball, which CDK's
    directory assets (zips) are not, so the tarball is built here, deterministically.

    :param scripts: processing scripts by logical name (e.g. ``{"preprocess": path}``).
    :param source_files: files of the training source tarball (``train.py``, ``inference.py``).
    """

    def __init__(self, scope: Construct, id_: str, *, scripts: dict[str, Path], source_files: list[Path]) -> None:
        super().__init__(scope, id_)
        self.scripts = {name: s3_assets.Asset(self, f"{name.title()}Script", path=str(path)) for name, path in scripts.items()}
        tarball = deterministic_tarball(source_files)
        digest = hashlib.sha256(tarball).hexdigest()[:16]
        # A content-named file outside the repo: CDK copies it into cdk.out when staging the asset.
        staged = Path(tempfile.gettempdir()) / f"ml-platform-source-{digest}" / "source.tar.gz"
        if not staged.exists():
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(tarball)
        self.source_tarball = s3_assets.Asset(self, "TrainingSource", path=str(staged))

    @property
    def assets(self) -> list[s3_assets.Asset]:
        return [*self.scripts.values(), self.source_tarball]

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` (the role SageMaker jobs and models run with) download exactly these objects."""
        # Processing inputs are S3 prefixes: SageMaker lists them before downloading.
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:ListBucket"],
            resource_arns=[self.source_tarball.bucket.bucket_arn],
            conditions={"StringEquals": {"s3:prefix": [asset.s3_object_key for asset in self.assets]}},
        )
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["s3:GetObject"],
            resource_arns=[asset.bucket.arn_for_objects(asset.s3_object_key) for asset in self.assets],
        )
