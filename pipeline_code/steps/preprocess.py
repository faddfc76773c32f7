#!/usr/bin/env python3
"""PreprocessData: SageMaker processing step that cleans, splits and encodes tabular data.

Reads every ``.csv`` and ``.parquet`` file under ``--input-dir`` (recursively, concatenated),
fits a scikit-learn ``ColumnTransformer`` on the training split only (median imputation and
standard scaling for numeric features; an explicit "missing" level and one-hot encoding that
ignores unseen categories for categorical ones), and writes under ``--output-dir``::

    train/train.csv  validation/validation.csv  test/test.csv   transformed features + target
    artifacts/preprocessor.joblib                                the fitted transformer + metadata
    baseline/baseline.json                                       profile of the raw training features
    baseline/train_features.csv                                  the raw training features, no target

Splits are seeded and stratified on the target. Any problem with the input (missing target
column, no data, a column that cannot be parsed) ends the job with exit code 2, one ``ERROR:``
line naming the problem and no output: everything is written to a staging directory and moved
into place only once complete.

Ships with ``stepkit.py`` beside it (the processing job's code tarball): Python 3.9+,
scikit-learn 1.2, pandas 1.1+, pyarrow 14+.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from stepkit import NULL_VALUES, StepError, exit_on_error, one_line

FORMAT_VERSION = 1
DEFAULT_INPUT_DIR = "/opt/ml/processing/input/data"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/output"
SPLITS = ("train", "validation", "test")
OUTPUT_SUBDIRS = ("train", "validation", "test", "artifacts", "baseline")

MISSING_CATEGORY = "missing"  # the explicit level that missing categorical values become
# A whole-number target with more distinct values than this (and than half its rows) is a measurement.
MAX_NUMERIC_CLASSES = 50
MAX_CATEGORIES = 50  # one-hot columns per categorical feature; rarer levels share one "infrequent" column
# A text column with at least this share of numeric cells is a numeric column with bad cells: rejected.
NUMERIC_GARBAGE_THRESHOLD = 0.9
_NUMBER_RE = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 10
MAX_BASELINE_LEVELS = 100
WRITE_CHUNK_ROWS = 100_000
CSV_BLOCK_SIZE = 8 << 20  # bytes per streamed CSV block (the first block decides the column types)


class PreprocessError(StepError):
    """A problem with the input data or arguments; reported as one line, exit code 2."""


# --------------------------------------------------------------------------------------- reading


def find_input_files(input_dir: Path) -> List[Path]:
    if not input_dir.is_dir():
        raise PreprocessError(f"input directory {input_dir} does not exist")
    files = [
        p
        for p in input_dir.rglob("*")
        if p.is_file()
        and p.suffix.lower() in (".csv", ".parquet")
        and not any(part.startswith(".") for part in p.relative_to(input_dir).parts)
    ]
    if not files:
        raise PreprocessError(f"no .csv or .parquet files found in {input_dir}")
    return sorted(files, key=lambda p: p.relative_to(input_dir).as_posix())


def _csv_convert_options(column_types: Optional[Dict[str, pa.DataType]] = None) -> pcsv.ConvertOptions:
    return pcsv.ConvertOptions(
        column_types=column_types or {},
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        true_values=[],  # no boolean inference: "yes"/"true" stay category levels
        false_values=[],
    )


def _compact(name: str, arr, target: str, path: Path):
    """One column of one file as (kind, array) in the compact in-memory form.

    Features: numbers become float32, text becomes dictionary-encoded (int32 codes), so the whole
    data set stays a fraction of its CSV size. The target keeps its type (numbers or text).
    Kinds: "numeric", "text" or "null" (no value at all).
    """
    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    if pa.types.is_large_string(t):
        arr, t = arr.cast(pa.string()), pa.string()
    if pa.types.is_boolean(t) or pa.types.is_temporal(t):
        arr, t = arr.cast(pa.string()), pa.string()
    if pa.types.is_null(t) or arr.null_count == len(arr):
        return "null", arr
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        if name == target:
            return "numeric", arr if pa.types.is_integer(t) else arr.cast(pa.float64())
        return "numeric", arr.cast(pa.float32(), safe=False)
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t)) and path.suffix.lower() == ".csv":
        raise PreprocessError(_not_utf8(path, f"column '{name}' has bytes that are no UTF-8 text"))
    if pa.types.is_string(t):
        # " yes" and "yes" are one category (or class), as inference.py reads them too.
        arr = pc.utf8_trim_whitespace(arr)
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        return "text", arr if name == target else arr.dictionary_encode()
    raise PreprocessError(f"column '{name}' in {path} has unsupported type {t}")


def _compact_table(table: pa.Table, target: str, path: Path) -> Dict[str, List[Tuple[str, object]]]:
    return {name: [_compact(name, table.column(name), target, path)] for name in table.column_names}


def read_csv(path: Path, target: str) -> Tuple[List[str], Dict[str, List[Tuple[str, object]]]]:
    """Column names and compacted column pieces of one CSV file.

    Streams the file block by block (types inferred from the first block) and compacts each block
    as it arrives, which keeps peak memory low. If a later block does not fit the inferred types
    (a number column turning to text, an empty start), or the file has dates, it is read again
    whole, with types inferred over all of it.
    """
    if path.stat().st_size == 0:
        return [], {}
    try:
        with pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_SIZE),
                           convert_options=_csv_convert_options()) as reader:
            names = reader.schema.names
            if any(pa.types.is_temporal(f.type) or pa.types.is_null(f.type) for f in reader.schema):
                raise _ReadWhole()
            pieces: Dict[str, List[Tuple[str, object]]] = {n: [] for n in names}
            for batch in reader:
                for name, column in zip(names, batch.columns):
                    pieces[name].append(_compact(name, column, target, path))
            return names, pieces
    except (pa.ArrowInvalid, _ReadWhole):
        pass
    try:
        table = pcsv.read_csv(path, convert_options=_csv_convert_options())
        # Dates and times are not features this step understands: read them back as plain text
        # so they become categories exactly as written (and as inference will see them).
        temporal = [f.name for f in table.schema if pa.types.is_temporal(f.type)]
        if temporal:
            table = pcsv.read_csv(path, convert_options=_csv_convert_options({n: pa.string() for n in temporal}))
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower().replace("-", ""):
            raise PreprocessError(_not_utf8(path, one_line(exc))) from None
        raise PreprocessError(f"cannot parse {path}: {one_line(exc)}") from None
    return table.column_names, _compact_table(table, target, path)


def _not_utf8(path: Path, detail: str) -> str:
    return (f"{path} is not UTF-8 text ({detail}); save it as UTF-8, e.g. "
            f"iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8.csv")


class _ReadWhole(Exception):
    pass


def read_parquet(path: Path, target: str) -> Tuple[List[str], Dict[str, List[Tuple[str, object]]]]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise PreprocessError(f"cannot read parquet file {path}: {one_line(exc)}") from None
    return table.column_names, _compact_table(table, target, path)



def _unify(name: str, pieces: List[Tuple[str, object]], target: str) -> pa.ChunkedArray:
    """One column from all files: text wins over numbers; empty pieces become nulls."""
    kinds = {kind for kind, _ in pieces}
    if kinds <= {"null"}:
        raise PreprocessError(f"column '{name}' is entirely empty (no value in any input file)")
    if name == target:
        if "text" in kinds:
            kind, dtype = "text", pa.string()
        else:
            floating = any(pa.types.is_floating(a.type) for k, a in pieces if k == "numeric")
            kind, dtype = "numeric", (pa.float64() if floating else pa.int64())
    elif "text" in kinds:
        kind, dtype = "text", pa.dictionary(pa.int32(), pa.string())
    else:
        kind, dtype = "numeric", pa.float32()
    chunks = []
    for piece_kind, arr in pieces:
        if piece_kind == "null":
            arr = pa.nulls(len(arr), type=dtype)
        elif piece_kind != kind:  # numbers in a column that is text elsewhere
            arr = arr.cast(pa.string())
            arr = arr if name == target else arr.dictionary_encode()
        elif arr.type != dtype:
            arr = arr.cast(dtype)
        chunks.extend(arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr])
    return pa.chunked_array(chunks, type=dtype)


def load_input(input_dir: Path, target: str) -> Tuple[pa.Table, List[Path]]:
    """All input files as one compact table (see _compact) and the list of files read."""
    files = find_input_files(input_dir)
    columns: Optional[List[str]] = None
    parts: Dict[str, List[Tuple[str, object]]] = {}
    first = None
    for path in files:
        reader = read_parquet if path.suffix.lower() == ".parquet" else read_csv
        names, pieces = reader(path, target)
        if not names:
            continue
        if any(not n.strip() for n in names):
            raise PreprocessError(f"{path} has a column with an empty name (header: {', '.join(names)})")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PreprocessError(f"{path} has duplicate column name(s): {', '.join(dupes)}")
        if columns is None:
            if target not in names:
                raise PreprocessError(f"target column '{target}' not found in {path}; columns are: {', '.join(names)}")
            columns, first = names, path
            parts = {n: [] for n in names}
        elif set(names) != set(columns):
            missing = [n for n in columns if n not in names]
            extra = [n for n in names if n not in columns]
            detail = "; ".join(
                s for s in (f"missing {', '.join(missing)}" if missing else "", f"extra {', '.join(extra)}" if extra else "") if s
            )
            raise PreprocessError(f"{path} does not have the same columns as {first}: {detail}")
        for name in columns:
            parts[name].extend(p for p in pieces[name] if len(p[1]))
    if columns is None or not parts[columns[0]]:
        raise PreprocessError(f"no data rows in the input files under {input_dir} ({len(files)} file(s), all empty or header-only)")
    if len(columns) < 2:
        raise PreprocessError(f"no feature columns besides the target column '{target}'")
    arrays = [_unify(name, parts.pop(name), target) for name in columns]
    return pa.Table.from_arrays(arrays, names=columns), files


# ----------------------------------------------------------------------------------- validation


def check_numeric_garbage(name: str, column: pd.Series) -> None:
    """Reject a text column whose cells are nearly all numbers: a numeric column with bad cells."""
    counts = column.value_counts(dropna=True)
    counts = counts[counts > 0]
    total = int(counts.sum())
    if not total:
        return
    numeric = pd.Series(counts.index.astype(str), index=counts.index).str.match(_NUMBER_RE).to_numpy()
    numeric_rows = int(counts[numeric].sum())
    if numeric_rows < total and numeric_rows / total >= NUMERIC_GARBAGE_THRESHOLD:
        bad = sorted(str(v) for v in counts.index[~numeric])
        shown = ", ".join(repr(v) for v in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise PreprocessError(
            f"column '{name}' looks numeric ({100.0 * numeric_rows / total:.1f}% of its values are numbers) "
            f"but has non-numeric value(s) {shown}; fix or blank them"
        )


def prepare_target(table: pa.Table, target: str) -> Tuple[pa.Table, pa.Array, str]:
    """Drop rows without a label; return the table, the labels and their type name."""
    labels = table.column(target)
    dropped = labels.null_count
    if dropped:
        table = table.filter(pc.is_valid(labels))
        print(f"  dropped {dropped} row(s) without a value in target column '{target}'", flush=True)
    if table.num_rows == 0:
        raise PreprocessError(f"target column '{target}' has no values")
    labels = table.column(target).combine_chunks()
    if pa.types.is_floating(labels.type):
        as_int = labels.cast(pa.int64(), safe=False)
        if pc.all(pc.equal(as_int.cast(pa.float64()), labels)).as_py():
            labels = as_int
    kind = "string" if pa.types.is_string(labels.type) else ("int64" if pa.types.is_integer(labels.type) else "float64")
    check_classes(labels, target)
    return table, labels, kind


def check_classes(labels: pa.Array, target: str) -> None:
    """Class labels with at least two rows each; numbers that look like a measurement are refused."""
    only = "only classification is supported: use a column of class labels"
    counts = pc.value_counts(labels)
    values, rows = counts.field("values"), counts.field("counts").to_numpy()
    if pa.types.is_floating(labels.type):  # prepare_target made whole numbers int64: these have fractions
        shown = ", ".join(repr(v) for v in pc.unique(labels).to_pylist()[:3])
        raise PreprocessError(f"target column '{target}' looks continuous (values such as {shown}); {only}")
    if pa.types.is_integer(labels.type) and len(values) > MAX_NUMERIC_CLASSES and len(values) > 0.5 * len(labels):
        raise PreprocessError(
            f"target column '{target}' looks continuous ({len(values)} distinct numbers in {len(labels)} rows); {only}"
        )
    lonely = [values[i].as_py() for i in np.flatnonzero(rows < 2)]
    if lonely and len(values) > 1:
        raise PreprocessError(
            f"class {lonely[0]!r} of target column '{target}' has only one row"
            + (f" (and {len(lonely) - 1} more classes)" if len(lonely) > 1 else "")
            + f"; every class needs rows in each split: add rows or drop the class ({only})"
        )


def split_indices(codes: np.ndarray, validation_fraction: float, test_fraction: float, seed: int):
    """Seeded, stratified train/validation/test row indices (fractions are of all rows)."""
    n = len(codes)
    all_rows = np.arange(n)
    try:
        rest, test = train_test_split(all_rows, test_size=test_fraction, stratify=codes, random_state=seed)
        train, validation = train_test_split(
            rest, test_size=validation_fraction / (1.0 - test_fraction), stratify=codes[rest], random_state=seed
        )
    except ValueError as exc:
        raise PreprocessError(f"cannot split {n} rows stratified on the target: {one_line(exc)}") from None
    return {"train": train, "validation": validation, "test": test}


# ------------------------------------------------------------------------------------ transforms


def build_frame(table: pa.Table, features: Sequence[str]) -> Tuple[pd.DataFrame, Dict[str, str]]:
    """Raw features as pandas: numeric float32 (NaN = missing), categorical as pandas categories."""
    data, kinds = {}, {}
    for name in features:
        arr = table.column(name)
        if pa.types.is_dictionary(arr.type):
            data[name], kinds[name] = arr.to_pandas(), "categorical"
        else:
            values = arr.to_numpy()  # float32, nulls as NaN
            if np.isinf(values).any():
                raise PreprocessError(f"column '{name}' has infinite or out-of-range (beyond float32) values")
            data[name], kinds[name] = values, "numeric"
    return pd.DataFrame(data, columns=list(features)), kinds


def make_preprocessor(numeric: Sequence[str], categorical: Sequence[str]) -> ColumnTransformer:
    transformers = []
    if numeric:
        transformers.append(
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), list(numeric))
        )
    if categorical:
        transformers.append(
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                max_categories=MAX_CATEGORIES,
                                sparse_output=False,
                                dtype=np.uint8,  # 0/1 columns: a quarter of float32's memory
                            ),
                        ),
                    ]
                ),
                list(categorical),
            )
        )
    # pandas output keeps the float32 numeric block and the uint8 one-hot block apart instead of
    # stacking everything into one float32 array: the fit's peak memory falls by about half.
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0).set_output(transform="pandas")


# -------------------------------------------------------------------------------------- baseline


def _num(x) -> Optional[float]:
    x = float(x)
    return x if math.isfinite(x) else None


def profile_feature(name: str, kind: str, column) -> dict:
    """Drift-check profile of one raw training feature (schema: pipeline_code/README.md)."""
    n = len(column)
    if kind == "numeric":
        values = np.asarray(column, dtype=np.float64)
        present = values[~np.isnan(values)]
        profile = {
            "type": "numeric",
            "count": int(n),
            "missing_count": int(n - present.size),
            "missing_fraction": _num((n - present.size) / n) if n else 0.0,
        }
        if present.size:
            counts, edges = np.histogram(present, bins=HISTOGRAM_BINS)
            profile.update(
                mean=_num(present.mean()),
                std=_num(present.std(ddof=0)),
                min=_num(present.min()),
                max=_num(present.max()),
                quantiles={f"p{int(round(q * 100)):02d}": _num(v) for q, v in zip(QUANTILES, np.quantile(present, QUANTILES))},
                histogram={"bin_edges": [_num(e) for e in edges], "counts": [int(c) for c in counts]},
            )
        else:
            profile.update(mean=None, std=None, min=None, max=None, quantiles=None, histogram=None)
        return profile
    counts = pd.Series(column).value_counts(dropna=True)
    counts = counts[counts > 0]
    present = int(counts.sum())
    order = sorted(zip(counts.index.astype(str), counts.to_numpy().tolist()), key=lambda kv: (-kv[1], kv[0]))
    kept, rest = order[:MAX_BASELINE_LEVELS], order[MAX_BASELINE_LEVELS:]
    return {
        "type": "categorical",
        "count": int(n),
        "missing_count": int(n - present),
        "missing_fraction": _num((n - present) / n) if n else 0.0,
        "distinct": len(order),
        "counts": {k: int(v) for k, v in kept},
        "frequencies": {k: _num(v / present) for k, v in kept},
        "other_levels": len(rest),
        "other_fraction": _num(sum(v for _, v in rest) / present) if present else 0.0,
    }


def build_baseline(train: pd.DataFrame, labels: pa.Array, kinds: Dict[str, str], target: str, meta: dict) -> dict:
    label_counts = pc.value_counts(labels)
    pairs = sorted(
        zip([str(v) for v in label_counts.field("values").to_pylist()], label_counts.field("counts").to_pylist()),
        key=lambda kv: (-kv[1], kv[0]),
    )
    total = sum(c for _, c in pairs)
    return {
        "format_version": FORMAT_VERSION,
        "dataset": meta,
        "row_count": int(len(train)),
        "features": {name: profile_feature(name, kinds[name], train[name]) for name in train.columns},
        "target": {
            "column": target,
            "count": int(total),
            "counts": {k: int(c) for k, c in pairs},
            "frequencies": {k: _num(c / total) for k, c in pairs},
        },
    }


# --------------------------------------------------------------------------------------- writing


def write_split_csv(path: Path, blocks, labels: pa.Array, target: str) -> int:
    """Stream (transformed feature block, row indices) pairs to one CSV file via Arrow."""
    rows, writer = 0, None
    try:
        for block, index in blocks:
            table = pa.Table.from_pandas(block, preserve_index=False).append_column(target, labels.take(pa.array(index)))
            if writer is None:
                writer = pcsv.CSVWriter(str(path), table.schema, write_options=pcsv.WriteOptions(quoting_style="needed"))
            writer.write_table(table)
            rows += len(index)
    finally:
        if writer is not None:
            writer.close()
    return rows


def write_features_csv(path: Path, frame: pd.DataFrame) -> int:
    """The raw features as a CSV with a header row, no target: numbers as float32, text as read,
    missing values as empty cells (the shape of a CSV request to the endpoint, plus the header)."""
    rows, writer = 0, None
    try:
        for start in range(0, len(frame), WRITE_CHUNK_ROWS):
            chunk = frame.iloc[start : start + WRITE_CHUNK_ROWS]
            columns = []
            for name in chunk.columns:
                arr = pa.array(chunk[name], from_pandas=True)  # NaN -> null
                columns.append(arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr)
            table = pa.Table.from_arrays(columns, names=[str(n) for n in chunk.columns])
            if writer is None:
                writer = pcsv.CSVWriter(str(path), table.schema, write_options=pcsv.WriteOptions(quoting_style="needed"))
            writer.write_table(table)
            rows += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _transformed_blocks(frame: pd.DataFrame, index: np.ndarray, preprocessor: ColumnTransformer):
    for start in range(0, len(index), WRITE_CHUNK_ROWS):
        yield preprocessor.transform(frame.iloc[start : start + WRITE_CHUNK_ROWS]), index[start : start + WRITE_CHUNK_ROWS]


def _row_blocks(transformed: pd.DataFrame, index: np.ndarray):
    for start in range(0, len(index), WRITE_CHUNK_ROWS):
        yield transformed.iloc[start : start + WRITE_CHUNK_ROWS], index[start : start + WRITE_CHUNK_ROWS]


def publish(staging: Path, output_dir: Path) -> None:
    for sub in OUTPUT_SUBDIRS:
        dest = output_dir / sub
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging / sub, dest)


# ------------------------------------------------------------------------------------------ main


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", default=DEFAULT_INPUT_DIR, help=f"input channel directory (default: {DEFAULT_INPUT_DIR})")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help=f"output directory (default: {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--target-column", required=True, help="name of the label column")
    parser.add_argument("--validation-fraction", type=float, default=0.15, help="share of all rows for validation (default: 0.15)")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="share of all rows for test (default: 0.15)")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the split (default: 42)")
    args = parser.parse_args(argv)
    v, t = args.validation_fraction, args.test_fraction
    if not (0.0 < v < 1.0 and 0.0 < t < 1.0 and v + t < 1.0):
        parser.error(f"--validation-fraction ({v}) and --test-fraction ({t}) must each be in (0, 1) and sum to less than 1")
    return args


def _release_arrow_memory() -> None:
    pa.default_memory_pool().release_unused()


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    input_dir, output_dir, target = Path(args.input_dir), Path(args.output_dir), args.target_column
    try:
        pa.jemalloc_set_decay_ms(0)  # hand freed Arrow memory back at once: lower peak RSS
    except (NotImplementedError, pa.ArrowException):  # pragma: no cover - jemalloc is not Arrow's allocator here
        pass

    # 1. Read and validate everything before writing anything.
    table, files = load_input(input_dir, target)
    print(f"[preprocess] read {table.num_rows} rows x {table.num_columns} columns from {len(files)} file(s)", flush=True)
    table, labels, label_kind = prepare_target(table, target)
    features = [c for c in table.column_names if c != target]
    frame, kinds = build_frame(table, features)
    del table
    _release_arrow_memory()
    for name in features:
        if kinds[name] == "categorical":
            check_numeric_garbage(name, frame[name])
    numeric = [f for f in features if kinds[f] == "numeric"]
    categorical = [f for f in features if kinds[f] == "categorical"]
    codes = labels.dictionary_encode().indices.to_numpy(zero_copy_only=False)
    if len(np.unique(codes)) < 2:
        raise PreprocessError(f"target column '{target}' has a single class ({labels[0].as_py()!r}); need at least 2")
    splits = split_indices(codes, args.validation_fraction, args.test_fraction, args.seed)
    del codes
    frames = {split: frame.iloc[splits[split]] for split in SPLITS}
    del frame

    # 2. Fit on the training split only.
    preprocessor = make_preprocessor(numeric, categorical)
    train_transformed = preprocessor.fit_transform(frames["train"])
    names = [str(n) for n in preprocessor.get_feature_names_out()]
    classes = sorted(pc.unique(labels).to_pylist(), key=lambda v: (str(type(v)), v))
    payload = {
        "format_version": FORMAT_VERSION,
        "preprocessor": preprocessor,
        "feature_columns": list(features),
        "feature_types": dict(kinds),
        "numeric_columns": numeric,
        "categorical_columns": categorical,
        "output_feature_names": names,
        "target_column": target,
        "target_type": label_kind,
        "classes": classes,
        "null_values": list(NULL_VALUES),
    }
    meta = {"input_files": [p.relative_to(input_dir).as_posix() for p in files], "seed": args.seed,
            "split_rows": {s: int(len(splits[s])) for s in SPLITS}}
    baseline = build_baseline(frames["train"], labels.take(pa.array(splits["train"])), kinds, target, meta)

    # 3. Write to a staging directory inside the output directory, then move into place.
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".preprocess-staging-", dir=str(output_dir)))
    try:
        for sub in OUTPUT_SUBDIRS:
            (staging / sub).mkdir()
        # For a SageMaker Model Monitor data-quality baseline (optional pipeline step): its statistics
        # must describe what the endpoint receives, the raw features without the target.
        write_features_csv(staging / "baseline" / "train_features.csv", frames.pop("train"))
        write_split_csv(staging / "train" / "train.csv", _row_blocks(train_transformed, splits["train"]), labels, target)
        del train_transformed
        for split in ("validation", "test"):
            blocks = _transformed_blocks(frames[split], splits[split], preprocessor)
            write_split_csv(staging / split / f"{split}.csv", blocks, labels, target)
        joblib.dump(payload, staging / "artifacts" / "preprocessor.joblib")
        with open(staging / "baseline" / "baseline.json", "w", encoding="utf-8") as fh:
            json.dump(baseline, fh, indent=2, allow_nan=False)
            fh.write("\n")
        publish(staging, output_dir)
    except BaseException:
        if created:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    summary = {s: int(len(splits[s])) for s in SPLITS}
    print(
        f"[preprocess] {len(features)} features ({len(numeric)} numeric, {len(categorical)} categorical) -> "
        f"{len(names)} columns; rows train={summary['train']} validation={summary['validation']} test={summary['test']}; "
        f"classes={len(classes)}; {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return exit_on_error(lambda: run(args))  # run removes an output folder it created when it fails


if __name__ == "__main__":
    sys.exit(main())
