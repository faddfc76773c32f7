"""Generated pictures: the environment's architecture and the DAG of each SageMaker pipeline, as SVG (and PNG).

Drawn with Graphviz (the ``dot`` program from the Debian/Homebrew ``graphviz`` package) through the ``graphviz``
Python package, from the cloud assembly only: one cluster per stack, the VPC inside the network stack, arrows
from each resource to the data stores and resources it uses; a pipeline's steps and their dependencies
(``DependsOn``, property references, a condition's if/else branches) from its definition.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import graphviz

from review.assembly import Assembly, Stack, display_id
from review.document import Figure, Para, Section

# What the architecture shows, with its shape; roles, policies, keys and alarms would hide the data flow.
_SHOWN = {
    "AWS::S3::Bucket": ("cylinder", "#e8f1fb"),
    "AWS::SageMaker::Pipeline": ("box3d", "#eaf6ea"),
    "AWS::SageMaker::Endpoint": ("component", "#fff4e0"),
    "AWS::SageMaker::Model": ("box", "#fff4e0"),
    "AWS::SageMaker::Domain": ("tab", "#f3eafb"),
    "AWS::SageMaker::MlflowTrackingServer": ("tab", "#f3eafb"),
    "AWS::SageMaker::ModelPackageGroup": ("folder", "#eaf6ea"),
    "AWS::SNS::Topic": ("cds", "#fdecea"),
    "AWS::Scheduler::Schedule": ("ellipse", "#f6f8fa"),
    "AWS::Events::Rule": ("ellipse", "#f6f8fa"),
    "AWS::Lambda::Function": ("box", "#f6f8fa"),
    "AWS::Logs::LogGroup": ("note", "#f6f8fa"),
    "AWS::CloudWatch::Dashboard": ("note", "#f6f8fa"),
    "AWS::Budgets::Budget": ("note", "#f6f8fa"),
}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def available() -> bool:
    return shutil.which("dot") is not None


def _node_id(stack: Stack, logical_id: str) -> str:
    return f"{stack.id}.{logical_id}"


def _refs(value, found: set[str]) -> None:
    """Logical ids and cross-stack reads a value mentions (``Ref``, ``Fn::GetAtt``, ``${X}`` in ``Fn::Sub``)."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            attr = value["Fn::GetAtt"]
            found.add(attr[0] if isinstance(attr, list) else attr.split(".")[0])
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], (str, list)):
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found.update(_PLACEHOLDER.findall(text))
        for v in value.values():
            _refs(v, found)
    elif isinstance(value, list):
        for v in value:
            _refs(v, found)


def _targets(assembly: Assembly, stack: Stack, resource: dict) -> set[str]:
    """Node ids of the resources ``resource`` references, following cross-stack reads to their producer."""
    out = set()
    stack_refs: set[str] = set()
    _refs(resource.get("Properties", {}), stack_refs)
    for ref in stack_refs:
        if ref in stack.resources:
            out.add(_node_id(stack, ref))
    for read in _cross_reads(resource.get("Properties", {})):
        target = assembly.referenced_resource(stack, read)
        if target:
            out.add(_node_id(*target))
    return out


def _cross_reads(value):
    if isinstance(value, dict):
        if "Fn::GetStackOutput" in value or "Fn::ImportValue" in value:
            yield value
            return
        for v in value.values():
            yield from _cross_reads(v)
    elif isinstance(value, list):
        for v in value:
            yield from _cross_reads(v)


def _label(logical_id: str, resource: dict) -> str:
    props = resource.get("Properties", {})
    name = next((props[k] for k in ("PipelineName", "EndpointName", "DomainName", "TrackingServerName", "ModelPackageGroupName") if isinstance(props.get(k), str)), None)
    kind = resource["Type"].split("::")[-1]
    return f"{display_id(logical_id)}\n{kind}" + (f"\n{name}" if name else "")


