"""Custom-resource handler that empties a SageMaker Studio domain before CloudFormation deletes it.

Runs under the CDK custom-resource Provider framework (``aws_cdk.custom_resources.Provider``):

* ``on_event``   - Create/Update: nothing to do but validate the properties. Delete: request deletion of every
  live app of the domain.
* ``is_complete`` - polled by the framework until it returns ``{"IsComplete": True}`` (or the Provider's total
  timeout expires, which the framework reports to CloudFormation as FAILED). On Delete it
  1. lists the domain's apps, (re-)requests deletion of any app that is not Deleted/Deleting and answers
     ``False`` while any app is not yet Deleted;
  2. only then lists the spaces, requests deletion of any space that is not already Deleting and answers
     ``False`` while any space remains;
  3. by default answers ``True`` when neither apps nor spaces remain, so CloudFormation can delete the user
     profiles and the domain (which depend on this resource and are therefore deleted after it). SageMaker
     then RETAINS the domain's home EFS file system (CloudFormation's domain delete uses the default
     retention).

Home-EFS deletion mode
----------------------
With the resource property ``"DeleteHomeEfs": "true"`` (a string, as CloudFormation passes every property;
``"true"``/``"false"`` in any case, absent = ``"false"``; any other value is rejected on Create/Update/Delete)
step 3 is replaced by:

  3. once apps and spaces are gone, list the user profiles (``ListUserProfiles``, every page), request deletion
     of every profile that is not already Deleting and answer ``False`` while any profile remains;
  4. then delete the domain itself with ``RetentionPolicy={"HomeEfsFileSystem": "Delete"}``, so SageMaker
     deletes the home EFS with it. Each poll first calls ``DescribeDomain``: ``ResourceNotFound`` = gone,
     answer ``True``; ``Deleting`` = wait (``False``, no new delete request); ``Delete_Failed`` = raise, naming
     the domain and its ``FailureReason``; any other status = request ``DeleteDomain`` (normally once, as the
     domain is Deleting from then on) and answer ``False``.

  ``True`` is answered only when the domain is gone. CloudFormation then deletes the user-profile and domain
  resources, which are already gone; its handlers treat that as a successful delete. This mode deletes every
  user's files irrevocably: it is meant for disposable (dev/test) domains.

Status handling
---------------
Apps:   ``Deleted`` = gone. ``Deleting`` = wait. ``InService``/``Pending``/``Failed`` = live: deletion is
        (re-)requested on every poll and the poll answers ``False``. A ``Failed`` app is therefore retried, not
        skipped (a Failed app still blocks deleting its user profile/space) and never counted as gone. If
        SageMaker refuses that request with any error other than ``ResourceNotFound``/``ResourceInUse`` the
        handler raises, and the framework reports FAILED. An app that keeps returning to ``Failed`` is retried
        until the Provider's total timeout, which also ends in FAILED - never in a false success.
Spaces: not listed = gone. ``Deleting`` = wait. Every other status (``InService``, ``Pending``, ``Updating``,
        ``Failed``, ``Update_Failed``, ``Delete_Failed``) = deletion (re-)requested, poll answers ``False``.
Profiles (home-EFS mode only): as spaces - not listed = gone, ``Deleting`` = wait, any other status = deletion
        (re-)requested.
Domain (home-EFS mode only): see step 4 above.

Errors
------
* ``ResourceNotFound`` from a delete call: the app/space/profile/domain is already gone - ignored.
* ``ResourceNotFound`` from a list call or from ``DescribeDomain``: the domain no longer exists - nothing left
  to clean.
* ``ResourceInUse`` from a delete call: SageMaker cannot delete it *yet* (e.g. an app still Pending, or a
  space/profile whose apps are not fully gone in an eventually consistent read). Logged, and the resource is
  still counted as remaining, so the poll answers ``False`` and the deletion is retried on the next poll.
* Any other ``ClientError`` (AccessDenied, Throttling after botocore's retries, Validation...) is raised as
  :class:`StudioCleanupError` naming the domain and the app/space/profile, so the framework reports FAILED.

One person, one space
---------------------
With ``"UserProfileName": <name>`` or ``"SpaceName": <name>`` among the properties the resource guards that
one profile or space only, so removing a person or a space from the configuration works while the domain
stays (CloudFormation deletes the resource, which depends on the profile/space, first):

* user profile: Delete requests deletion of the user's apps, then of the apps of every space the user owns
  (their private spaces), then of those spaces; ``is_complete`` answers ``True`` once none remains, and
  CloudFormation deletes the profile;
* space: Delete requests deletion of the space's apps; ``True`` once none remains, and CloudFormation
  deletes the space.

The physical id names the domain and the profile/space, so a new name (a space replaced for a new owner)
is a new physical id: CloudFormation then deletes the old one, with the old name, after the update.

Only the standard library and boto3/botocore are used (Python 3.12+ Lambda runtime).
"""

