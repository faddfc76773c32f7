"""Retention: what survives a stack delete or a replacement, and what ``make destroy`` removes and leaves."""

from __future__ import annotations

from ops.destroy import DESTROY_ORDER, RETAINED_POLICIES
from review.assembly import Assembly
from review.document import Para, Section, Table

# Resources that hold data or identity someone would miss: their policies are what a reviewer checks.
STATEFUL_TYPES = (
    "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::SageMaker::ModelPackageGroup",
    "AWS::SageMaker::Domain", "AWS::SageMaker::UserProfile", "AWS::SageMaker::Space", "AWS::SageMaker::MlflowTrackingServer",
    "AWS::DynamoDB::Table", "AWS::EFS::FileSystem", "AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::SageMaker::FeatureGroup",
)


def stateful(assembly: Assembly) -> list[list[str]]:
    """``[resource, type, DeletionPolicy, UpdateReplacePolicy, after make destroy]`` per stateful resource."""
    rows = []
    for stack, logical_id, resource in assembly.resources(*STATEFUL_TYPES):
        deletion = resource.get("DeletionPolicy", "Delete")
        replace = resource.get("UpdateReplacePolicy", "Delete")
        fate = "kept (listed by make destroy; delete by hand)" if deletion in RETAINED_POLICIES else "deleted with its stack"
        if resource["Type"] == "AWS::KMS::Key" and deletion not in RETAINED_POLICIES:
            fate = "deletion scheduled (KMS waiting period)"
        rows.append([stack.key(logical_id), resource["Type"], deletion, replace, fate])
    return rows


def section(assembly: Assembly, config) -> Section:
    sec = Section("Retention")
    rows = stateful(assembly)
    sec.add(Para(
        "DeletionPolicy applies when the stack is deleted or the resource removed from it; UpdateReplacePolicy when a "
        "change replaces it. RetainExceptOnCreate keeps it except when the deployment that created it rolls back. "
        "Stateful resources that a stack delete destroys are highlighted."
    ))
    sec.add(Table(["resource", "type", "DeletionPolicy", "UpdateReplacePolicy", "after `make destroy`"], rows,
                  marked={i for i, r in enumerate(rows) if r[2] not in RETAINED_POLICIES and r[1] != "AWS::SNS::Topic"}))
    order = [f"{assembly.stage}-{stack_id}" for stack_id in DESTROY_ORDER if stack_id in assembly.stacks]
    teardown = sec.sub("Teardown (`make destroy`)")
    teardown.add(Para(f"Deletes the stacks in this order: {', '.join(order)}; everything not retained above goes with them."))
    studio = getattr(config, "studio", None)
    if studio is not None and studio.enabled:
        home = studio.home_efs_on_delete
        teardown.add(Para(
            "The Studio domain's home EFS (the users' files) "
            + ("is deleted with the domain (studio.home_efs_on_delete: delete)." if home == "delete"
               else "is kept by SageMaker after the domain is deleted (studio.home_efs_on_delete: retain); "
                    "`make destroy CLEAN_VPC=1` removes its mount targets and security groups, never the file system."),
            "warn" if home == "delete" else "info",
        ))
    if getattr(config, "stateful_resources_on_delete", "retain") == "destroy":
        teardown.add(Para("stateful_resources_on_delete: destroy — buckets are emptied and deleted, keys scheduled for deletion.", "warn"))
    return sec
