"""What the step scripts share: missing-value cells, one-line errors, atomic writes, reading the
transformed split CSVs, ISO 8601 times and AWS errors.

It ships beside each script that imports it (in the processing code tarballs and the training source
tarball; ``ml_constructs.step_code``), and the scripts import it by its top-level name, as SageMaker
runs them: from their code directory, which Python puts first on ``sys.path``. ``inference.py`` does
not import it: train.py copies that one file alone into every ``model.tar.gz`` (``code/``).

Python 3.9+, the standard library, numpy and pyarrow (the scikit-learn 1.2-1 container).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, List, Sequence, Tuple, Union

# Cells read as missing, in data files and in requests (inference.py keeps its own copy: see above).
NULL_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "NULL", "null", "None", "#N/A", "<NA>"]


class StepError(Exception):
    """A problem with a step's inputs or arguments: ``exit_on_error`` reports it as one line, exit code 2."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (Arrow, botocore and OS errors span several)."""
    return " ".join(str(exc).split())


def exit_on_error(run: Callable[[], Any], *, failure_file: Union[str, None] = None) -> int:
    """Run a step: 0, or 2 after printing ``ERROR: <message>`` for a ``StepError`` (also written to
    ``failure_file`` if given and its directory exists, e.g. training's ``$SM_OUTPUT_DIR/failure``)."""
    try:
        run()
    except StepError as exc:
        message = f"ERROR: {exc}"
        print(message, file=sys.stderr, flush=True)
        if failure_file and os.path.isdir(os.path.dirname(failure_file)):
            with open(failure_file, "w", encoding="utf-8") as fh:
                fh.write(message + "\n")
        return 2
    return 0


def atomic_write(path: Path, data: Union[bytes, str, Callable[[Any], Any]]) -> None:
    """Write ``path`` through a temporary file in its directory and a rename: readers (and a restarted
    job) see the old file or the whole new one, never a part. ``data``: bytes, text (UTF-8, ``\\n``
    line ends) or a function writing to the binary file object."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, str):
                fh.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------- transformed splits


def csv_files(directory: Path, what: str) -> List[Path]:
    """Every ``.csv`` file under ``directory``, in sorted order; StepError if there is none."""
    if not directory.is_dir():
        raise StepError(f"{what} directory {directory} does not exist")
    files = sorted(p for p in directory.rglob("*.csv") if p.is_file())
    if not files:
        raise StepError(f"no .csv file in the {what} directory {directory}")
    return files


def read_split(files: Sequence[Path], payload: dict, target: str):
    """Transformed features (float32, in the preprocessor's column order) and labels of split CSVs
    written by preprocess.py; ``payload`` is its preprocessor artifact."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    label_types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
    names = list(payload["output_feature_names"])
    types = {n: pa.float32() for n in names}
    types[target] = label_types.get(payload.get("target_type"), pa.string())
    options = pcsv.ConvertOptions(column_types=types, strings_can_be_null=False, true_values=[], false_values=[])
    tables = []
    for path in files:
        try:
            table = pcsv.read_csv(path, convert_options=options)
        except pa.ArrowInvalid as exc:
            raise StepError(f"cannot parse {path}: {one_line(exc)}") from None
        missing = [n for n in names + [target] if n not in table.column_names]
        if missing:
            raise StepError(f"{path} lacks column(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        tables.append(table.select(names + [target]))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    where = ", ".join(str(p) for p in files)
    if table.num_rows == 0:
        raise StepError(f"no rows in {where}")
    X = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        X[:, j] = table.column(name).to_numpy()
    labels = table.column(target)
    if labels.null_count:
        raise StepError(f"{labels.null_count} row(s) without a label in {where}")
    return X, labels.to_numpy(zero_copy_only=False)


# ------------------------------------------------------------------------------------------ time

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time as an aware UTC datetime; no offset means UTC. ValueError if not."""
    match = _ISO_RE.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro,
                     tzinfo=timezone.utc)
    if zone and zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        value = value - offset if zone[0] == "+" else value + offset
    return value


def format_time(value: datetime) -> str:
    """``value`` in UTC as ISO 8601 with a ``Z`` (fractions only when there are some)."""
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"


# ------------------------------------------------------------------------------------------- AWS


def aws_errors() -> Tuple[type, ...]:
    """botocore's exception bases (a client object implies botocore is installed)."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover
        return ()
    return BotoCoreError, ClientError


def aws_error_code(exc: BaseException) -> str:
    """The service's error code (``NoSuchKey``, ``AccessDenied``, ...); empty when no service answered."""
    response = getattr(exc, "response", None)
    return str(((response or {}).get("Error") or {}).get("Code") or "") if isinstance(response, dict) else ""
