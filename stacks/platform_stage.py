"""One environment of the platform as a ``cdk.Stage``.

The same stage is deployed by hand (``cdk deploy 'MlPlatform-<env>/*'``) and,
later, by the delivery pipeline.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from config.schema import PlatformConfig
from ml_constructs.nag import acknowledge_inline_policies
from ops.approved_model import context_key
from stacks.foundation_stack import FoundationStack
from stacks.model_build_stack import ModelBuildStack
from stacks.monitoring_stack import MonitoringStack
from stacks.network_stack import NetworkStack
from stacks.serving_stack import ApprovedPackage, ServingStack
from stacks.studio_stack import StudioStack

ENVIRONMENT_TAG = "ml-platform:environment"
# Id of the warning ``cdk synth --strict`` fails on; ``Annotations.of(stage.serving).acknowledge_warning(id)`` accepts it.
MODEL_MONITOR_WITHOUT_BASELINE = "ml-platform:model-monitor-without-baseline"


class PlatformStage(cdk.Stage):
    """The per-environment stacks of the ML platform.

    :param config: the validated environment configuration.
    :param approved_package: the model package version to serve. Default: none, which leaves out
        the serving stack (``serving_skipped`` says why).

    What a user must know about the synthesized environment is a CDK annotation (``cdk synth`` shows
    it with the construct's path):

    - no Serving stack: an *info* on the Monitoring stack. A new environment has no approved model
      until its first pipeline run, and it must still synthesize under ``cdk synth --strict``.
    - a Model Monitor schedule without a registered baseline: a *warning* on the Serving stack, which
      fails ``cdk synth --strict``: the schedule runs but checks nothing against the training data.
    """

    def __init__(
        self, scope: Construct, id_: str, *, config: PlatformConfig, approved_package: ApprovedPackage | None = None, **kwargs
    ) -> None:
        env = cdk.Environment(account=config.account, region=config.region) if config.account else None
        super().__init__(scope, id_, env=env, **kwargs)
        destroy = config.stateful_resources_on_delete == "destroy"
        # Kept on update and delete, but deleted when the operation that created them rolls back: a
        # retained leftover of a failed first deploy (the flow-log group, the registry: fixed names)
        # would make the retry fail with "already exists", and it holds no data yet.
        removal = cdk.RemovalPolicy.DESTROY if destroy else cdk.RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
        prefix = config.resource_prefix

        self.network = NetworkStack(
            self,
            "Network",
            network=config.network,
            resource_prefix=prefix,
            removal_policy=removal,
            description=f"ML platform {config.name}: VPC, endpoints, flow logs",
        )
        self.foundation = FoundationStack(
            self,
            "Foundation",
            network=self.network.network,
            resource_prefix=prefix,
            destroy_stateful_resources=destroy,
            models_shared_with_accounts=config.pipeline.registry_shared_with_accounts,
            mlflow_enabled=config.studio.enabled and config.studio.mlflow.enabled,
            multi_model_prefix=config.serving.multi_model.model_data_prefix,
            drift_metric_namespace=config.monitoring.drift_check.metric_namespace,
            model_monitor_enabled=config.monitoring.model_monitor.enabled,
            description=f"ML platform {config.name}: KMS keys, S3 buckets, IAM roles",
        )

        self.model_build = ModelBuildStack(
            self,
            "ModelBuild",
            network=self.network.network,
            foundation=self.foundation.resources,
            settings=config.pipeline,
            resource_prefix=prefix,
            removal_policy=removal,
            data_quality_baseline=config.monitoring.model_monitor.enabled,
            description=f"ML platform {config.name}: model-build pipeline, registry, schedule, notifications",
        )

        self.studio = (
            StudioStack(
                self,
                "Studio",
                network=self.network.network,
                logs_key=self.network.logs_key.key,
                foundation=self.foundation.resources,
                settings=config.studio,
                resource_prefix=prefix,
                removal_policy=removal,
                description=f"ML platform {config.name}: VPC-only Studio domain, user profiles, MLflow",
            )
            if config.studio.enabled
            else None
        )
        for warning in config.git_reachability_warnings():
            cdk.Annotations.of(self.studio).add_warning_v2("ml-platform:git-repository-reachability", warning)

        self.serving: ServingStack | None = None
        self.serving_skipped: str | None = None
        if not config.serving.enabled:
            self.serving_skipped = "serving.enabled is false"
        elif approved_package is None:
            self.serving_skipped = "no approved model package recorded"
        else:
            self.serving = ServingStack(
                self,
                "Serving",
                network=self.network.network,
                logs_key=self.network.logs_key.key,
                foundation=self.foundation.resources,
                settings=config.serving,
                package=approved_package,
                resource_prefix=prefix,
                removal_policy=removal,
                model_monitor=config.monitoring.model_monitor,
                description=f"ML platform {config.name}: endpoints and batch scoring for model package version {approved_package.version}",
            )

        self.monitoring = MonitoringStack(
            self,
            "Monitoring",
            network=self.network.network,
            foundation=self.foundation.resources,
            model_build_pipeline=self.model_build.pipeline,
            endpoints=self.serving.endpoints if self.serving else None,
            served_model_package_arn=approved_package.arn if self.serving else None,
            batch_scoring_pipeline=self.serving.batch_scoring if self.serving else None,
            settings=config.monitoring,
            cost_allocation_tag=(ENVIRONMENT_TAG, config.name),
            resource_prefix=prefix,
            removal_policy=removal,
            description=f"ML platform {config.name}: alarms, dashboard, drift checks, budget",
        )

        if self.serving_skipped:
            key = context_key(config.name)
            hint = "" if not config.serving.enabled else f"; after approving one, run `make approved-model ENV={config.name}`"
            cdk.Annotations.of(self.monitoring).add_info(
                f"serving: no endpoints in '{config.name}': {self.serving_skipped} (context key '{key}'){hint}"
            )
        if self.serving is not None and self.serving.model_monitor_without_baseline:
            cdk.Annotations.of(self.serving).add_warning_v2(
                MODEL_MONITOR_WITHOUT_BASELINE,
                f"monitoring: the Model Monitor schedule of '{config.name}' has no baseline: package version "
                f"{approved_package.version} was registered without one (set monitoring.model_monitor.enabled, retrain, "
                f"approve, then `make approved-model ENV={config.name}`)",
            )

        # Every role's permissions are CDK's DefaultPolicy (inline): written by grant_* next to the resource they
        # concern, owned by that one role and deleted with it. NIST/HIPAA/PCI prefer managed policies for reuse
        # and central review; this report (`make review`) is that review, role by role.
        acknowledge_inline_policies(
            self,
            "The role's own policy, built by the platform's grant_* methods and scoped to the resources of this "
            "environment; it cannot be attached to another principal, is deleted with its role, and every statement "
            "is listed per role in the review report (IAM section). Customer-managed policies would add reuse this "
            "platform does not want and a second resource per role to replace on each change.",
        )

        tags = cdk.Tags.of(self)
        tags.add(ENVIRONMENT_TAG, config.name)
        for key, value in sorted(config.tags.items()):
            tags.add(key, value)
        # CDK's custom-resource providers (the default security group's restriction) build their role and
        # function as plain CfnResources, which Tags cannot reach: they get the same tags as properties.
        untaggable = [
            node
            for node in self.node.find_all()
            if isinstance(node, cdk.CfnResource)
            and node.cfn_resource_type in ("AWS::IAM::Role", "AWS::Lambda::Function")
            and not cdk.TagManager.is_taggable(node)
        ]
        for resource in untaggable:
            every_tag = {ENVIRONMENT_TAG: config.name, **config.tags}
            resource.add_property_override("Tags", [{"Key": k, "Value": every_tag[k]} for k in sorted(every_tag)])

    @property
    def stacks(self) -> list[cdk.Stack]:
        return [s for s in (self.network, self.foundation, self.model_build, self.studio, self.serving, self.monitoring) if s is not None]

