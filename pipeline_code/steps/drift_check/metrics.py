"""The CloudWatch metrics of a report, and publishing them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Iterator, List, Sequence

from stepkit import aws_errors, one_line

from .errors import PublishError

# CloudWatch PutMetricData limits: 1,000 data points and 1 MB per call; dimension values of at
# most 1,024 characters (255 in older documentation: the safe bound); timestamps up to two weeks
# in the past and two hours in the future.
METRICS_PER_CALL = 1000
MAX_CALL_BYTES = 900_000  # estimated request size per call, under the 1 MB limit
MAX_DIMENSION_VALUE = 255
MAX_METRIC_AGE = timedelta(days=14)


def metric_data(report: dict, timestamp: datetime) -> List[dict]:
    """The CloudWatch data points of a report, in a fixed order."""
    endpoint = {"Name": "EndpointName", "Value": str(report["endpoint_name"])[:MAX_DIMENSION_VALUE]}

    def datum(name: str, value: float, unit: str, extra: Sequence[dict] = ()) -> dict:
        return {"MetricName": name, "Dimensions": [endpoint, *extra], "Timestamp": timestamp,
                "Value": float(value), "Unit": unit}

    no_data = report["status"] == "no_capture_data"
    data = [
        datum("NoCaptureData", 1.0 if no_data else 0.0, "Count"),
        datum("RowsAnalysed", report["rows_analysed"], "Count"),
        datum("MalformedRecords", report["malformed_records"], "Count"),
    ]
    if no_data:
        return data
    if report["rows_analysed"]:
        data.append(datum("DriftedFeatures", report["drifted_count"], "Count"))
    if report["prediction_drift"] and report["prediction_drift"]["psi"] is not None:
        data.append(datum("PredictionDriftScore", report["prediction_drift"]["psi"], "None"))
    for name in sorted(report["features"]):
        score = report["features"][name]["psi"]
        if score is not None:
            data.append(datum("FeatureDriftScore", score, "None",
                              [{"Name": "Feature", "Value": name[:MAX_DIMENSION_VALUE]}]))
    return data


def metric_batches(data: Sequence[dict]) -> Iterator[List[dict]]:
    """Chunks within PutMetricData's limits: METRICS_PER_CALL points and about MAX_CALL_BYTES each."""
    batch: List[dict] = []
    size = 0
    for datum in data:
        # The query protocol (the largest encoding botocore may use) spells out every member path:
        # 1.4-1.7 times a data point's JSON; 2 times is a safe estimate.
        datum_size = 2 * len(json.dumps(datum, default=str))
        if batch and (len(batch) >= METRICS_PER_CALL or size + datum_size > MAX_CALL_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(datum)
        size += datum_size
    if batch:
        yield batch


def publish_metrics(client: Any, namespace: str, data: Sequence[dict]) -> int:
    """PutMetricData in batches; the number of calls made. PublishError on an AWS error."""
    calls = 0
    for batch in metric_batches(data):
        try:
            client.put_metric_data(Namespace=namespace, MetricData=batch)
        except aws_errors() as exc:
            raise PublishError(f"publishing metrics to CloudWatch failed: {one_line(exc)}") from None
        calls += 1
    return calls

