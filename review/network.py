"""Network: subnets and routes (any path to the internet?), security groups rule by rule, interface endpoints, and
what runs inside the VPC or outside it."""

from __future__ import annotations

import json

from review.assembly import Assembly, Stack
from review.document import Para, Section, Table

_INTERNET_TARGETS = ("GatewayId", "NatGatewayId", "EgressOnlyInternetGatewayId", "TransitGatewayId", "VpcPeeringConnectionId")


def internet_paths(assembly: Assembly) -> list[str]:
    """Routes and resources that give the VPC a way to the internet (empty: none the app creates)."""
    paths = []
    for stack, logical_id, route in assembly.resources("AWS::EC2::Route"):
        props = route["Properties"]
        target = next((f"{k} {assembly.render(stack, props[k])}" for k in _INTERNET_TARGETS if k in props), None)
        if target and "VpcEndpointId" not in props:
            destination = props.get("DestinationCidrBlock") or props.get("DestinationIpv6CidrBlock") or "?"
            paths.append(f"route {stack.key(logical_id)}: {destination} -> {target}")
    for stack, logical_id, _ in assembly.resources("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP"):
        paths.append(f"{stack.key(logical_id)}")
    return paths


def _peer(assembly: Assembly, stack: Stack, rule: dict) -> str:
    for key in ("CidrIp", "CidrIpv6", "SourceSecurityGroupId", "DestinationSecurityGroupId", "SourcePrefixListId", "DestinationPrefixListId"):
        if key in rule:
            return f"{key.removesuffix('Id')} {assembly.render(stack, rule[key])}"
    return "?"


def _ports(rule: dict) -> str:
    protocol = str(rule.get("IpProtocol", "?"))
    if protocol == "-1":
        return "all traffic"
    low, high = rule.get("FromPort"), rule.get("ToPort")
    return f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"


