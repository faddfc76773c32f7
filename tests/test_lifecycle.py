"""Lifecycle safety of the templates: retries after a failed first deploy, updates CloudFormation can
perform, cross-stack values that reach their consumers."""

from __future__ import annotations

import pytest

from tests.cfn_schemas import explicit_names

RETAIN_EXCEPT_ON_CREATE = "RetainExceptOnCreate"


def kept_resources(synth) -> dict[tuple[str, str, str], tuple[str, object]]:
    """(stack, type, logical id) -> (deletion policy, explicit name or None) of every resource kept on delete."""
    kept = {}
    for stack_id in synth.stack_ids:
        for logical_id, resource in synth.template_json(stack_id)["Resources"].items():
            policy = resource.get("DeletionPolicy", "Delete")
            if policy != "Delete":
                names = list(explicit_names(resource).values())
                kept[(stack_id, resource["Type"], logical_id)] = (policy, names[0] if names else None)
    return kept


# Every fixed-name resource the platform keeps on delete, with the policy it must have: a rolled-back
# first create deletes them, so the retry does not fail with "already exists".
FIXED_NAME_KEPT = {
    ("Network", "AWS::Logs::LogGroup", "/{prefix}/vpc-flow-logs"),
    ("ModelBuild", "AWS::SageMaker::ModelPackageGroup", "{prefix}-models"),
}


@pytest.mark.parametrize("synth", ["sandbox", "serving", "examples"])
def test_fixed_name_resources_kept_on_delete_are_deleted_when_their_create_rolls_back(request, synth):
    synths = request.getfixturevalue(synth)
    for env_synth in synths.values() if isinstance(synths, dict) else [synths]:
        prefix = f"mlp-{env_synth.stage.node.id.removeprefix('MlPlatform-')}"
        kept = kept_resources(env_synth)
        named = {(stack, rtype, name): policy for (stack, rtype, _), (policy, name) in kept.items() if name is not None}
        assert named == {(s, t, n.format(prefix=prefix)): RETAIN_EXCEPT_ON_CREATE for s, t, n in FIXED_NAME_KEPT}
        # Generated names never collide on a retry: buckets keep plain Retain (a rolled-back create could not
        # delete a bucket log deliveries already reached), keys and the rest are deleted with a failed create.
        unnamed = {key: policy for key, (policy, name) in kept.items() if name is None}
        buckets = {key: unnamed.pop(key) for key in list(unnamed) if key[1] == "AWS::S3::Bucket"}
        assert len(buckets) == 5 and set(buckets.values()) == {"Retain"}
        assert unnamed and set(unnamed.values()) == {RETAIN_EXCEPT_ON_CREATE}, unnamed
        assert all(
            env_synth.template_json(stack)["Resources"][lid].get("UpdateReplacePolicy") == "Retain" for (stack, _, lid) in kept
        )
