"""A VPC-only SageMaker Studio domain (IAM auth, new Studio experience) with per-person profiles."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import custom_resources as cr
from constructs import Construct

from ml_constructs.nag import acknowledge, acknowledge_wildcards
from ml_constructs.roles import ApiCall

CLEANUP_HANDLER_DIR = Path(__file__).resolve().parent / "studio_cleanup_handler"
SPACE_NAME_HASH_LENGTH = 10
MAX_SPACE_NAME_LENGTH = 63
# Longest name a shared space may be given: its physical name adds "-" and the hash.
MAX_SPACE_DISPLAY_NAME_LENGTH = MAX_SPACE_NAME_LENGTH - SPACE_NAME_HASH_LENGTH - 1


def space_name(display_name: str, *create_only: dict) -> str:
    """``<display name>-<hash of the space's create-only settings>``: a new owner gives a new name."""
    rendered = json.dumps([display_name, *create_only], sort_keys=True, separators=(",", ":"))
    return f"{display_name}-{hashlib.sha256(rendered.encode()).hexdigest()[:SPACE_NAME_HASH_LENGTH]}"
_SM = "arn:aws:sagemaker:{region}:{account}"
# What the cleanup handlers call at stack delete (studio_cleanup_handler/index.py), and their logs.
CLEANUP_ROLE_CALLS = (
    ApiCall("sagemaker:ListApps", "*"),
    ApiCall("sagemaker:ListSpaces", "*"),
    ApiCall("sagemaker:DeleteApp", f"{_SM}:app/{{domain_id}}/bob/jupyterlab/default"),
    ApiCall("sagemaker:DeleteSpace", f"{_SM}:space/{{domain_id}}/team-space"),
    ApiCall("logs:CreateLogStream", "{cleanup_log_group}:log-stream:2026/11/20/[$LATEST]0123456789abcdef"),
    ApiCall("logs:PutLogEvents", "{cleanup_log_group}:log-stream:2026/11/20/[$LATEST]0123456789abcdef"),
)


@dataclass(frozen=True)
class StudioUserSpec:
    """A person and the execution role of their persona."""

    name: str
    role: iam.IRole


@dataclass(frozen=True)
class AppDefaults:
    """JupyterLab and Code Editor defaults for every user and shared space."""

    instance_type: str
    idle_timeout_minutes: int
    git_repositories: list[str]
    jupyterlab_lifecycle_config_arns: list[str] = ()
    code_editor_lifecycle_config_arns: list[str] = ()


