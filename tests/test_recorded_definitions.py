"""The committed pipeline definitions (pipeline_code/definitions/recorded/): current, intact, and used."""

from __future__ import annotations

import importlib.util
import json

import pytest

from pipeline_code.definitions import cache
from tests.conftest import ROOT

STALE = "run `make definitions` and commit pipeline_code/definitions/recorded/"


def _record_script():
    spec = importlib.util.spec_from_file_location("record_definitions", ROOT / "scripts" / "record_definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_recorded_definition_is_intact_and_keyed_on_what_it_was_built_from():
    index = cache.recorded_index()
    assert index, STALE
    assert {p.stem for p in cache.RECORDED_DIR.glob("*.json")} == {*index, "index"}, STALE
    for name, entry in index.items():
        definition = cache.canonical((cache.RECORDED_DIR / f"{name}.json").read_text(encoding="utf-8"))
        assert cache.digest(definition) == entry["sha256"], f"{name}: edited by hand; {STALE}"
        key = cache.cache_key(arguments=entry["arguments"], sources=[ROOT / s for s in entry["sources"]])
        assert key == entry["key"], f"{name}: its builder changed since it was recorded; {STALE}"


def test_recording_again_would_change_nothing():
    """What every shipped environment (with a package approved) builds today is exactly what is committed."""
    recorded = _record_script().record()
    index = cache.recorded_index()
    assert sorted(recorded) == sorted(index), STALE
    for name, entry in recorded.items():
        assert (entry.key, cache.digest(entry.definition)) == (index[name]["key"], index[name]["sha256"]), f"{name}: {STALE}"


@pytest.mark.parametrize("synth", ["sandbox", "serving"])
def test_the_sandbox_embeds_the_recorded_definitions(request, synth):
    """A fresh clone's synth needs no SageMaker SDK: every embedded body is the committed one."""
    synthesized = request.getfixturevalue(synth)
    embedded = {}
    for stack_id in synthesized.stack_ids:
        template = synthesized.template_json(stack_id)
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::SageMaker::Pipeline":
                name = resource["Properties"]["PipelineName"]
                embedded[name] = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
    assert embedded and set(embedded) <= set(cache.recorded_index())
    for name, body in embedded.items():
        assert body == cache.canonical((cache.RECORDED_DIR / f"{name}.json").read_text(encoding="utf-8")), f"{name}: {STALE}"


def test_a_hand_edited_recording_is_refused(monkeypatch, tmp_path):
    name = "mlp-sandbox-model-build"
    entry = cache.recorded_index()[name]
    edited = json.loads((cache.RECORDED_DIR / f"{name}.json").read_text(encoding="utf-8"))
    edited["Version"] = "1999-01-01"
    (tmp_path / f"{name}.json").write_text(json.dumps(edited), encoding="utf-8")
    monkeypatch.setattr(cache, "RECORDED_DIR", tmp_path)
    with pytest.raises(ValueError, match="edited by hand"):
        cache.cached_build(
            cache_dir=tmp_path / "cache", arguments=entry["arguments"], sources=[ROOT / s for s in entry["sources"]],
            build=lambda: pytest.fail("a recorded definition with a matching key must not be rebuilt"),
        )  # fmt: skip
