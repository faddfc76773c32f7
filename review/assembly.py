"""A cloud assembly read as plain JSON: stacks, their templates and metadata, and cdk-nag's validation report.

Reading the files (not ``aws_cdk.cx_api``) keeps the report independent of the CDK version that wrote them, so
an assembly of an older commit (``--base``) reads the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

# CDK appends an 8-character hash to every logical id it derives from a construct path.
_HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")


def display_id(logical_id: str) -> str:
    """``DataBucketB1A7365C`` -> ``DataBucket``: the construct's name without CDK's hash."""
    stripped = _HASH_SUFFIX.sub("", logical_id)
    return stripped or logical_id


@dataclass
class Stack:
    """One stack of the assembly: construct id within its stage (``Foundation``), CloudFormation name, template."""

    id: str
    name: str
    template: dict
    metadata: dict

    @property
    def resources(self) -> dict[str, dict]:
        return self.template.get("Resources", {})

    def of_type(self, *types: str) -> dict[str, dict]:
        return {k: v for k, v in self.resources.items() if v["Type"] in types}

    def key(self, logical_id: str) -> str:
        """The resource's name in the report: ``Foundation/DataBucket``."""
        return f"{self.id}/{display_id(logical_id)}"


@dataclass
class Assembly:
    """The stacks of one environment's stage and what cdk-nag reported on them."""

    outdir: Path
    stage: str
    stacks: dict[str, Stack]
    validation: dict = field(default_factory=dict)

    @classmethod
    def read(cls, outdir: Path | str) -> "Assembly":
        outdir = Path(outdir)
        manifest = _load(outdir / "manifest.json")
        (nested,) = [
            (name, artifact["properties"]["directoryName"])
            for name, artifact in manifest["artifacts"].items()
            if artifact["type"] == "cdk:cloud-assembly"
        ]
        stage, directory = nested[0].removeprefix("assembly-"), outdir / nested[1]
        inner = _load(directory / "manifest.json")
        stacks = {}
        for artifact in inner["artifacts"].values():
            if artifact["type"] != "aws:cloudformation:stack":
                continue
            props = artifact["properties"]
            stack_id = artifact["displayName"].split("/", 1)[1]
            metadata_file = directory / f"{props['templateFile'].removesuffix('.template.json')}.metadata.json"
            stacks[stack_id] = Stack(
                id=stack_id,
                name=props.get("stackName", stack_id),
                template=_load(directory / props["templateFile"]),
                metadata=_load(metadata_file) if metadata_file.is_file() else artifact.get("metadata", {}),
            )
        report = outdir / "validation-report.json"
        return cls(outdir=outdir, stage=stage, stacks=stacks, validation=_load(report) if report.is_file() else {})

    def stack_named(self, name: str) -> Stack | None:
        return next((s for s in self.stacks.values() if s.name == name), None)

    def resources(self, *types: str):
        """``(stack, logical id, resource)`` of every resource of ``types`` in every stack."""
        for stack in self.stacks.values():
            for logical_id, resource in stack.of_type(*types).items():
                yield stack, logical_id, resource

    def producer(self, stack: Stack, value):
        """Follow a cross-stack read (``Fn::GetStackOutput``, ``Fn::ImportValue``) to ``(stack, value)`` where it is
        produced; any other value stays where it is."""
        for _ in range(5):
            if not isinstance(value, dict):
                break
            if "Fn::GetStackOutput" in value:
                ref = value["Fn::GetStackOutput"]
                other = self.stack_named(ref.get("StackName")) if isinstance(ref.get("StackName"), str) else None
                output = other and other.template.get("Outputs", {}).get(ref["OutputName"])
                if not output:
                    break
                stack, value = other, output["Value"]
            elif "Fn::ImportValue" in value and isinstance(value["Fn::ImportValue"], str):
                found = self._export(value["Fn::ImportValue"])
                if not found:
                    break
                stack, value = found
            else:
                break
        return stack, value

    def _export(self, name: str):
        for stack in self.stacks.values():
            for output in stack.template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == name:
                    return stack, output["Value"]
        return None

    def referenced_resource(self, stack: Stack, value) -> tuple[Stack, str] | None:
        """The ``(stack, logical id)`` a ``Ref``/``Fn::GetAtt`` (possibly across stacks) points to."""
        stack, value = self.producer(stack, value)
        if isinstance(value, dict):
            if "Ref" in value and value["Ref"] in stack.resources:
                return stack, value["Ref"]
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"][0] if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"].split(".")[0]
                if target in stack.resources:
                    return stack, target
        return None

    def render(self, stack: Stack, value) -> str:
        """A CloudFormation value as a reviewer reads it: references by resource name, intrinsic functions folded."""
        stack, value = self.producer(stack, value)
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float, bool)) or value is None:
            return json.dumps(value)
        if isinstance(value, list):
            return ", ".join(self.render(stack, v) for v in value)
        if "Ref" in value:
            ref = value["Ref"]
            if ref.startswith("AWS::"):
                return "${" + ref + "}"
            return f"<{stack.key(ref)}>" if ref in stack.resources else f"<{ref}>"
        if "Fn::GetAtt" in value:
            target, attribute = (
                value["Fn::GetAtt"] if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"].split(".", 1)
            )
            return f"<{stack.key(target)}.{attribute}>"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            if isinstance(parts, list):
                return separator.join(self.render(stack, p) for p in parts)
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, mapping = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            for name, mapped in mapping.items():
                text = text.replace("${" + name + "}", self.render(stack, mapped))
            return re.sub(r"\$\{([A-Za-z0-9]+)(\.[A-Za-z]+)?\}", lambda m: f"<{stack.key(m.group(1))}{m.group(2) or ''}>" if m.group(1) in stack.resources else m.group(0), text)
        if "Fn::Select" in value:
            index, items = value["Fn::Select"]
            return f"{self.render(stack, items)}[{index}]"
        if "Fn::GetStackOutput" in value:
            return f"<output {value['Fn::GetStackOutput'].get('OutputName')}>"
        if "Fn::ImportValue" in value:
            return f"<import {self.render(stack, value['Fn::ImportValue'])}>"
        if "Fn::GetAZs" in value:
            return "zones of the region"
        if "Fn::If" in value:
            condition, yes, no = value["Fn::If"]
            return f"if {condition}: {self.render(stack, yes)} else {self.render(stack, no)}"
        return json.dumps(value, sort_keys=True)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
