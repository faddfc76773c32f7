"""Checks the pipeline-definition tests share: SageMaker API shapes, an offline build, snapshots."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

import botocore.endpoint
import botocore.session
import pytest
from botocore.validate import ParamValidator

from tests.conftest import ROOT


def _dummy_for(shape):
    return {"string": "x", "integer": 1, "long": 1, "float": 1.0, "double": 1.0, "boolean": True, "timestamp": 0}.get(
        shape.type_name, "x"
    )


def _concrete(value, shape):
    """Replace pipeline expressions by values of the type the API shape expects."""
    if isinstance(value, dict) and set(value) & {"Get", "Std:Join", "Std:JsonGet"}:
        return _dummy_for(shape)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _concrete(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_concrete(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _concrete(v, shape.value) for k, v in value.items()}
    return value


@functools.cache
def input_shape(operation: str):
    """The input shape of a SageMaker API operation (``CreateProcessingJob``...), from botocore's model."""
    return botocore.session.get_session().get_service_model("sagemaker").operation_model(operation).input_shape


def api_problems(operation: str, arguments: dict, *, ignore: Iterable[str] = ()) -> list[str]:
    """What botocore finds wrong with ``arguments`` as a request to the SageMaker ``operation``.

    Pipeline expressions count as values of the type expected; lines about the members in ``ignore``
    (names SageMaker Pipelines generates per execution, which the SDK drops) are left out.
    """
    shape = input_shape(operation)
    report = ParamValidator().validate(_concrete(arguments, shape), shape)
    ignored = [f'"{name}"' for name in ignore]
    return [
        line for line in report.generate_report().splitlines()
        if line and not any(name in line for name in ignored) and "Parameter validation failed" not in line
    ]  # fmt: skip


def assert_no_network_attempt(monkeypatch, build: Callable[[], object]) -> None:
    """``build()`` opens no socket and sends no botocore request."""
    attempts = []
    real_connect = socket.socket.connect

    def record(sock, address):
        attempts.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", lambda *a, **k: attempts.append(a))
    build()
    assert attempts == []


def recorded_snapshot(path: Path, text: str) -> str:
    """The snapshot at ``path``; ``text`` becomes it with UPDATE_SNAPSHOTS=1, or when there is none yet (and the test fails)."""
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(text, encoding="utf-8")
        if os.environ.get("UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"no snapshot yet: wrote {path.relative_to(ROOT)}; review and commit it")
    return path.read_text(encoding="utf-8")


def assert_matches_snapshot(path: Path, text: str) -> None:
    """A change to ``text`` must be deliberate: `UPDATE_SNAPSHOTS=1 make test` to accept it."""
    assert text == recorded_snapshot(path, text), f"{path.name} changed; review, then UPDATE_SNAPSHOTS=1 make test"