from __future__ import annotations

from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

PHYSICAL_ID_PREFIX = "studio-cleanup-"

APP_GONE = "Deleted"
IN_PROGRESS = "Deleting"
DOMAIN_DELETE_FAILED = "Delete_Failed"

DELETE_HOME_EFS = "DeleteHomeEfs"
USER_PROFILE = "UserProfileName"
SPACE = "SpaceName"
DELETE_EFS_RETENTION = {"HomeEfsFileSystem": "Delete"}

NOT_FOUND = "ResourceNotFound"
IN_USE = "ResourceInUse"

_CLIENT = None


class StudioCleanupError(RuntimeError):
    """Cleanup could not be done; raised so the Provider framework reports FAILED to CloudFormation."""


def _client():
    """The SageMaker client, created on first use (never at import time). Tests replace this function."""
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = boto3.client("sagemaker", config=Config(retries={"mode": "standard", "max_attempts": 10}))
    return _CLIENT


# --------------------------------------------------------------------------------------------------- handlers


def on_event(event: dict, context: Any = None) -> dict:
    request_type = event["RequestType"]
    domain_id = _domain_id(event)
    delete_home_efs = _delete_home_efs(event)  # validated on every request, so a bad value fails the deploy
    scope = _scope(event)
    if request_type in ("Create", "Update"):
        suffix = f"/{scope[0]}/{scope[1]}" if scope else ""
        return {"PhysicalResourceId": f"{PHYSICAL_ID_PREFIX}{domain_id}{suffix}"}
    if request_type == "Delete" and scope:
        kind, name = scope
        print(f"[{domain_id}] Delete of {kind} {name}: requesting deletion of its apps")
        _delete_apps(domain_id, **_owner_filter(kind, name))
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    if request_type == "Delete":
        mode = "profiles and domain follow, home EFS deleted" if delete_home_efs else "home EFS retained"
        print(f"[{domain_id}] Delete ({mode}): requesting deletion of the domain's apps")
        remaining = _delete_apps(domain_id)
        print(f"[{domain_id}] {len(remaining)} app(s) not yet Deleted; spaces follow once they are gone")
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    raise StudioCleanupError(f"[{domain_id}] unknown RequestType {request_type!r}")


def is_complete(event: dict, context: Any = None) -> dict:
    request_type = event["RequestType"]
    if request_type in ("Create", "Update"):
        return {"IsComplete": True}
    if request_type != "Delete":
        raise StudioCleanupError(f"[{_domain_id(event)}] unknown RequestType {request_type!r}")

    domain_id = _domain_id(event)
    delete_home_efs = _delete_home_efs(event)
    scope = _scope(event)
    if scope:
        return {"IsComplete": _clean_one(domain_id, *scope)}
    apps = _delete_apps(domain_id)
    if apps:
        print(f"[{domain_id}] waiting for {len(apps)} app(s): {', '.join(apps)}")
        return {"IsComplete": False}

    spaces = _delete_spaces(domain_id)
    if spaces:
        print(f"[{domain_id}] no apps left; waiting for {len(spaces)} space(s): {', '.join(spaces)}")
        return {"IsComplete": False}

    if not delete_home_efs:
        print(f"[{domain_id}] no apps and no spaces left: the domain can be deleted")
        return {"IsComplete": True}

    profiles = _delete_user_profiles(domain_id)
    if profiles:
        print(f"[{domain_id}] no apps or spaces left; waiting for {len(profiles)} profile(s): {', '.join(profiles)}")
        return {"IsComplete": False}

    return {"IsComplete": _delete_domain(domain_id)}


# --------------------------------------------------------------------------------------------------- one person, one space