def architecture(assembly: Assembly) -> graphviz.Digraph:
    graph = graphviz.Digraph("architecture", graph_attr={"rankdir": "LR", "fontname": "Helvetica", "fontsize": "11", "compound": "true", "nodesep": "0.25", "ranksep": "0.6"},
                             node_attr={"fontname": "Helvetica", "fontsize": "9", "style": "filled"}, edge_attr={"color": "#57606a", "arrowsize": "0.6"})
    shown: dict[str, tuple[Stack, str, dict]] = {}
    in_vpc: set[str] = set()
    subnets_node = None
    for stack in assembly.stacks.values():
        with graph.subgraph(name=f"cluster_{stack.id}") as cluster:
            cluster.attr(label=f"{stack.name}", style="rounded", color="#8c959f")
            if stack.of_type("AWS::EC2::VPC", "AWS::EC2::VPCEndpoint", "AWS::EC2::Subnet"):
                with cluster.subgraph(name="cluster_vpc") as vpc:
                    vpcs = stack.of_type("AWS::EC2::VPC")
                    cidr = ", ".join(str(v["Properties"].get("CidrBlock")) for v in vpcs.values()) or "existing VPC"
                    vpc.attr(label=f"VPC {cidr}", style="dashed,rounded", color="#0969da")
                    subnets = stack.of_type("AWS::EC2::Subnet")
                    subnets_node = f"{stack.id}.subnets"
                    vpc.node(subnets_node, f"{len(subnets) or 'existing'} private subnets\n(no internet route)" if not assembly.resources("AWS::EC2::NatGateway") else f"{len(subnets)} subnets", shape="box", fillcolor="#ddf4ff")
                    interface = sorted(assembly.render(stack, e["Properties"]["ServiceName"]).rsplit(".", 1)[-1] if "sagemaker" not in str(e["Properties"]["ServiceName"]) else
                                       assembly.render(stack, e["Properties"]["ServiceName"]).split("}.")[-1]
                                       for e in stack.of_type("AWS::EC2::VPCEndpoint").values() if e["Properties"].get("VpcEndpointType", "Interface") == "Interface")
                    if interface:
                        vpc.node(f"{stack.id}.endpoints", f"{len(interface)} interface endpoints\n" + "\n".join(", ".join(interface[i:i + 4]) for i in range(0, len(interface), 4)), shape="box", fillcolor="#ddf4ff")
                    groups = stack.of_type("AWS::EC2::SecurityGroup")
                    for logical_id, group in groups.items():
                        vpc.node(_node_id(stack, logical_id), f"{display_id(logical_id)}\nsecurity group", shape="octagon", fillcolor="#ddf4ff")
            for logical_id, resource in stack.resources.items():
                if resource["Type"] not in _SHOWN:
                    continue
                shape, color = _SHOWN[resource["Type"]]
                node = _node_id(stack, logical_id)
                shown[node] = (stack, logical_id, resource)
                cluster.node(node, _label(logical_id, resource), shape=shape, fillcolor=color)
                body = json.dumps(resource.get("Properties", {}))
                if "VpcConfig" in body or '"Subnets"' in body or "SubnetIds" in body:
                    in_vpc.add(node)
    # Pipelines, schedules and rules often name what they use (a registry, a pipeline) instead of referencing it.
    names = {
        node: value for node, (_, _, resource) in shown.items()
        for key in ("PipelineName", "EndpointName", "ModelPackageGroupName")
        if isinstance(value := resource.get("Properties", {}).get(key), str)
    }
    for node, (stack, _, resource) in shown.items():
        text = json.dumps(resource.get("Properties", {}))
        named = {other for other, name in names.items() if other != node and re.search(r'["/]' + re.escape(name) + r'[\\"/]', text)}
        for target in sorted(_targets(assembly, stack, resource) | named):
            if target in shown and target != node:
                graph.edge(node, target)
    if subnets_node:
        for node in sorted(in_vpc):
            graph.edge(node, subnets_node, style="dashed", color="#0969da", arrowhead="none", label="in VPC", fontsize="8", fontcolor="#0969da")
    return graph


