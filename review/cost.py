"""Cost: the always-on resources of the environment with a monthly estimate, and what scales with use.

Prices come from ``review/prices-<region>.yaml`` (data in the repository, region, date and source noted), never
from a lookup at run time. Endpoint instances are counted at their minimum (autoscaling's floor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from review.assembly import Assembly
from review.document import Para, Section, Table

PRICE_DIR = Path(__file__).resolve().parent
DEFAULT_REGION = "eu-west-1"


def price_table(region: str | None) -> dict:
    """The price table of ``region``; the default region's (and a note saying so) when there is none."""
    path = PRICE_DIR / f"prices-{region or DEFAULT_REGION}.yaml"
    if not path.is_file():
        path = PRICE_DIR / f"prices-{DEFAULT_REGION}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Line:
    item: str
    quantity: str
    unit_price: str
    monthly: float | None  # None: no price in the table (shown, not summed)


def always_on(assembly: Assembly, prices: dict) -> list[Line]:
    hours = prices["hours_per_month"]
    fixed = prices["always_on"]
    lines = []
    az_hours = 0
    interface = 0
    for _, _, endpoint in assembly.resources("AWS::EC2::VPCEndpoint"):
        props = endpoint["Properties"]
        if props.get("VpcEndpointType", "Interface") == "Interface":
            interface += 1
            az_hours += len(props.get("SubnetIds", [])) or 1
    if interface:
        lines.append(Line(f"interface endpoints ({interface}, in {az_hours // interface if interface else 0} AZs)", f"{az_hours} endpoint-AZs x {hours} h",
                          f"${fixed['interface_endpoint_az_hour']}/AZ-hour", az_hours * hours * fixed["interface_endpoint_az_hour"]))
    nat = len(list(assembly.resources("AWS::EC2::NatGateway")))
    if nat:
        lines.append(Line("NAT gateways", f"{nat} x {hours} h", f"${fixed['nat_gateway_hour']}/hour", nat * hours * fixed["nat_gateway_hour"]))
    minimum = {}
    for _, _, target in assembly.resources("AWS::ApplicationAutoScaling::ScalableTarget"):
        props = target["Properties"]
        if isinstance(props.get("ResourceId"), str) and props["ResourceId"].startswith("endpoint/"):
            minimum[props["ResourceId"]] = props["MinCapacity"]
    for stack, _, endpoint in assembly.resources("AWS::SageMaker::Endpoint"):
        props = endpoint["Properties"]
        config_ref = assembly.referenced_resource(stack, props["EndpointConfigName"])
        if not config_ref:
            continue
        config = config_ref[0].resources[config_ref[1]]["Properties"]
        name = props.get("EndpointName", "?")
        for variant in config.get("ProductionVariants", []):
            if "InstanceType" not in variant:
                continue
            count = minimum.get(f"endpoint/{name}/variant/{variant['VariantName']}", variant.get("InitialInstanceCount", 1))
            price = prices["sagemaker_hosting_hour"].get(variant["InstanceType"])
            lines.append(Line(f"endpoint {name} ({variant['InstanceType']}, minimum instances)", f"{count} x {hours} h",
                              f"${price}/hour" if price is not None else "not in the price table",
                              count * hours * price if price is not None else None))
    for _, _, server in assembly.resources("AWS::SageMaker::MlflowTrackingServer"):
        size = server["Properties"].get("TrackingServerSize", "Small")
        price = fixed["mlflow_tracking_server_hour"].get(size)
        lines.append(Line(f"MLflow tracking server ({size})", f"1 x {hours} h", f"${price}/hour", hours * price if price is not None else None))
    keys = len(list(assembly.resources("AWS::KMS::Key")))
    if keys:
        lines.append(Line("KMS customer-managed keys", str(keys), f"${fixed['kms_key_month']}/month", keys * fixed["kms_key_month"]))
    alarms = len(list(assembly.resources("AWS::CloudWatch::Alarm")))
    if alarms:
        lines.append(Line("CloudWatch alarms", str(alarms), f"${fixed['cloudwatch_alarm_month']}/month", alarms * fixed["cloudwatch_alarm_month"]))
    dashboards = len(list(assembly.resources("AWS::CloudWatch::Dashboard")))
    if dashboards:
        lines.append(Line("CloudWatch dashboards", str(dashboards), f"${fixed['cloudwatch_dashboard_month']}/month", dashboards * fixed["cloudwatch_dashboard_month"]))
    return lines