def _clean_one(domain_id: str, kind: str, name: str) -> bool:
    """Apps of one user or space (and, for a user, the spaces it owns); True once nothing of it remains."""
    apps = _delete_apps(domain_id, **_owner_filter(kind, name))
    if apps:
        print(f"[{domain_id}] waiting for {len(apps)} app(s) of {kind} {name}: {', '.join(apps)}")
        return False
    if kind == "space":
        print(f"[{domain_id}] no apps left in space {name}: it can be deleted")
        return True
    owned = [s for s in _list(domain_id, "list_spaces", "Spaces", "spaces") if _owner(s) == name]
    space_apps = [app for space in owned for app in _delete_apps(domain_id, SpaceNameEquals=space["SpaceName"])]
    if space_apps:
        print(f"[{domain_id}] waiting for {len(space_apps)} app(s) in spaces of user {name}: {', '.join(space_apps)}")
        return False
    spaces = _delete_each(
        domain_id, owned, kind="space", label=lambda space: space["SpaceName"],
        key=lambda space: {"DomainId": domain_id, "SpaceName": space["SpaceName"]}, delete=_client().delete_space,
    )  # fmt: skip
    if spaces:
        print(f"[{domain_id}] waiting for {len(spaces)} space(s) of user {name}: {', '.join(spaces)}")
        return False
    print(f"[{domain_id}] no apps or spaces of user {name} left: the profile can be deleted")
    return True


def _owner(space: dict) -> str | None:
    return (space.get("OwnershipSettingsSummary") or {}).get("OwnerUserProfileName")


def _owner_filter(kind: str, name: str) -> dict:
    return {"UserProfileNameEquals": name} if kind == "user" else {"SpaceNameEquals": name}


def _scope(event: dict) -> tuple[str, str] | None:
    """("user", name), ("space", name), or None for the whole domain."""
    properties = event.get("ResourceProperties", {})
    scopes = [(kind, properties[key]) for kind, key in (("user", USER_PROFILE), ("space", SPACE)) if properties.get(key)]
    if len(scopes) > 1:
        raise StudioCleanupError(f"[{properties.get('DomainId')}] set {USER_PROFILE} or {SPACE}, not both")
    return scopes[0] if scopes else None


# --------------------------------------------------------------------------------------------------- apps


def _delete_apps(domain_id: str, **owner: str) -> list[str]:
    """Request deletion of every live app (of one owner, when given); return labels of those not yet Deleted."""
    return _delete_each(
        domain_id,
        _list(domain_id, "list_apps", "Apps", "apps", **owner),
        kind="app",
        label=_app_label,
        key=lambda app: _app_key(domain_id, app),
        delete=_client().delete_app,
        gone=(APP_GONE,),
    )


def _app_key(domain_id: str, app: dict) -> dict:
    key = {"DomainId": domain_id, "AppType": app["AppType"], "AppName": app["AppName"]}
    # DeleteApp takes exactly one owner: the space for space apps, else the user profile.
    if app.get("SpaceName"):
        key["SpaceName"] = app["SpaceName"]
    else:
        key["UserProfileName"] = app["UserProfileName"]
    return key


def _app_label(app: dict) -> str:
    owner = f"space {app['SpaceName']}" if app.get("SpaceName") else f"user {app.get('UserProfileName')}"
    return f"{app.get('AppType')}/{app.get('AppName')} of {owner}"


# --------------------------------------------------------------------------------------------------- spaces


def _delete_spaces(domain_id: str) -> list[str]:
    """Request deletion of every space not already Deleting; return labels of the spaces that remain."""
    return _delete_each(
        domain_id,
        _list(domain_id, "list_spaces", "Spaces", "spaces"),
        kind="space",
        label=lambda space: space["SpaceName"],
        key=lambda space: {"DomainId": domain_id, "SpaceName": space["SpaceName"]},
        delete=_client().delete_space,
    )


# --------------------------------------------------------------------------------------------------- profiles


def _delete_user_profiles(domain_id: str) -> list[str]:
    """Request deletion of every user profile not already Deleting; return labels of the profiles that remain."""
    return _delete_each(
        domain_id,
        _list(domain_id, "list_user_profiles", "UserProfiles", "user profiles"),
        kind="user profile",
        label=lambda profile: profile["UserProfileName"],
        key=lambda profile: {"DomainId": domain_id, "UserProfileName": profile["UserProfileName"]},
        delete=_client().delete_user_profile,
    )


# --------------------------------------------------------------------------------------------------- domain