def pipeline_definitions(assembly: Assembly) -> dict[str, dict]:
    """Each pipeline's name and parsed definition (placeholders stay as text)."""
    found = {}
    for stack, logical_id, pipeline in assembly.resources("AWS::SageMaker::Pipeline"):
        props = pipeline["Properties"]
        body = props["PipelineDefinition"].get("PipelineDefinitionBody")
        text = body["Fn::Sub"][0] if isinstance(body, dict) and "Fn::Sub" in body else body
        if isinstance(text, str):
            name = props.get("PipelineName")
            found[name if isinstance(name, str) else stack.key(logical_id)] = json.loads(text)
    return found


def step_edges(definition: dict) -> list[tuple[str, str, str]]:
    """``(from, to, label)``: explicit ``DependsOn``, property references (``Steps.X``) and condition branches."""
    edges = set()
    names = {step["Name"] for step in _steps(definition)}
    for step in _steps(definition):
        for dependency in step.get("DependsOn", []):
            edges.add((dependency, step["Name"], ""))
        text = json.dumps(step.get("Arguments", {})) + json.dumps(step.get("Conditions", [])) + json.dumps(step.get("PropertyFiles", []))
        for referenced in re.findall(r"Steps\.([A-Za-z0-9_-]+)", text):
            if referenced in names and referenced != step["Name"]:
                edges.add((referenced, step["Name"], ""))
        arguments = step.get("Arguments", {})
        for branch, label in (("IfSteps", "if true"), ("ElseSteps", "else")):
            for target in arguments.get(branch, []) + step.get(branch, []):
                edges.add((step["Name"], target["Name"] if isinstance(target, dict) else target, label))
    return sorted(edges)


def _steps(definition: dict):
    for step in definition.get("Steps", []):
        yield step
        if step.get("Type") == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                yield from step.get("Arguments", {}).get(branch, [])


def pipeline_graph(name: str, definition: dict) -> graphviz.Digraph:
    graph = graphviz.Digraph(name, graph_attr={"rankdir": "LR", "fontname": "Helvetica", "label": name, "labelloc": "t", "fontsize": "11"},
                             node_attr={"fontname": "Helvetica", "fontsize": "9", "style": "filled,rounded", "shape": "box", "fillcolor": "#eaf6ea"})
    for step in _steps(definition):
        graph.node(step["Name"], f"{step['Name']}\n{step.get('Type', '')}", fillcolor="#fff4e0" if step.get("Type") in ("Condition", "Fail") else "#eaf6ea")
    for source, target, label in step_edges(definition):
        graph.edge(source, target, label=label, fontsize="8")
    return graph


def render(graph: graphviz.Digraph, outdir: Path, stem: str, *, png: bool = False) -> Path:
    """Write ``stem.svg`` (and ``stem.png``) into ``outdir``; deterministic for the same graph and Graphviz."""
    outdir.mkdir(parents=True, exist_ok=True)
    svg = outdir / f"{stem}.svg"
    svg.write_bytes(graph.pipe(format="svg"))
    if png:
        (outdir / f"{stem}.png").write_bytes(graph.pipe(format="png"))
    return svg


def section(assembly: Assembly, outdir: Path, *, png: bool = True) -> Section:
    sec = Section("Pictures")
    if not available():
        sec.add(Para("Graphviz's `dot` is not installed (`apt-get install graphviz` / `brew install graphviz`): no pictures.", "warn"))
        return sec
    sec.add(Para("Generated from the cloud assembly. Arrows point from a resource to what it uses (reads, writes, notifies); dashed: runs in the VPC's subnets."))
    sec.add(Figure(render(architecture(assembly), outdir, "architecture", png=png), f"Architecture of {assembly.stage}"))
    for name, definition in pipeline_definitions(assembly).items():
        stem = "pipeline-" + re.sub(r"[^A-Za-z0-9-]+", "-", name)
        sec.add(Figure(render(pipeline_graph(name, definition), outdir, stem, png=png), f"SageMaker pipeline {name}"))
    return sec