class StudioDomain(Construct):
    """Studio domain, user profiles, shared spaces and the cleanup that makes the domain deletable.

    :param domain_name: the domain's name.
    :param vpc: VPC the domain's apps run in (``VpcOnly``: no internet through SageMaker).
    :param subnets: the apps' subnets. Default: the VPC's private subnets.
    :param security_group: for the domain and every user's apps.
    :param encryption_key: customer key for the home file system and app volumes.
    :param default_role: execution role of the default user settings and shared spaces.
    :param apps: JupyterLab / Code Editor defaults (instance type, idle shutdown, Git repositories).
    :param sharing_output_s3_uri: where shared notebooks go when output sharing is on.
    :param sharing_key: the key for shared notebook output.
    :param notebook_output_sharing: include cell output when users share notebooks. Default: ``False``.
    :param users: one user profile each. Default: none.
    :param shared_spaces: spaces shared by all users, by name (at most
        ``MAX_SPACE_DISPLAY_NAME_LENGTH`` characters: the name users see), each with its owner's user
        name. A new owner replaces the space under a new physical name. Default: none.
    :param removal_policy: for the cleanup's log group. Default: ``RETAIN``.
    :param delete_home_efs: on stack delete, let the cleanup delete the profiles and the domain itself
        with the home EFS. Default: ``False``: SageMaker retains the home EFS with the users' files.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        domain_name: str,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        encryption_key: kms.IKey,
        default_role: iam.IRole,
        apps: AppDefaults,
        sharing_output_s3_uri: str,
        sharing_key: kms.IKey,
        subnets: list[ec2.ISubnet] | None = None,
        notebook_output_sharing: bool = False,
        users: list[StudioUserSpec] = (),
        shared_spaces: dict[str, str] | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        delete_home_efs: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        security_groups = [security_group.security_group_id]
        def lifecycle(arns) -> dict:
            return {"lifecycleConfigArns": list(arns)} if arns else {}

        jupyter_lab = {
            "defaultResourceSpec": {"instanceType": apps.instance_type},
            "codeRepositories": [{"repositoryUrl": url} for url in apps.git_repositories],
            "appLifecycleManagement": _idle_shutdown(apps.idle_timeout_minutes),
            **lifecycle(apps.jupyterlab_lifecycle_config_arns),
        }
        code_editor = {
            "defaultResourceSpec": {"instanceType": apps.instance_type},
            "appLifecycleManagement": _idle_shutdown(apps.idle_timeout_minutes),
            **lifecycle(apps.code_editor_lifecycle_config_arns),
        }
        self.domain = sagemaker.CfnDomain(
            self,
            "Resource",
            domain_name=domain_name,
            auth_mode="IAM",
            app_network_access_type="VpcOnly",
            vpc_id=vpc.vpc_id,
            subnet_ids=[subnet.subnet_id for subnet in (subnets if subnets is not None else vpc.private_subnets)],
            kms_key_id=encryption_key.key_arn,
            tag_propagation="ENABLED",
            domain_settings={"securityGroupIds": security_groups, "executionRoleIdentityConfig": "USER_PROFILE_NAME"},
            default_user_settings={
                "executionRole": default_role.role_arn,
                "securityGroups": security_groups,
                # The new Studio experience; Studio Classic stays hidden.
                "studioWebPortal": "ENABLED",
                "defaultLandingUri": "studio::",
                "studioWebPortalSettings": {"hiddenAppTypes": ["JupyterServer"]},
                "sharingSettings": {
                    "notebookOutputOption": "Allowed" if notebook_output_sharing else "Disabled",
                    "s3OutputPath": sharing_output_s3_uri,
                    "s3KmsKeyId": sharing_key.key_arn,
                },
                "jupyterLabAppSettings": jupyter_lab,
                "codeEditorAppSettings": code_editor,
            },
            default_space_settings={
                "executionRole": default_role.role_arn,
                "securityGroups": security_groups,
                "jupyterLabAppSettings": jupyter_lab,
            },
        )
        self.domain_id = self.domain.attr_domain_id
        self.domain_url = self.domain.attr_url

        self.user_profiles = {
            user.name: sagemaker.CfnUserProfile(
                self,
                f"User-{user.name}",
                domain_id=self.domain_id,
                user_profile_name=user.name,
                user_settings={"executionRole": user.role.role_arn, "securityGroups": security_groups},
            )
            for user in users
        }
        self.spaces = {}
        for name, owner in sorted((shared_spaces or {}).items()):
            sharing, ownership = {"sharingType": "Shared"}, {"ownerUserProfileName": owner}
            space = sagemaker.CfnSpace(
                self,
                f"Space-{name}",
                domain_id=self.domain_id,
                # Owner and sharing are create-only: a new owner replaces the space, which needs a new name.
                space_name=space_name(name, sharing, ownership),
                space_display_name=name,
                space_sharing_settings=sharing,
                ownership_settings=ownership,
                space_settings={"appType": "JupyterLab"},
            )
            space.node.add_dependency(self.user_profiles[owner])
            self.spaces[name] = space

        self.cleanup = self._cleanup(removal_policy, delete_home_efs)

    def grant_studio_use(self, grantee: iam.IGrantable) -> None:
        """Let an execution role work in this domain: its apps and spaces, and reading its profiles."""
        stack = cdk.Stack.of(self)

        def arn(kind: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=kind, resource_name=name)

        apps_and_spaces = [arn("app", f"{self.domain_id}/*"), arn("space", f"{self.domain_id}/*")]
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "sagemaker:AddTags",
                "sagemaker:CreateApp",
                "sagemaker:CreateSpace",
                "sagemaker:DeleteApp",
                "sagemaker:DeleteSpace",
                "sagemaker:DescribeApp",
                "sagemaker:DescribeSpace",
                "sagemaker:ListTags",
                "sagemaker:UpdateSpace",
            ],
            resource_arns=apps_and_spaces,
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:DescribeDomain", "sagemaker:DescribeUserProfile"],
            resource_arns=[arn("domain", self.domain_id), arn("user-profile", f"{self.domain_id}/*")],
        )
        # List calls support no resource-level permissions.
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:ListApps", "sagemaker:ListSpaces", "sagemaker:ListUserProfiles"],
            resource_arns=["*"],
        )
        acknowledge_wildcards(
            grantee,
            resources=[*apps_and_spaces, arn("user-profile", f"{self.domain_id}/*"), "*"],
            reason="Users create and name their own apps and spaces in this domain at run time; List calls "
            "have no resource-level permissions",
        )

    def _cleanup(self, removal_policy: cdk.RemovalPolicy, delete_home_efs: bool) -> cdk.CustomResource:
        """Delete users' apps, then spaces, before CloudFormation deletes profiles and the domain."""
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "CleanupRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Deletes the Studio domain's apps and spaces before the domain is deleted",
        )
        domain_resources = [
            stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{self.domain_id}/*")
            for kind in ("app", "space")
        ]
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DeleteApp", "sagemaker:DeleteSpace"], resources=domain_resources))
        # List calls support no resource-level permissions.
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:ListApps", "sagemaker:ListSpaces"], resources=["*"]))
        if delete_home_efs:
            domain_arn = stack.format_arn(service="sagemaker", resource="domain", resource_name=self.domain_id)
            profiles_arn = stack.format_arn(service="sagemaker", resource="user-profile", resource_name=f"{self.domain_id}/*")
            domain_resources.append(profiles_arn)
            role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DeleteUserProfile"], resources=[profiles_arn]))
            role.add_to_policy(
                iam.PolicyStatement(actions=["sagemaker:DeleteDomain", "sagemaker:DescribeDomain"], resources=[domain_arn])
            )
            role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:ListUserProfiles"], resources=["*"]))
        # One log group for the handlers and CDK's framework functions, one role without managed policies.
        log_group = logs.LogGroup(self, "CleanupLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=removal_policy)
        log_group.grant_write(role)
        # CDK's framework functions, with roles that carry no managed policy (two: one role for
        # both would make the waiter state machine and its functions depend on each other).
        framework_role, waiter_role = (
            iam.Role(
                self,
                construct_id,
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"Runs CDK's custom-resource framework ({what}) for the Studio cleanup",
            )
            for construct_id, what in (("CleanupFrameworkRole", "on event"), ("CleanupWaiterRole", "is complete, timeout"))
        )
        log_group.grant_write(framework_role)
        log_group.grant_write(waiter_role)
        handlers = {}
        for name in ("on_event", "is_complete"):
            handlers[name] = lambda_.Function(
                self,
                f"Cleanup{name.title().replace('_', '')}",
                runtime=lambda_.Runtime.PYTHON_3_14,
                handler=f"index.{name}",
                code=lambda_.Code.from_asset(str(CLEANUP_HANDLER_DIR)),
                role=role,
                timeout=cdk.Duration.minutes(5),
                log_group=log_group,
            )
        provider = cr.Provider(
            self,
            "CleanupProvider",
            on_event_handler=handlers["on_event"],
            is_complete_handler=handlers["is_complete"],
            query_interval=cdk.Duration.seconds(30),
            # CloudFormation waits at most an hour for a custom resource.
            total_timeout=cdk.Duration.minutes(55),
            framework_on_event_role=framework_role,
            framework_complete_and_timeout_role=waiter_role,
            log_group=log_group,
        )
        cleanup = cdk.CustomResource(
            self,
            "Cleanup",
            service_token=provider.service_token,
            properties={"DomainId": self.domain_id, "DeleteHomeEfs": "true" if delete_home_efs else "false"},
        )
        # Depending on them means CloudFormation deletes the cleanup first, then profiles and spaces.
        for resource in [*self.user_profiles.values(), *self.spaces.values()]:
            cleanup.node.add_dependency(resource)
        # One guard per profile and space: removing a person or a space from the configuration deletes its
        # guard first (it depends on the profile/space), which deletes the apps (and a person's private
        # spaces) SageMaker would otherwise refuse to delete the profile or space with.
        guarded = [("User", name, {"UserProfileName": p.user_profile_name}, p) for name, p in self.user_profiles.items()]
        guarded += [("Space", name, {"SpaceName": space.space_name}, space) for name, space in self.spaces.items()]
        self.guards = {}
        for kind, name, identity, resource in guarded:
            guard = cdk.CustomResource(
                self, f"Cleanup{kind}-{name}", service_token=provider.service_token, properties={"DomainId": self.domain_id, **identity}
            )
            guard.node.add_dependency(resource)
            self.guards[(kind.lower(), name)] = guard
        reason = (
            "Cleanup handlers of the Studio domain: SageMaker names apps and spaces at run time, and "
            "ListApps/ListSpaces have no resource-level permissions"
        )
        acknowledge_wildcards(role, resources=[*domain_resources, "*"], reason=reason)
        self._acknowledge_provider_framework(provider, framework_role, waiter_role, handlers.values())
        return cleanup

    @staticmethod
    def _acknowledge_provider_framework(provider: cr.Provider, framework_role: iam.Role, waiter_role: iam.Role, handlers) -> None:
        """CDK's custom-resource framework (its Lambdas and waiter state machine) as CDK builds it."""
        reason = (
            "CDK's custom-resource Provider framework, used only to run the Studio cleanup at stack delete: "
            "its own functions use the basic Lambda execution policy and the Node runtime CDK ships, may invoke "
            "any version of the two cleanup handlers, and its waiter state machine only polls is_complete"
        )
        findings = ["AwsSolutions-SF1", "AwsSolutions-SF2"]
        stack = cdk.Stack.of(provider)

        def invoke_finding(function) -> str:
            return f"AwsSolutions-IAM5[Resource::<{stack.resolve(stack.get_logical_id(function.node.default_child))}.Arn>:*]"

        framework_functions = [provider.node.find_child("framework-isComplete"), provider.node.find_child("framework-onTimeout")]
        # The waiter state machine (inside the provider) invokes the framework's functions.
        for finding in findings + [invoke_finding(f) for f in framework_functions]:
            acknowledge(provider, finding, reason)
        # The framework functions invoke any version of the handlers.
        for role in (framework_role, waiter_role):
            for function in handlers:
                acknowledge(role, invoke_finding(function), reason)
        # CDK adds DependsOn on each function's role next to the GetAtt that already orders them.
        for child in [*provider.node.find_all(), *(h.node.default_child for h in handlers)]:
            if isinstance(child, cdk.CfnResource) and child.cfn_resource_type in (
                "AWS::Lambda::Function",
                "AWS::StepFunctions::StateMachine",
            ):
                child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})


def _idle_shutdown(minutes: int) -> dict:
    # Users may shorten the timeout, not lengthen it past the platform's setting.
    return {
        "idleSettings": {
            "lifecycleManagement": "ENABLED",
            "idleTimeoutInMinutes": minutes,
            "minIdleTimeoutInMinutes": 60,
            "maxIdleTimeoutInMinutes": minutes,
        }
    }