def security_group_rules(assembly: Assembly) -> dict[str, list[tuple[str, str, str, str]]]:
    """``{group: [(direction, ports, peer, description)]}``, inline rules and separate rule resources together."""
    groups: dict[str, list] = {}
    for stack, logical_id, group in assembly.resources("AWS::EC2::SecurityGroup"):
        props = group["Properties"]
        key = stack.key(logical_id)
        rules = groups.setdefault(key, [])
        for direction, field in (("ingress", "SecurityGroupIngress"), ("egress", "SecurityGroupEgress")):
            for rule in props.get(field, []):
                rules.append((direction, _ports(rule), _peer(assembly, stack, rule), rule.get("Description", "")))
    for stack, logical_id, rule in assembly.resources("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        props = rule["Properties"]
        target = assembly.referenced_resource(stack, props["GroupId"])
        key = target[0].key(target[1]) if target else assembly.render(stack, props["GroupId"])
        direction = "ingress" if rule["Type"].endswith("Ingress") else "egress"
        groups.setdefault(key, []).append((direction, _ports(props), _peer(assembly, stack, props), props.get("Description", "")))
    return {group: sorted(rules) for group, rules in groups.items()}


def _vpc_placement(assembly: Assembly) -> list[list[str]]:
    rows = []
    for stack, logical_id, resource in assembly.resources(
        "AWS::Lambda::Function", "AWS::SageMaker::Model", "AWS::SageMaker::Domain", "AWS::SageMaker::MlflowTrackingServer",
        "AWS::SageMaker::Pipeline", "AWS::SageMaker::DataQualityJobDefinition",
    ):
        props = resource.get("Properties", {})
        kind = resource["Type"].split("::")[-1]
        if kind == "Function":
            inside = "VpcConfig" in props
            note = "" if inside else "calls AWS APIs over the internet, outside the VPC"
        elif kind == "Model":
            inside = "VpcConfig" in props
            note = "network isolation" if props.get("EnableNetworkIsolation") else "no network isolation: own security group"
        elif kind == "Domain":
            inside = props.get("AppNetworkAccessType") == "VpcOnly"
            note = f"AppNetworkAccessType {props.get('AppNetworkAccessType')}"
        elif kind == "MlflowTrackingServer":
            inside = False
            note = "SageMaker-managed; reached from the VPC through the experiments interface endpoint"
        elif kind == "Pipeline":
            body = json.dumps(props.get("PipelineDefinition", {}))
            inside = "Subnets" in body
            note = "every job's NetworkConfig/VpcConfig names the platform's subnets" if inside else "jobs without VPC settings"
        else:
            inside = "VpcConfig" in json.dumps(props)
            note = ""
        rows.append([stack.key(logical_id), kind, "inside" if inside else "outside", note])
    return rows


def section(assembly: Assembly) -> Section:
    sec = Section("Network")
    vpcs = list(assembly.resources("AWS::EC2::VPC"))
    if vpcs:
        for stack, logical_id, vpc in vpcs:
            props = vpc["Properties"]
            sec.add(Para(f"VPC {stack.key(logical_id)}: {props.get('CidrBlock')}, DNS support {props.get('EnableDnsSupport')}, DNS hostnames {props.get('EnableDnsHostnames')}."))
    else:
        sec.add(Para("The environment uses an existing VPC: its subnets and routes are not managed here; check them in the account.", "warn"))
    paths = internet_paths(assembly)
    sec.add(Para("Internet path: " + ("; ".join(paths) if paths else "none created by the app (no internet or NAT gateway, no route to one)."), "warn" if paths else "info"))
    subnets = Table(["subnet", "CIDR", "zone", "public IP on launch", "routes"], [])
    routes_by_table: dict[str, list[str]] = {}
    for stack, logical_id, route in assembly.resources("AWS::EC2::Route"):
        props = route["Properties"]
        target = next((f"{k} {assembly.render(stack, v)}" for k, v in props.items() if k.endswith("Id") and k != "RouteTableId"), "?")
        routes_by_table.setdefault(assembly.render(stack, props["RouteTableId"]), []).append(f"{props.get('DestinationCidrBlock', '?')} -> {target}")
    for stack, logical_id, endpoint in assembly.resources("AWS::EC2::VPCEndpoint"):
        props = endpoint["Properties"]
        if props.get("VpcEndpointType") == "Gateway":
            for table in props.get("RouteTableIds", []):
                routes_by_table.setdefault(assembly.render(stack, table), []).append(f"gateway endpoint {assembly.render(stack, props['ServiceName'])}")
    associations = {}
    for stack, _, association in assembly.resources("AWS::EC2::SubnetRouteTableAssociation"):
        props = association["Properties"]
        associations[assembly.render(stack, props["SubnetId"])] = assembly.render(stack, props["RouteTableId"])
    for stack, logical_id, subnet in assembly.resources("AWS::EC2::Subnet"):
        props = subnet["Properties"]
        table = associations.get(f"<{stack.key(logical_id)}>", "")
        routes = ["local (VPC)", *routes_by_table.get(table, [])]
        subnets.rows.append([stack.key(logical_id), str(props.get("CidrBlock")), assembly.render(stack, props.get("AvailabilityZone", "")), str(props.get("MapPublicIpOnLaunch", False)), "\n".join(routes)])
    if subnets.rows:
        sec.add(subnets)
    groups = sec.sub("Security groups")
    table = Table(["group", "direction", "ports", "peer", "description"], [])
    for group, rules in security_group_rules(assembly).items():
        for direction, ports, peer, description in rules or [("-", "no rules", "", "")]:
            table.rows.append([group, direction, ports, peer, description])
            if "0.0.0.0/0" in peer or "::/0" in peer:
                table.marked.add(len(table.rows) - 1)
    groups.add(Para("Rows open to any address (0.0.0.0/0) are highlighted."), table)
    endpoints = sec.sub("VPC endpoints")
    rows = []
    for stack, logical_id, endpoint in assembly.resources("AWS::EC2::VPCEndpoint"):
        props = endpoint["Properties"]
        rows.append([
            assembly.render(stack, props["ServiceName"]),
            props.get("VpcEndpointType", "Interface"),
            str(len(props.get("SubnetIds", []))) if props.get("VpcEndpointType", "Interface") == "Interface" else "-",
            str(props.get("PrivateDnsEnabled", "")),
            assembly.render(stack, props.get("SecurityGroupIds", [])),
        ])
    endpoints.add(Table(["service", "type", "zones", "private DNS", "security groups"], sorted(rows)))
    placement = sec.sub("Inside and outside the VPC")
    rows = _vpc_placement(assembly)
    placement.add(Table(["resource", "kind", "VPC", "note"], rows, marked={i for i, r in enumerate(rows) if r[2] == "outside"}))
    return sec
