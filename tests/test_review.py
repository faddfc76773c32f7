"""The reviewer's report (review/): each section from the session's synthesized assemblies, the diff between two
synthesized versions, the Markdown/HTML renderings, and the pictures."""

from __future__ import annotations

import re
import shutil

import pytest

from config import load_config
from review import compliance, cost, diff, encryption, iam, network, pictures, report, retention
from review.assembly import Assembly
from review.synth import export_commit
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def sandbox_assembly(sandbox) -> Assembly:
    return Assembly.read(sandbox.outdir)


@pytest.fixture(scope="module")
def serving_assembly(serving) -> Assembly:
    return Assembly.read(serving.outdir)


@pytest.fixture(scope="module")
def dev_assembly(examples) -> Assembly:
    return Assembly.read(examples["dev"].outdir)


def test_iam_lists_each_role_with_trust_and_permissions_from_every_stack(sandbox_assembly):
    roles = iam.roles(sandbox_assembly, None)
    user = roles["Foundation/StudioUserRole"]
    assert [t[0] for t in user.trust] == ["Service: sagemaker.amazonaws.com"]
    # Granted by a managed policy of the Studio stack attached across stacks (Fn::GetStackOutput followed back).
    assert any(p.source.startswith("Studio/") for p in user.permissions)
    pass_role = [p for p in user.permissions if p.action == "iam:PassRole"]
    assert pass_role and all("iam:PassedToService" in p.condition for p in pass_role)
    assert any(p.effect == "Deny" and p.action == "sagemaker:CreateTrainingJob" for p in user.permissions)
    assert not any(r.cross_account for r in roles.values())


def test_iam_highlights_another_accounts_access(dev_assembly):
    rows = iam.resource_policy_foreign_principals(dev_assembly, "111111111111")
    assert rows and all("222222222222" in row[1] for row in rows)
    assert {row[0].split("/")[0].lstrip("<") for row in rows} >= {"Foundation", "ModelBuild"}
    assert iam.foreign_accounts("AWS: arn:aws:iam::222222222222:root", "111111111111") == ["222222222222"]
    assert iam.foreign_accounts("AWS: arn:aws:iam::111111111111:root", "111111111111") == []


def test_network_has_no_internet_path_and_lists_every_rule_and_endpoint(sandbox_assembly):
    assert network.internet_paths(sandbox_assembly) == []
    rules = network.security_group_rules(sandbox_assembly)
    endpoint_group = rules["Network/NetworkEndpointSecurityGroup"]
    assert ("ingress", "tcp 443", "SourceSecurityGroup <Network/NetworkWorkloadSecurityGroup.GroupId>", "HTTPS from platform workloads") in endpoint_group
    assert not any(d == "ingress" and "0.0.0.0/0" in peer for group in rules.values() for d, _, peer, _ in group)
    text = _markdown(network.section(sandbox_assembly))
    assert text.count("| Interface |") == 13 and "| Gateway |" in text
    assert "| Studio/Domain | Domain | inside |" in text


def test_encryption_names_the_key_of_each_store_and_every_key_rotates(sandbox_assembly):
    stores = {row[0]: row for row in encryption.stores(sandbox_assembly)}
    assert stores["Foundation/DataBucket"][3] == "<Foundation/DataKey.Arn>"
    assert stores["Foundation/ModelBucket"][3] == "<Foundation/ModelsKey.Arn>"
    assert stores["Studio/Domain"][3] == "<Foundation/StudioKey.Arn>"
    assert stores["ModelBuild/Pipeline"][3] == "<Foundation/ModelsKey.Arn>"
    # The Studio cleanup's logs use the environment's logs key (read across stacks), like the flow logs.
    assert stores["Studio/DomainCleanupLogs"][3] == stores["Network/FlowLogGroup"][3] == "<Network/LogsKey.Arn>"
    keys = {row[0]: row for row in encryption.keys(sandbox_assembly)}
    assert all(row[2] == "every 365 days" for row in keys.values())
    assert "alias/mlp-sandbox/data" in keys["Foundation/DataKey"][1]
    assert "<Foundation/StudioUserRole.Arn>" in keys["Foundation/DataKey"][3]


def test_retention_shows_each_stateful_resources_policies(sandbox_assembly):
    rows = {row[0]: row for row in retention.stateful(sandbox_assembly)}
    assert rows["Foundation/DataBucket"][2:4] == ["Retain", "Retain"]
    assert rows["ModelBuild/Registry"][2] == "RetainExceptOnCreate"
    assert rows["Studio/Domain"][4] == "deleted with its stack"


def test_cost_counts_endpoints_at_their_minimum_and_endpoints_per_zone(serving_assembly, dev_assembly):
    prices = cost.price_table("eu-west-1")
    assert {"region", "as_of", "source"} <= set(prices)
    lines = {line.item: line for line in cost.always_on(serving_assembly, prices)}
    realtime = lines["endpoint mlp-sandbox-realtime (ml.m5.large, minimum instances)"]
    assert realtime.monthly == pytest.approx(1 * 730 * prices["sagemaker_hosting_hour"]["ml.m5.large"])
    assert lines["interface endpoints (13, in 2 AZs)"].monthly == pytest.approx(26 * 730 * prices["always_on"]["interface_endpoint_az_hour"])
    assert lines["MLflow tracking server (Small)"].monthly == pytest.approx(730 * prices["always_on"]["mlflow_tracking_server_hour"]["Small"])
    dev_lines = {line.item for line in cost.always_on(dev_assembly, prices)}
    assert "MLflow tracking server (Medium)" in dev_lines and not any(i.startswith("endpoint ") for i in dev_lines)
    assert cost.monthly_total(serving_assembly, prices) == pytest.approx(sum(line.monthly for line in lines.values()), abs=0.01)


