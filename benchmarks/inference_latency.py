#!/usr/bin/env python3
"""Serving latency and throughput: pipeline_code/steps/inference.py vs bare predict and the toolkit decoder.

Trains a model once in a temporary directory with the real step scripts (preprocess.py, then
train.py, with the local run's defaults: random forest, 200 trees, n_jobs=-1, seed 42) on
pipeline_code/data/sample.csv, loads it with ``model_fn``, and times in one run, on the same
deterministic inputs (rows sampled with seed 0 from sample.csv, values verbatim as in the file,
target dropped, empty cells for missing values; ``text/csv``, no header):

  1 row      a pool of 256 single-row payloads, one per request: requests/s, p50 and p99
  1,000 rows one 1,000-row payload: rows/s and p50

through these paths:

  (1)  handler  ``output_fn(predict_fn(input_fn(body, "text/csv"), bundle), "application/json")``,
                what the endpoint runs, JSON out (the default accept).
  (a)  bare     ``estimator.predict(X)`` on the already parsed and preprocessed float32 matrix X
                of the same rows, made once outside the timing with the fitted preprocessor
                (``preprocessor.transform(frame).to_numpy(np.float32)``): the floor. ``predict``
                is ``predict_proba`` plus an argmax, the same model work as the handler's. The
                random forest's ``n_jobs`` decides how fast that is, so (a) is the faster of the
                estimator as trained and a copy with ``n_jobs=1``, picked per payload size by a
                short calibration before the timed runs (the line ``floor (a): ...`` says which).
  (a') bare, as trained: ``predict`` of the estimator exactly as train.py saved it (n_jobs=-1,
                a thread pool per call), for reference; not used by any goal.
  (b)  toolkit  what a handler built on the ``sagemaker-inference`` toolkit's defaults does. Its
                default input_fn, ``sagemaker_inference.decoder.decode(body, "text/csv")``
                (given ``str``, as the toolkit's transformer passes text/csv bodies), is
                ``np.genfromtxt(StringIO(body), dtype=None, delimiter=",")``: a pure-Python
                line splitter that, with ``dtype=None``, infers each column's type from THIS
                payload's values and returns a structured array (fields f0..f9; 0-d for one row)
                -- numeric columns as int64 or float64, the categorical ones as fixed-width
                bytes (``S``); an empty cell becomes NaN in a float column, ``b""`` in a text
                column and -1 (not missing!) in an integer column, and a column with only empty
                cells (common in a one-row request) becomes bool False; no validation (a short
                row, an ``NA`` token or text in a number column silently change the types). So
                it does hold the categorical strings, as bytes, but what type each column gets
                depends on the payload (and numpy 1.26 warns on every call that no encoding was
                given; the benchmark hides the warning). Then the glue any user of it must write, vectorised (no
                Python loop over rows) and generous to the toolkit: fields named after the raw
                features; an all-empty (bool) column as missing; numeric ones to float32; text
                ones decoded to ``str`` with ``""`` as NaN. Then the fitted preprocessor
                (``preprocessor.transform(frame).to_numpy(np.float32)``), ``predict_proba`` of
                the same estimator as (a), labels by argmax, and
                ``sagemaker_inference.encoder.encode(body, "application/json")`` (``json.dumps``
                calling ``.tolist()`` on numpy values) of the very JSON body the handler returns
                (predictions, classes, probabilities rounded to 6 decimals).
  (b') (b) with the handler's own preprocessing: the same decode and glue, then the numpy
                transform inference.py compiles from the fitted preprocessor in model_fn
                (``bundle["transform"]``, bit-identical to ``preprocessor.transform``) instead
                of scikit-learn's ``ColumnTransformer``. (1) and (b') differ in decoding only.

Only speed is compared. The toolkit paths' answers can differ (-1 for a missing integer); the
run prints how many of the 1,000 rows that affects. The handler's answers are checked against
the estimator's before timing (probabilities and labels; SystemExit if they differ).

Requests alternate between the paths (1, a, a', b, b', 1, a, ...) after a warm-up, so that
machine noise hits them alike, in 5 consecutive blocks. requests/s and rows/s come from the total
time of a path's requests in its best block (the stretch least disturbed by other processes, as
the other benchmarks keep the best run); p50 and p99 from all its requests. Goals, checked and
printed as PASS/MISS; a miss makes the benchmark exit 1 (so `make bench` fails):
  * at 1,000 rows, parsing + preprocessing + serialisation add at most 25% over bare predict:
    the handler's time per request <= 1.25 x the floor's (a), i.e. handler rows/s >= (a) rows/s
    / 1.25; the printed overhead is (a) rows/s / handler rows/s - 1;
  * the handler is faster than the toolkit path (b), in requests/s at 1 row and in rows/s at
    1,000 rows; its ratio to (b') is printed too.

    .venv/bin/python benchmarks/inference_latency.py [--rounds-1 N] [--rounds-1000 N] [--keep DIR]

About 35 s on 2 cores, training included.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline_code.steps import inference  # noqa: E402

from sagemaker_inference import decoder as toolkit_decoder  # noqa: E402
from sagemaker_inference import encoder as toolkit_encoder  # noqa: E402

STEPS = ROOT / "pipeline_code" / "steps"
SAMPLE = ROOT / "pipeline_code" / "data" / "sample.csv"
TARGET = "churn_risk"
SEED = 0
POOL_1ROW = 256
ROWS_BIG = 1000
GOAL_OVERHEAD = 1.25
BLOCKS = 5  # the rounds are timed in blocks; requests/s and rows/s come from each path's best block
CSV, JSON = "text/csv", "application/json"


# ------------------------------------------------------------------------------------ the model


# The handlers' fast paths, and how to switch each off (the plain path they are tested against remains).
FAST_PATHS = {
    "compiled-preprocessing": ("_compile_transform", lambda bundle: None),  # the fitted ColumnTransformer
    "serial-predict": ("_serial_copy", lambda model: model),  # the estimator's own n_jobs thread pool
}


def train_model(work: Path) -> Path:
    """preprocess.py, then train.py, as the pipeline (and `make local-run`) runs them; the model dir."""
    data_dir, out_dir, model_dir = work / "data", work / "processing", work / "model"
    data_dir.mkdir(parents=True)
    shutil.copy2(SAMPLE, data_dir / SAMPLE.name)
    steps = [
        ([STEPS / "preprocess.py", "--input-dir", data_dir, "--output-dir", out_dir, "--target-column", TARGET,
          "--seed", "42"], {}),
        ([STEPS / "train.py", "--target-column", TARGET, "--algorithm", "random-forest", "--n-estimators", "200",
          "--seed", "42", "--checkpoint-dir", work / "checkpoints"],
         {"SM_MODEL_DIR": model_dir, "SM_CHANNEL_TRAIN": out_dir / "train",
          "SM_CHANNEL_VALIDATION": out_dir / "validation", "SM_CHANNEL_PREPROCESSOR": out_dir / "artifacts"}),
    ]
    for args, env in steps:
        run = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, **{k: str(v) for k, v in env.items()}})
        if run.returncode != 0:
            raise SystemExit(f"{Path(args[0]).name} failed ({run.returncode}):\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return model_dir


# --------------------------------------------------------------------------------------- inputs


def sample_rows(n: int, rng: np.random.RandomState) -> pd.DataFrame:
    """n raw rows of sample.csv (with replacement, seeded), values verbatim, target dropped."""
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False).drop(columns=TARGET)
    return frame.iloc[rng.randint(0, len(frame), n)].reset_index(drop=True)


def to_csv(rows: pd.DataFrame) -> str:
    return rows.to_csv(header=False, index=False, lineterminator="\n")


def preprocessed(rows: pd.DataFrame, bundle) -> np.ndarray:
    """The model's input for these rows, made directly (not by the handler): the floor's X."""
    data = {}
    for name in rows.columns:
        values = rows[name].to_numpy(dtype=object)
        missing = values == ""
        if name in bundle["numeric"]:
            data[name] = np.where(missing, "nan", values).astype(np.float32)
        else:
            data[name] = np.where(missing, np.nan, values)
    frame = pd.DataFrame(data, columns=list(rows.columns))
    return bundle["preprocessor"].transform(frame).to_numpy(dtype=np.float32)


# ---------------------------------------------------------------------------------------- paths


def handler_path(bundle):
    def run(body: str):
        return inference.output_fn(inference.predict_fn(inference.input_fn(body, CSV), bundle), JSON)
    return run


def toolkit_path(bundle, estimator, handler_preprocessing: bool = False):
    features, numeric = bundle["features"], set(bundle["numeric"])
    preprocessor, classes = bundle["preprocessor"], bundle["classes"]
    compiled = bundle.get("transform") if handler_preprocessing else None

    def to_columns(decoded: np.ndarray) -> dict:
        decoded = np.atleast_1d(decoded)  # one row decodes to a 0-d structured array
        if decoded.dtype.names is None:  # every column numeric: a plain 2-D float array
            decoded = np.atleast_2d(decoded)
            columns = [decoded[:, i] for i in range(decoded.shape[1])]
        else:
            columns = [decoded[field] for field in decoded.dtype.names]
        data = {}
        for name, values in zip(features, columns):
            kind = values.dtype.kind
            if kind == "b":  # genfromtxt's type for a column whose cells are all empty: missing values
                data[name] = np.full(len(values), np.nan, dtype=np.float32 if name in numeric else object)
            elif name in numeric:
                if kind == "S":  # a token such as NA made it text (none in sample.csv)
                    values = pd.to_numeric(np.char.decode(values, "utf-8"), errors="coerce")
                data[name] = values.astype(np.float32)
            elif kind == "S":
                text = np.char.decode(values, "utf-8").astype(object)
                text[text == ""] = np.nan
                data[name] = text
            else:  # levels that all look like numbers in this payload
                text = values.astype(str).astype(object)
                if kind == "f":
                    text[np.isnan(values)] = np.nan
                data[name] = text
        return data

    def run(body: str):
        columns = to_columns(toolkit_decoder.decode(body, CSV))
        X = compiled(columns, len(columns[features[0]])) if compiled is not None else None
        if X is None:
            X = preprocessor.transform(pd.DataFrame(columns, columns=features)).to_numpy(dtype=np.float32)
        probabilities = estimator.predict_proba(X)
        labels = classes.take(np.argmax(probabilities, axis=1))
        out = {"predictions": labels, "classes": classes, "probabilities": np.round(probabilities, 6)}
        return toolkit_encoder.encode(out, JSON), JSON

    return run


# --------------------------------------------------------------------------------------- timing


def check_same_answers(response: str, estimator, X: np.ndarray) -> None:
    """The handler's JSON must carry the estimator's probabilities and labels for X (exact ties aside)."""
    body = json.loads(response)
    expected = estimator.predict_proba(X)
    top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else np.zeros((len(X), 2))
    decided = top2[:, 1] - top2[:, 0] > 1e-9
    labels = np.asarray(body["predictions"], dtype=object)
    wanted = np.asarray(estimator.classes_, dtype=object).take(expected.argmax(axis=1))
    if not (np.allclose(body["probabilities"], expected, atol=1.5e-6) and (labels == wanted)[decided].all()):
        raise SystemExit("the handler's answers differ from the estimator's on the same rows")


def best_estimator(bundle, X: np.ndarray, repeats: int):
    """The estimator as trained, or a copy with n_jobs=1 when that predicts X faster here."""
    trained = bundle["model"]
    if getattr(trained, "n_jobs", None) in (None, 1):
        return trained, "as trained"
    serial = copy.copy(trained)  # shares the fitted trees; only n_jobs differs
    serial.n_jobs = 1
    times = {"trained": [], "serial": []}
    for _ in range(repeats):
        for key, estimator in (("trained", trained), ("serial", serial)):
            started = time.perf_counter()
            estimator.predict(X)
            times[key].append(time.perf_counter() - started)
    if np.median(times["serial"]) < np.median(times["trained"]):
        return serial, "n_jobs=1"
    return trained, f"n_jobs={trained.n_jobs}"


def time_paths(paths, inputs, rounds: int, warmup: int, blocks: int):
    """Round-robin over the paths; per-request seconds of each path, shape (blocks, rounds // blocks)."""
    per_block = max(1, rounds // blocks)
    times = {name: np.empty((blocks, per_block)) for name in paths}
    for r in range(-warmup, blocks * per_block):
        for name, run in paths.items():
            arg = inputs[name][r % len(inputs[name])]
            started = time.perf_counter()
            run(arg)
            elapsed = time.perf_counter() - started
            if r >= 0:
                times[name][divmod(r, per_block)] = elapsed
    return times


def throughput(times: np.ndarray) -> float:
    """Requests per second of the best block: the stretch least disturbed by other processes."""
    return float(times.shape[1] / times.sum(axis=1).min())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds-1", type=int, default=400, help="timed 1-row requests per path (default: 400)")
    parser.add_argument("--rounds-1000", type=int, default=60, help="timed 1,000-row requests per path (default: 60)")
    parser.add_argument("--keep", type=Path, help="train into this directory and keep it")
    parser.add_argument("--without", action="append", choices=sorted(FAST_PATHS), default=[],
                        help="switch a fast path of the handlers off, to see what it is worth (repeatable)")
    args = parser.parse_args()
    for name in args.without:
        attribute, plain = FAST_PATHS[name]
        setattr(inference, attribute, plain)
        print(f"fast path off: {name}")
    warnings.filterwarnings("ignore", message=".*encoding argument is deprecated")  # genfromtxt, every call
    warnings.filterwarnings("ignore", message="is_sparse is deprecated")  # scikit-learn 1.2 on pandas 2.x

    work = Path(tempfile.mkdtemp(prefix="inference-bench-")) if args.keep is None else args.keep
    try:
        started = time.perf_counter()
        model_dir = train_model(work)
        bundle = inference.model_fn(str(model_dir))
        trained = bundle["model"]
        print(f"trained {type(trained).__name__} ({getattr(trained, 'n_estimators', '?')} trees, "
              f"n_jobs={getattr(trained, 'n_jobs', None)}) on {SAMPLE.name} in {time.perf_counter() - started:.1f}s")

        rng = np.random.RandomState(SEED)
        small_rows = sample_rows(POOL_1ROW, rng)
        big_rows = sample_rows(ROWS_BIG, rng)
        small_bodies = [to_csv(small_rows.iloc[[i]]) for i in range(POOL_1ROW)]
        small_X = [preprocessed(small_rows.iloc[[i]], bundle) for i in range(POOL_1ROW)]
        big_body, big_X = to_csv(big_rows), preprocessed(big_rows, bundle)

        results, floors = {}, {}
        for size, bodies, Xs, rounds in (("1", small_bodies, small_X, args.rounds_1),
                                          ("1000", [big_body], [big_X], args.rounds_1000)):
            floor, floor_name = best_estimator(bundle, Xs[0], repeats=15 if size == "1" else 5)
            floors[size] = floor_name
            paths = {
                "handler": handler_path(bundle),
                "bare": floor.predict,
                "bare_trained": trained.predict,
                "toolkit": toolkit_path(bundle, floor),
                "toolkit_compiled": toolkit_path(bundle, floor, handler_preprocessing=True),
            }
            inputs = {"handler": bodies, "bare": Xs, "bare_trained": Xs, "toolkit": bodies, "toolkit_compiled": bodies}
            for body, X in zip(bodies[:32], Xs[:32]):
                check_same_answers(paths["handler"](body)[0], floor, X)
            results[size] = time_paths(paths, inputs, rounds, warmup=max(3, rounds // 20), blocks=BLOCKS)

        handler_big = np.asarray(json.loads(handler_path(bundle)(big_body)[0])["predictions"])
        check_same_answers(handler_path(bundle)(big_body)[0], trained, big_X)
        toolkit_big = np.asarray(json.loads(toolkit_path(bundle, trained)(big_body)[0])["predictions"])
        decoded = np.atleast_1d(toolkit_decoder.decode(big_body, CSV))
        int_columns = [name for name, field in zip(bundle["features"], decoded.dtype.names or ())
                       if decoded[field].dtype.kind in "iu"]
        missing_int = int((big_rows[int_columns] == "").any(axis=1).sum())

        names = {
            "handler": "(1)  handler input_fn->predict_fn->output_fn",
            "bare": "(a)  bare estimator.predict(X)",
            "bare_trained": f"(a') bare predict, as trained (n_jobs={getattr(trained, 'n_jobs', None)})",
            "toolkit": "(b)  toolkit decode + same model work + encode",
            "toolkit_compiled": "(b') (b) with the handler's own preprocessing",
        }
        print(f"\ninference, text/csv in, application/json out (python {sys.version.split()[0]}, {os.cpu_count()} cores; "
              f"{args.rounds_1} x 1-row and {args.rounds_1000} x {ROWS_BIG:,}-row requests per path, interleaved)")
        print(f"floor (a): 1 row {floors['1']}, {ROWS_BIG:,} rows {floors['1000']}")
        print(f"{'path':<48} {'1 row: req/s':>12} {'p50 ms':>8} {'p99 ms':>8}   {'1,000 rows: rows/s':>18} {'p50 ms':>8} {'vs (a)':>7}")
        stats = {}
        for key, label in names.items():
            t1, tk = results["1"][key], results["1000"][key]
            stats[key] = (throughput(t1), ROWS_BIG * throughput(tk))
            ratio = throughput(results["1000"]["bare"]) / throughput(tk)
            print(f"{label:<48} {stats[key][0]:12,.0f} {np.percentile(t1, 50) * 1e3:8.2f} {np.percentile(t1, 99) * 1e3:8.2f}"
                  f"   {stats[key][1]:18,.0f} {np.percentile(tk, 50) * 1e3:8.2f} {ratio:6.2f}x")

        handler_rps, bare_rps, toolkit_rps = stats["handler"][1], stats["bare"][1], stats["toolkit"][1]
        overhead = bare_rps / handler_rps - 1
        ok_overhead = handler_rps >= bare_rps / GOAL_OVERHEAD
        speedup_1, speedup_k = stats["handler"][0] / stats["toolkit"][0], handler_rps / toolkit_rps
        ok_toolkit = speedup_1 > 1 and speedup_k > 1
        print(f"{'PASS' if ok_overhead else 'MISS'}: at {ROWS_BIG:,} rows parsing + preprocessing + serialisation add "
              f"{overhead:+.0%} over bare predict (goal <= +{GOAL_OVERHEAD - 1:.0%}): handler {handler_rps:,.0f} rows/s "
              f"vs floor {bare_rps:,.0f} / {GOAL_OVERHEAD} = {bare_rps / GOAL_OVERHEAD:,.0f}")
        print(f"{'PASS' if ok_toolkit else 'MISS'}: handler vs toolkit path: {speedup_1:.2f}x the requests/s at 1 row, "
              f"{speedup_k:.2f}x the rows/s at {ROWS_BIG:,} rows (goal > 1x at both); vs (b'), decoding alone: "
              f"{stats['handler'][0] / stats['toolkit_compiled'][0]:.2f}x and "
              f"{handler_rps / stats['toolkit_compiled'][1]:.2f}x")
        print(f"note: the toolkit decoder reads an empty cell in an integer column ({', '.join(int_columns)}) as -1: "
              f"{missing_int} of the {ROWS_BIG:,} rows have one, and {int((handler_big != toolkit_big).sum())} labels "
              "differ from the handler's")
        print(f"(whole benchmark: {time.perf_counter() - started:.0f} s)")
        return 0 if ok_overhead and ok_toolkit else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