def _delete_domain(domain_id: str) -> bool:
    """Delete the domain with its home EFS; return True once the domain is gone."""
    try:
        domain = _client().describe_domain(DomainId=domain_id)
    except ClientError as err:
        if _code(err) == NOT_FOUND:
            print(f"[{domain_id}] domain and home EFS deleted")
            return True
        raise StudioCleanupError(f"[{domain_id}] could not describe domain {domain_id}: {err}") from err

    status = domain.get("Status")
    if status == IN_PROGRESS:
        print(f"[{domain_id}] waiting for the domain (Deleting, with its home EFS)")
        return False
    if status == DOMAIN_DELETE_FAILED:
        reason = domain.get("FailureReason") or "no FailureReason given"
        raise StudioCleanupError(f"[{domain_id}] deletion of domain {domain_id} failed (Delete_Failed): {reason}")

    print(f"[{domain_id}] no profiles left; deleting domain {domain_id} with its home EFS (was {status})")
    params = {"DomainId": domain_id, "RetentionPolicy": DELETE_EFS_RETENTION}
    return not _request(domain_id, f"domain {domain_id}", _client().delete_domain, **params)


# --------------------------------------------------------------------------------------------------- helpers


def _delete_home_efs(event: dict) -> bool:
    """The ``DeleteHomeEfs`` property: ``"true"``/``"false"`` (any case; CloudFormation passes strings), absent
    = ``False``. Anything else is an error rather than a guess, since ``True`` deletes every user's files."""
    value = event.get("ResourceProperties", {}).get(DELETE_HOME_EFS, "false")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise StudioCleanupError(
        f"[{event.get('ResourceProperties', {}).get('DomainId')}] ResourceProperties.{DELETE_HOME_EFS} must be "
        f'"true" or "false", not {value!r}'
    )


def _domain_id(event: dict) -> str:
    try:
        domain_id = event["ResourceProperties"]["DomainId"]
    except KeyError as err:
        raise StudioCleanupError("ResourceProperties.DomainId is missing from the custom-resource event") from err
    if not domain_id:
        raise StudioCleanupError("ResourceProperties.DomainId is empty")
    return domain_id


def _delete_each(
    domain_id: str,
    resources: list[dict],
    *,
    kind: str,
    label: Callable[[dict], str],
    key: Callable[[dict], dict],
    delete: Callable[..., Any],
    gone: tuple[str, ...] = (),
) -> list[str]:
    """Request deletion of each resource not gone or Deleting; return labels of those that remain.

    Apps report ``Deleted`` for a while after deletion (``gone``); spaces and profiles just disappear.
    """
    remaining = []
    for resource in resources:
        status = resource.get("Status")
        if status in gone:
            continue
        name = label(resource)
        if status == IN_PROGRESS:
            remaining.append(f"{name} (Deleting)")
            continue
        print(f"[{domain_id}] deleting {kind} {name} (was {status})")
        if _request(domain_id, f"{kind} {name}", delete, **key(resource)):
            remaining.append(f"{name} ({status} -> delete requested)")
    return remaining


def _list(domain_id: str, operation: str, key: str, what: str, **filters: str) -> list[dict]:
    """All items of a paginated List* call for the domain (every page is read before anything is deleted);
    an empty list if the domain no longer exists."""
    items: list[dict] = []
    kwargs: dict = {"DomainIdEquals": domain_id, **filters, "MaxResults": 100}
    while True:
        try:
            page = getattr(_client(), operation)(**kwargs)
        except ClientError as err:
            if _code(err) == NOT_FOUND:
                print(f"[{domain_id}] domain not found while listing {what}: nothing left to clean")
                return []
            raise StudioCleanupError(f"[{domain_id}] could not list the domain's {what}: {err}") from err
        items.extend(page.get(key, []))
        token = page.get("NextToken")
        if not token:
            return items
        kwargs["NextToken"] = token


def _request(domain_id: str, what: str, call: Callable[..., Any], **params: Any) -> bool:
    """Call a Delete* API. Return True if the resource still exists (deletion requested or not yet possible)."""
    try:
        call(**params)
        return True
    except ClientError as err:
        code = _code(err)
        if code == NOT_FOUND:
            print(f"[{domain_id}] {what} already gone")
            return False
        if code == IN_USE:
            print(f"[{domain_id}] {what} cannot be deleted yet ({err}); will retry")
            return True
        raise StudioCleanupError(f"[{domain_id}] could not delete {what}: {err}") from err


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")