def monthly_total(assembly: Assembly, prices: dict) -> float:
    return round(sum(line.monthly or 0 for line in always_on(assembly, prices)), 2)


def section(assembly: Assembly, config) -> Section:
    region = getattr(config, "region", None)
    prices = price_table(region)
    sec = Section("Cost")
    note = f"Prices: {prices['region']} as of {prices['as_of']} (review/prices-{prices['region']}.yaml); source: {prices['source'].strip()}"
    if region and region != prices["region"]:
        note += f" No table for {region}: {prices['region']}'s prices are used."
    sec.add(Para(note))
    lines = always_on(assembly, prices)
    total = sum(line.monthly or 0 for line in lines)
    rows = [[line.item, line.quantity, line.unit_price, f"${line.monthly:,.2f}" if line.monthly is not None else "?"] for line in lines]
    rows.append(["total always-on", "", "", f"${total:,.2f}"])
    sec.add(Para(f"Always on, before any use: about ${total:,.2f} per month."))
    sec.add(Table(["item", "quantity", "unit price", "per month"], rows, marked={len(rows) - 1}))
    usage = sec.sub("What scales with use")
    studio = getattr(config, "studio", None)
    rows = []
    if studio is not None and studio.enabled:
        instance = studio.default_instance_type
        rows.append([f"Studio apps (default {instance}; idle shutdown after {studio.idle_timeout_minutes} min)", "per app-hour",
                     f"${prices['studio_app_hour'].get(instance, '?')}/hour"])
        rows.append(["Studio home directories (EFS)", "per GB-month", f"${prices['usage']['efs_standard_gb_month']}"])
    pipeline = getattr(config, "pipeline", None)
    if pipeline is not None:
        rows.append([f"pipeline processing ({pipeline.processing_instance_type} x {pipeline.processing_instance_count})", "per run-hour",
                     f"${prices['sagemaker_jobs_hour'].get(pipeline.processing_instance_type, '?')}/hour each"])
        rows.append([f"training ({pipeline.training_instance_type}, managed spot: up to ~70% less)", "per run-hour",
                     f"${prices['sagemaker_jobs_hour'].get(pipeline.training_instance_type, '?')}/hour on demand"])
    monitoring = getattr(config, "monitoring", None)
    if monitoring is not None and monitoring.drift_check.enabled and list(assembly.resources("AWS::SageMaker::Endpoint")):
        instance = monitoring.drift_check.instance_type
        rows.append([f"drift check ({instance}, {monitoring.drift_check.schedule} per captured endpoint)", "per job-hour",
                     f"${prices['sagemaker_jobs_hour'].get(instance, '?')}/hour"])
    for name, label in (("interface_endpoint_gb", "data through interface endpoints"), ("nat_gateway_gb", "data through NAT"),
                        ("s3_standard_gb_month", "S3 storage (data, models, capture, reports, logs)"),
                        ("cloudwatch_logs_ingest_gb", "CloudWatch Logs ingestion (flow logs, jobs)"),
                        ("sagemaker_data_processed_gb", "inference data processed"), ("kms_requests_per_10000", "KMS requests (per 10,000)")):
        rows.append([label, "per GB" if "gb" in name else "per unit", f"${prices['usage'][name]}"])
    usage.add(Table(["item", "unit", "price"], rows))
    return sec