def test_compliance_lists_findings_with_their_acknowledgements(sandbox_assembly):
    found = compliance.findings(sandbox_assembly)
    assert "AwsSolutions" in compliance.packs(sandbox_assembly)
    assert found and all(f.reason for f in found if f.acknowledged_id)
    assert not [f for f in found if not f.acknowledged_id]
    acknowledged = compliance.acknowledgements(sandbox_assembly)
    assert acknowledged and all("::" in a.id for a in acknowledged)


def test_every_acknowledgement_matches_a_finding(every_synth):
    """A stale acknowledgement hides nothing today and would silently hide a new finding on that construct."""
    stale = {f"{s.outdir.name}: {a.construct} {a.id}" for s in every_synth for a in compliance.unmatched(Assembly.read(s.outdir))}
    assert not stale, "\n".join(sorted(stale))


def test_changes_since_base_from_two_synthesized_versions(sandbox_assembly, serving_assembly):
    """The sandbox as BASE and the same environment serving a model as HEAD: what a pull request adding serving changes."""
    widened = diff.widened(sandbox_assembly, serving_assembly, None)
    assert any(role == "Foundation/ModelExecutionRole" and change == "allows" for role, change, _ in widened)
    added = diff.rules_added(sandbox_assembly, serving_assembly)
    assert any("MultiModel" in row[0] for row in added)
    assert not diff.stateful_changes(sandbox_assembly, serving_assembly)
    removed = diff.stateful_changes(serving_assembly, sandbox_assembly)
    assert removed and all(row[0].startswith("Serving/") and "deleted" in row[2] for row in removed)
    section = diff.section(sandbox_assembly, serving_assembly, base_ref="main", config=load_config("sandbox"))
    prices = cost.price_table(None)
    delta = cost.monthly_total(serving_assembly, prices) - cost.monthly_total(sandbox_assembly, prices)
    assert delta > 0 and f"({delta:+,.2f})" in section.blocks[0].text
    assert diff.widened(serving_assembly, serving_assembly, None) == [] and diff.rules_added(serving_assembly, serving_assembly) == []


def test_stateful_replacement_is_found_from_create_only_properties(sandbox_assembly):
    import copy

    head = copy.deepcopy(sandbox_assembly)
    flow_logs = [lid for lid, r in head.stacks["Network"].resources.items() if r["Type"] == "AWS::Logs::LogGroup"][0]
    head.stacks["Network"].resources[flow_logs]["Properties"]["LogGroupName"] = "/renamed"
    head.stacks["Foundation"].resources[[lid for lid in head.stacks["Foundation"].resources if lid.startswith("DataBucket")][0]]["DeletionPolicy"] = "Delete"
    changes = {row[0]: row[2] for row in diff.stateful_changes(sandbox_assembly, head)}
    assert changes == {"Network/FlowLogGroup": "replaced: create-only LogGroupName changed", "Foundation/DataBucket": "DeletionPolicy Retain -> Delete"}


def test_pipeline_dag_follows_dependencies_and_branches(sandbox_assembly):
    (definition,) = pictures.pipeline_definitions(sandbox_assembly).values()
    edges = pictures.step_edges(definition)
    assert ("PreprocessData", "TrainModel", "") in edges
    assert ("EvaluateModel", "CheckAccuracy", "") in edges
    assert ("CheckAccuracy", "RegisterModel", "if true") in edges
    assert ("CheckAccuracy", "FailOnLowAccuracy", "else") in edges


@pytest.mark.skipif(not pictures.available(), reason="Graphviz (dot) is not installed: `make test` installs it")
def test_report_written_as_self_contained_html_and_markdown(serving_assembly, tmp_path):
    figures = pictures.section(serving_assembly, tmp_path, png=False)
    built = report.build(serving_assembly, load_config("sandbox"), base=serving_assembly, base_ref="HEAD", figures=figures)
    html_file, md_file = report.write(built, tmp_path)
    html, markdown = html_file.read_text(encoding="utf-8"), md_file.read_text(encoding="utf-8")
    titles = ["Changes since HEAD", "Pictures", "IAM", "Network", "Encryption", "Retention", "Cost", "Compliance"]
    assert [s.title for s in built.sections] == titles
    for title in titles:
        assert f"## {title}" in markdown and f">{title}</h2>" in html
    # Opens from disk: no script and nothing fetched (links only to its own anchors; SVG namespaces are not fetched).
    assert "<script" not in html
    assert not [u for u in re.findall(r'(?:src|href)="([^"#][^"]*)"', html)]
    assert html.count("<svg") == 1 + 3  # the architecture and the three pipelines of a serving environment
    assert "](architecture.svg)" in markdown and (tmp_path / "pipeline-mlp-sandbox-model-build.svg").is_file()
    assert "Serving" in (tmp_path / "architecture.svg").read_text(encoding="utf-8")


def test_base_commit_is_exported_without_a_checkout(tmp_path):
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    exported = export_commit("HEAD", tmp_path / "base")
    assert (exported / "app.py").is_file() and (exported / "cdk.json").is_file()


def _markdown(section) -> str:
    from pathlib import Path

    from review.document import Report, to_markdown

    return to_markdown(Report("t", [], [section]), base_dir=Path("."))
