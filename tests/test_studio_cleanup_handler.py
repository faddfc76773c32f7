"""Unit tests of the Studio-cleanup custom-resource handler (Lambda asset, loaded from its file).

Every AWS answer comes from botocore's Stubber on a real SageMaker client, so no request leaves the process;
a call that was not stubbed, or stubbed with other parameters, fails the test.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.conftest import offline_client

HANDLER = Path(__file__).resolve().parent.parent / "ml_constructs" / "studio_cleanup_handler" / "index.py"
DOMAIN = "d-abc123xyz"
PHYSICAL_ID = f"studio-cleanup-{DOMAIN}"


def _load_handler():
    spec = importlib.util.spec_from_file_location("studio_cleanup_handler_index", HANDLER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler():
    """A fresh copy of the handler module (its client cache starts empty)."""
    return _load_handler()


@pytest.fixture
def stub(handler, monkeypatch):
    """A stubbed SageMaker client injected into the handler; every queued answer must be consumed."""
    client = offline_client("sagemaker")
    monkeypatch.setattr(handler, "_client", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def event(request_type: str, **extra) -> dict:
    ev = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:eu-west-1:111111111111:function:provider",
        "ResourceType": "Custom::StudioCleanup",
        "LogicalResourceId": "StudioCleanup",
        "RequestId": "req-1",
        "StackId": "arn:aws:cloudformation:eu-west-1:111111111111:stack/s/1",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:eu-west-1:111111111111:function:provider", "DomainId": DOMAIN},
    }
    if request_type != "Create":
        ev["PhysicalResourceId"] = PHYSICAL_ID
    ev.update(extra)
    return ev


# ------------------------------------------------------------------------------------------- stub helpers


def user_app(name: str, status: str, user: str = "alice", app_type: str = "JupyterServer") -> dict:
    return {"DomainId": DOMAIN, "UserProfileName": user, "AppType": app_type, "AppName": name, "Status": status}


def space_app(name: str, status: str, space: str = "team-space", app_type: str = "JupyterLab") -> dict:
    return {"DomainId": DOMAIN, "SpaceName": space, "AppType": app_type, "AppName": name, "Status": status}


def space(name: str, status: str) -> dict:
    return {"DomainId": DOMAIN, "SpaceName": name, "Status": status}


def expect_list(stubber: Stubber, operation: str, key: str, items: list[dict], token_in=None, token_out=None):
    params = {"DomainIdEquals": DOMAIN, "MaxResults": 100}
    if token_in:
        params["NextToken"] = token_in
    response = {key: items}
    if token_out:
        response["NextToken"] = token_out
    stubber.add_response(operation, response, params)


def expect_apps(stubber, apps, token_in=None, token_out=None):
    expect_list(stubber, "list_apps", "Apps", apps, token_in, token_out)


def expect_spaces(stubber, spaces, token_in=None, token_out=None):
    expect_list(stubber, "list_spaces", "Spaces", spaces, token_in, token_out)


def delete_app_params(app: dict) -> dict:
    params = {"DomainId": DOMAIN, "AppType": app["AppType"], "AppName": app["AppName"]}
    if "SpaceName" in app:
        params["SpaceName"] = app["SpaceName"]
    else:
        params["UserProfileName"] = app["UserProfileName"]
    return params


def expect_delete_app(stubber, app, error: str | None = None):
    if error:
        stubber.add_client_error("delete_app", error, f"{error} for {app['AppName']}", 400, delete_app_params(app))
    else:
        stubber.add_response("delete_app", {}, delete_app_params(app))


def expect_delete_space(stubber, name, error: str | None = None):
    params = {"DomainId": DOMAIN, "SpaceName": name}
    if error:
        stubber.add_client_error("delete_space", error, f"{error} for {name}", 400, params)
    else:
        stubber.add_response("delete_space", {}, params)


# ------------------------------------------------------------------------------------------- Create / Update


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_make_no_aws_call(handler, monkeypatch, request_type):
    def no_client():
        raise AssertionError("Create/Update must not touch AWS")

    monkeypatch.setattr(handler, "_client", no_client)
    assert handler.on_event(event(request_type), None) == {"PhysicalResourceId": PHYSICAL_ID}
    assert handler.is_complete(event(request_type), None) == {"IsComplete": True}


def test_no_client_is_created_at_import(handler):
    assert handler._CLIENT is None


def test_default_client_is_lazy_cached_and_retrying(handler, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    client = handler._client()
    assert client.meta.service_model.service_name == "sagemaker"
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries["mode"] == "standard"
    assert handler._client() is client


def test_missing_domain_id_is_an_error(handler):
    ev = event("Delete")
    del ev["ResourceProperties"]["DomainId"]
    with pytest.raises(handler.StudioCleanupError, match="DomainId"):
        handler.on_event(ev, None)


# ------------------------------------------------------------------------------------------- Delete: on_event


def test_on_event_delete_deletes_live_apps_across_pages(handler, stub, capsys):
    page1 = [
        user_app("default", "InService", app_type="JupyterServer"),
        user_app("datascience-1-0-ml-t3-medium", "Deleting", app_type="KernelGateway"),
        space_app("default", "InService", space="team-space"),
    ]
    page2 = [
        user_app("old", "Deleted", user="bob"),
        space_app("lab", "Pending", space="bob-private", app_type="JupyterLab"),
        user_app("broken", "Failed", user="bob", app_type="CodeEditor"),
    ]
    expect_apps(stub, page1, token_out="page-2")
    expect_apps(stub, page2, token_in="page-2")
    for app in (page1[0], page1[2], page2[1], page2[2]):  # not the Deleting or the Deleted one
        expect_delete_app(stub, app)

    assert handler.on_event(event("Delete"), None) == {"PhysicalResourceId": PHYSICAL_ID}
    out = capsys.readouterr().out
    assert "deleting app JupyterServer/default of user alice" in out
    assert "deleting app JupyterLab/default of space team-space" in out


def test_on_event_delete_sends_space_name_not_user_for_space_apps(handler, stub):
    # A private-space app may carry its owner too: DeleteApp must then name the space only.
    app = {**space_app("lab", "InService", space="alice-private"), "UserProfileName": "alice"}
    expect_apps(stub, [app])
    stub.add_response(
        "delete_app", {}, {"DomainId": DOMAIN, "SpaceName": "alice-private", "AppType": "JupyterLab", "AppName": "lab"}
    )
    assert handler.on_event(event("Delete"), None) == {"PhysicalResourceId": PHYSICAL_ID}


def test_on_event_delete_keeps_the_physical_id_it_is_given(handler, stub):
    expect_apps(stub, [])
    ev = event("Delete", PhysicalResourceId="some-older-id")
    assert handler.on_event(ev, None) == {"PhysicalResourceId": "some-older-id"}


def test_on_event_delete_of_a_domain_already_gone(handler, stub):
    stub.add_client_error("list_apps", "ResourceNotFound", "domain not found", 400, {"DomainIdEquals": DOMAIN, "MaxResults": 100})
    assert handler.on_event(event("Delete"), None) == {"PhysicalResourceId": PHYSICAL_ID}


def test_on_event_ignores_an_app_already_gone(handler, stub):
    app = user_app("default", "InService")
    expect_apps(stub, [app])
    expect_delete_app(stub, app, error="ResourceNotFound")
    assert handler.on_event(event("Delete"), None) == {"PhysicalResourceId": PHYSICAL_ID}


def test_on_event_access_denied_on_delete_app_escapes(handler, stub):
    app = user_app("default", "InService", user="alice")
    expect_apps(stub, [app])
    expect_delete_app(stub, app, error="AccessDeniedException")
    with pytest.raises(handler.StudioCleanupError) as caught:
        handler.on_event(event("Delete"), None)
    message = str(caught.value)
    assert DOMAIN in message and "default" in message and "alice" in message and "AccessDenied" in message
    assert isinstance(caught.value.__cause__, ClientError)


# ------------------------------------------------------------------------------------------- Delete: is_complete


def test_is_complete_waits_while_an_app_is_deleting_and_leaves_spaces_alone(handler, stub, capsys):
    expect_apps(stub, [user_app("default", "Deleting"), user_app("gone", "Deleted")])
    # No list_spaces is stubbed: any call to it would fail the test.
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": False}
    assert "waiting for 1 app(s): JupyterServer/default of user alice (Deleting)" in capsys.readouterr().out


def test_is_complete_requests_deletion_of_apps_still_live(handler, stub):
    live = user_app("default", "InService")
    expect_apps(stub, [live, user_app("gone", "Deleted")], token_out="t")
    expect_apps(stub, [space_app("default", "Pending")], token_in="t")
    expect_delete_app(stub, live)
    expect_delete_app(stub, space_app("default", "Pending"))
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": False}


def test_is_complete_deletes_spaces_once_all_apps_are_deleted(handler, stub, capsys):
    expect_apps(stub, [user_app("default", "Deleted")], token_out="a2")
    expect_apps(stub, [space_app("default", "Deleted")], token_in="a2")
    expect_spaces(stub, [space("team-space", "InService"), space("leaving", "Deleting")], token_out="s2")
    expect_spaces(stub, [space("alice-private", "InService")], token_in="s2")
    expect_delete_space(stub, "team-space")
    expect_delete_space(stub, "alice-private")
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": False}
    out = capsys.readouterr().out
    assert "deleting space team-space" in out and "waiting for 3 space(s)" in out


def test_is_complete_waits_while_spaces_are_deleting(handler, stub):
    expect_apps(stub, [])
    expect_spaces(stub, [space("team-space", "Deleting")])
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": False}


def test_is_complete_true_when_no_app_and_no_space_remain(handler, stub):
    expect_apps(stub, [user_app("default", "Deleted"), space_app("default", "Deleted")])
    expect_spaces(stub, [])
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": True}


def test_is_complete_true_for_a_domain_already_gone(handler, stub):
    not_found = {"DomainIdEquals": DOMAIN, "MaxResults": 100}
    stub.add_client_error("list_apps", "ResourceNotFound", "domain not found", 400, not_found)
    stub.add_client_error("list_spaces", "ResourceNotFound", "domain not found", 400, not_found)
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": True}


def test_is_complete_ignores_app_and_space_already_gone(handler, stub):
    app = user_app("default", "InService")
    expect_apps(stub, [app])
    expect_delete_app(stub, app, error="ResourceNotFound")
    expect_spaces(stub, [space("team-space", "InService")])
    expect_delete_space(stub, "team-space", error="ResourceNotFound")
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": True}


def test_is_complete_access_denied_on_delete_app_escapes(handler, stub):
    app = space_app("lab", "InService", space="team-space")
    expect_apps(stub, [app])
    expect_delete_app(stub, app, error="AccessDeniedException")
    with pytest.raises(handler.StudioCleanupError) as caught:
        handler.is_complete(event("Delete"), None)
    message = str(caught.value)
    assert DOMAIN in message and "lab" in message and "team-space" in message


def test_is_complete_access_denied_on_delete_space_escapes(handler, stub):
    expect_apps(stub, [])
    expect_spaces(stub, [space("team-space", "InService")])
    expect_delete_space(stub, "team-space", error="AccessDeniedException")
    with pytest.raises(handler.StudioCleanupError, match=rf"{DOMAIN}.*space team-space.*AccessDenied"):
        handler.is_complete(event("Delete"), None)


@pytest.mark.parametrize("operation", ["list_apps", "list_spaces"])
def test_throttling_on_list_escapes(handler, stub, operation):
    params = {"DomainIdEquals": DOMAIN, "MaxResults": 100}
    if operation == "list_spaces":
        expect_apps(stub, [])
    stub.add_client_error(operation, "ThrottlingException", "Rate exceeded", 400, params)
    with pytest.raises(handler.StudioCleanupError, match=rf"{DOMAIN}.*Throttling"):
        handler.is_complete(event("Delete"), None)


def test_resource_in_use_on_delete_means_wait_not_success(handler, stub):
    app = user_app("default", "Pending")
    expect_apps(stub, [app])
    expect_delete_app(stub, app, error="ResourceInUse")
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": False}

    expect_apps(stub, [])
    expect_spaces(stub, [space("team-space", "InService")])
    expect_delete_space(stub, "team-space", error="ResourceInUse")
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": False}


# ------------------------------------------------------------------------------------------- Failed states


def test_failed_app_is_deleted_again_and_blocks_spaces_until_deleted(handler, stub):
    failed = user_app("default", "Failed")
    expect_apps(stub, [failed])
    expect_delete_app(stub, failed)
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": False}  # no list_spaces yet

    expect_apps(stub, [user_app("default", "Deleted")])
    expect_spaces(stub, [])
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": True}


def test_failed_app_whose_deletion_is_refused_raises(handler, stub):
    failed = space_app("lab", "Failed", space="team-space")
    expect_apps(stub, [failed])
    expect_delete_app(stub, failed, error="ValidationException")
    with pytest.raises(handler.StudioCleanupError, match=rf"{DOMAIN}.*lab of space team-space.*ValidationException"):
        handler.is_complete(event("Delete"), None)


@pytest.mark.parametrize("status", ["Failed", "Delete_Failed", "Update_Failed", "Pending", "Updating"])
def test_spaces_in_other_states_are_deleted_again(handler, stub, status):
    expect_apps(stub, [])
    expect_spaces(stub, [space("team-space", status)])
    expect_delete_space(stub, "team-space")
    assert handler.is_complete(event("Delete"), None) == {"IsComplete": False}


# ------------------------------------------------------------------------------------------- home-EFS deletion mode

DOMAIN_OPS = {"ListUserProfiles", "DeleteUserProfile", "DescribeDomain", "DeleteDomain"}
NOT_FOUND_LIST = {"DomainIdEquals": DOMAIN, "MaxResults": 100}


@pytest.fixture
def calls(stub):
    """Names of the SageMaker operations the handler called, in order (recorded before the Stubber checks them)."""
    made: list[str] = []
    stub.client.meta.events.register("before-parameter-build.sagemaker", lambda model, **_: made.append(model.name))
    return made


def efs_event(request_type: str = "Delete", value="true") -> dict:
    ev = event(request_type)
    ev["ResourceProperties"]["DeleteHomeEfs"] = value
    return ev


def profile(name: str, status: str) -> dict:
    return {"DomainId": DOMAIN, "UserProfileName": name, "Status": status}


def expect_profiles(stubber, profiles, token_in=None, token_out=None):
    expect_list(stubber, "list_user_profiles", "UserProfiles", profiles, token_in, token_out)


def expect_delete_profile(stubber, name, error: str | None = None):
    params = {"DomainId": DOMAIN, "UserProfileName": name}
    if error:
        stubber.add_client_error("delete_user_profile", error, f"{error} for {name}", 400, params)
    else:
        stubber.add_response("delete_user_profile", {}, params)


def expect_describe_domain(stubber, status: str | None = None, error: str | None = None, failure_reason: str = ""):
    if error:
        stubber.add_client_error("describe_domain", error, f"{error} for {DOMAIN}", 400, {"DomainId": DOMAIN})
        return
    response = {"DomainId": DOMAIN, "Status": status}
    if failure_reason:
        response["FailureReason"] = failure_reason
    stubber.add_response("describe_domain", response, {"DomainId": DOMAIN})


def expect_delete_domain(stubber, error: str | None = None):
    params = {"DomainId": DOMAIN, "RetentionPolicy": {"HomeEfsFileSystem": "Delete"}}
    if error:
        stubber.add_client_error("delete_domain", error, f"{error} for {DOMAIN}", 400, params)
    else:
        stubber.add_response("delete_domain", {}, params)


def expect_empty_domain(stubber):
    """Apps, spaces and profiles all gone (the domain itself still exists)."""
    expect_apps(stubber, [user_app("default", "Deleted")])
    expect_spaces(stubber, [])
    expect_profiles(stubber, [])


@pytest.mark.parametrize("properties", [{}, {"DeleteHomeEfs": "false"}, {"DeleteHomeEfs": "False"}])
def test_default_mode_never_touches_profiles_or_the_domain(handler, stub, calls, properties):
    ev = event("Delete")
    ev["ResourceProperties"].update(properties)
    expect_apps(stub, [user_app("default", "Deleted")])
    expect_spaces(stub, [space("team-space", "InService")])
    expect_delete_space(stub, "team-space", error="ResourceNotFound")
    assert handler.is_complete(ev, None) == {"IsComplete": True}
    assert calls == ["ListApps", "ListSpaces", "DeleteSpace"]
    assert not DOMAIN_OPS & set(calls)


def test_default_mode_on_event_delete_deletes_apps_only(handler, stub, calls):
    app = user_app("default", "InService")
    expect_apps(stub, [app])
    expect_delete_app(stub, app)
    assert handler.on_event(efs_event(value="false"), None) == {"PhysicalResourceId": PHYSICAL_ID}
    assert calls == ["ListApps", "DeleteApp"]


def test_efs_mode_on_event_delete_still_deletes_apps_only(handler, stub, calls, capsys):
    app = user_app("default", "InService")
    expect_apps(stub, [app])
    expect_delete_app(stub, app)
    assert handler.on_event(efs_event(), None) == {"PhysicalResourceId": PHYSICAL_ID}
    assert calls == ["ListApps", "DeleteApp"]
    assert "home EFS deleted" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["true", "TRUE", " True ", True])
def test_delete_home_efs_accepts_true_in_any_case(handler, value):
    assert handler._delete_home_efs(efs_event(value=value)) is True


@pytest.mark.parametrize("request_type", ["Create", "Update", "Delete"])
@pytest.mark.parametrize("value", ["yes", "1", "", "retain", None])
def test_invalid_delete_home_efs_is_rejected_before_any_aws_call(handler, monkeypatch, request_type, value):
    def no_client():
        raise AssertionError("an invalid DeleteHomeEfs must be rejected before any AWS call")

    monkeypatch.setattr(handler, "_client", no_client)
    with pytest.raises(handler.StudioCleanupError, match=rf"{DOMAIN}.*DeleteHomeEfs"):
        handler.on_event(efs_event(request_type, value=value), None)
    if request_type == "Delete":
        with pytest.raises(handler.StudioCleanupError, match="DeleteHomeEfs"):
            handler.is_complete(efs_event(request_type, value=value), None)


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_efs_mode_create_and_update_make_no_aws_call(handler, monkeypatch, request_type):
    def no_client():
        raise AssertionError("Create/Update must not touch AWS")

    monkeypatch.setattr(handler, "_client", no_client)
    assert handler.on_event(efs_event(request_type), None) == {"PhysicalResourceId": PHYSICAL_ID}
    assert handler.is_complete(efs_event(request_type), None) == {"IsComplete": True}


def test_efs_mode_leaves_profiles_alone_while_apps_or_spaces_remain(handler, stub, calls):
    expect_apps(stub, [user_app("default", "Deleting")])
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}

    expect_apps(stub, [])
    expect_spaces(stub, [space("team-space", "Deleting")])
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}
    assert calls == ["ListApps", "ListApps", "ListSpaces"]


def test_efs_mode_deletes_profiles_across_pages_once_apps_and_spaces_are_gone(handler, stub, calls, capsys):
    expect_apps(stub, [user_app("default", "Deleted")])
    expect_spaces(stub, [])
    expect_profiles(stub, [profile("alice", "InService"), profile("bob", "Deleting")], token_out="p2")
    expect_profiles(stub, [profile("carol", "Failed"), profile("dave", "Delete_Failed")], token_in="p2")
    for name in ("alice", "carol", "dave"):  # not bob, already Deleting
        expect_delete_profile(stub, name)
    # No describe_domain / delete_domain is stubbed: the domain waits for its profiles.
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}
    assert calls == ["ListApps", "ListSpaces", "ListUserProfiles", "ListUserProfiles"] + ["DeleteUserProfile"] * 3
    out = capsys.readouterr().out
    assert "deleting user profile alice (was InService)" in out and "waiting for 4 profile(s)" in out


def test_efs_mode_waits_while_a_profile_is_deleting(handler, stub, calls):
    expect_apps(stub, [])
    expect_spaces(stub, [])
    expect_profiles(stub, [profile("alice", "Deleting")])
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}
    assert calls == ["ListApps", "ListSpaces", "ListUserProfiles"]


def test_efs_mode_profile_in_use_is_retried_not_counted_as_gone(handler, stub):
    expect_apps(stub, [])
    expect_spaces(stub, [])
    expect_profiles(stub, [profile("alice", "InService")])
    expect_delete_profile(stub, "alice", error="ResourceInUse")
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}


def test_efs_mode_profile_already_gone_lets_the_domain_be_deleted(handler, stub, calls):
    expect_apps(stub, [])
    expect_spaces(stub, [])
    expect_profiles(stub, [profile("alice", "InService")])
    expect_delete_profile(stub, "alice", error="ResourceNotFound")
    expect_describe_domain(stub, "InService")
    expect_delete_domain(stub)
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}
    assert calls[-2:] == ["DescribeDomain", "DeleteDomain"]


def test_efs_mode_access_denied_on_delete_profile_escapes(handler, stub):
    expect_apps(stub, [])
    expect_spaces(stub, [])
    expect_profiles(stub, [profile("alice", "InService")])
    expect_delete_profile(stub, "alice", error="AccessDeniedException")
    with pytest.raises(handler.StudioCleanupError, match=rf"{DOMAIN}.*user profile alice.*AccessDenied") as caught:
        handler.is_complete(efs_event(), None)
    assert isinstance(caught.value.__cause__, ClientError)


def test_efs_mode_throttling_on_list_profiles_escapes(handler, stub):
    expect_apps(stub, [])
    expect_spaces(stub, [])
    stub.add_client_error("list_user_profiles", "ThrottlingException", "Rate exceeded", 400, NOT_FOUND_LIST)
    with pytest.raises(handler.StudioCleanupError, match=rf"{DOMAIN}.*user profiles.*Throttling"):
        handler.is_complete(efs_event(), None)


def test_efs_mode_deletes_the_domain_with_its_efs_and_waits_until_it_is_gone(handler, stub, calls, capsys):
    # Poll 1: nothing left in the domain -> DeleteDomain with RetentionPolicy Delete, not complete yet.
    expect_empty_domain(stub)
    expect_describe_domain(stub, "InService")
    expect_delete_domain(stub)
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}
    assert "deleting domain d-abc123xyz with its home EFS (was InService)" in capsys.readouterr().out

    # Poll 2: Deleting -> wait, and no second DeleteDomain.
    expect_empty_domain(stub)
    expect_describe_domain(stub, "Deleting")
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}

    # Poll 3: the domain is gone (every call answers ResourceNotFound) -> complete.
    for operation in ("list_apps", "list_spaces", "list_user_profiles"):
        stub.add_client_error(operation, "ResourceNotFound", "domain not found", 400, NOT_FOUND_LIST)
    expect_describe_domain(stub, error="ResourceNotFound")
    assert handler.is_complete(efs_event(), None) == {"IsComplete": True}

    assert calls.count("DeleteDomain") == 1
    assert calls.index("DeleteDomain") > calls.index("ListUserProfiles")


def test_efs_mode_raises_when_the_domain_deletion_failed(handler, stub, calls):
    expect_empty_domain(stub)
    reason = "Unable to delete EFS fs-0123: mount target in use"
    expect_describe_domain(stub, "Delete_Failed", failure_reason=reason)
    with pytest.raises(handler.StudioCleanupError) as caught:
        handler.is_complete(efs_event(), None)
    message = str(caught.value)
    assert DOMAIN in message and "Delete_Failed" in message and reason in message
    assert "DeleteDomain" not in calls


def test_efs_mode_delete_failed_without_a_reason_still_raises(handler, stub):
    expect_empty_domain(stub)
    expect_describe_domain(stub, "Delete_Failed")
    with pytest.raises(handler.StudioCleanupError, match=rf"{DOMAIN}.*no FailureReason given"):
        handler.is_complete(efs_event(), None)


@pytest.mark.parametrize("status", ["Failed", "Update_Failed", "Pending", "Updating"])
def test_efs_mode_requests_deletion_of_a_domain_in_other_states(handler, stub, status):
    expect_empty_domain(stub)
    expect_describe_domain(stub, status)
    expect_delete_domain(stub)
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}


def test_efs_mode_domain_in_use_is_retried(handler, stub):
    expect_empty_domain(stub)
    expect_describe_domain(stub, "InService")
    expect_delete_domain(stub, error="ResourceInUse")
    assert handler.is_complete(efs_event(), None) == {"IsComplete": False}


def test_efs_mode_domain_gone_on_delete_is_complete(handler, stub):
    expect_empty_domain(stub)
    expect_describe_domain(stub, "InService")
    expect_delete_domain(stub, error="ResourceNotFound")
    assert handler.is_complete(efs_event(), None) == {"IsComplete": True}


@pytest.mark.parametrize("operation", ["describe_domain", "delete_domain"])
def test_efs_mode_access_denied_on_the_domain_escapes(handler, stub, operation):
    expect_empty_domain(stub)
    if operation == "describe_domain":
        expect_describe_domain(stub, error="AccessDeniedException")
    else:
        expect_describe_domain(stub, "InService")
        expect_delete_domain(stub, error="AccessDeniedException")
    with pytest.raises(handler.StudioCleanupError, match=rf"{DOMAIN}.*domain {DOMAIN}.*AccessDenied") as caught:
        handler.is_complete(efs_event(), None)
    assert isinstance(caught.value.__cause__, ClientError)


# ------------------------------------------------------------------------------------------- one person, one space


def scoped_event(request_type: str, **scope) -> dict:
    ev = event(request_type)
    ev["ResourceProperties"].update(scope)
    if request_type != "Create":
        name = scope.get("UserProfileName") or scope.get("SpaceName")
        ev["PhysicalResourceId"] = f"{PHYSICAL_ID}/{'user' if 'UserProfileName' in scope else 'space'}/{name}"
    return ev


def expect_owned_apps(stubber, apps, **owner):
    stubber.add_response("list_apps", {"Apps": apps}, {"DomainIdEquals": DOMAIN, **owner, "MaxResults": 100})


def owned_space(name: str, owner: str, status: str = "InService", sharing: str = "Private") -> dict:
    return {**space(name, status), "OwnershipSettingsSummary": {"OwnerUserProfileName": owner},
            "SpaceSharingSettingsSummary": {"SharingType": sharing}}  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "physical_id"),
    [({"UserProfileName": "bob"}, f"{PHYSICAL_ID}/user/bob"), ({"SpaceName": "team-space-0123456789"}, f"{PHYSICAL_ID}/space/team-space-0123456789")],
)
def test_a_guard_per_profile_or_space_names_it_in_its_physical_id(handler, monkeypatch, scope, physical_id):
    monkeypatch.setattr(handler, "_client", lambda: pytest.fail("no AWS call on Create/Update"))
    for request_type in ("Create", "Update"):
        assert handler.on_event(scoped_event(request_type, **scope)) == {"PhysicalResourceId": physical_id}
        assert handler.is_complete(scoped_event(request_type, **scope)) == {"IsComplete": True}


def test_a_space_replaced_for_a_new_owner_gets_a_new_physical_id_so_the_old_one_is_deleted(handler):
    updated = scoped_event("Update", SpaceName="team-space-new")
    updated["OldResourceProperties"] = {"DomainId": DOMAIN, "SpaceName": "team-space-old"}
    assert handler.on_event(updated)["PhysicalResourceId"] != f"{PHYSICAL_ID}/space/team-space-old"


def test_both_a_user_and_a_space_is_an_error(handler):
    with pytest.raises(handler.StudioCleanupError, match="not both"):
        handler.on_event(scoped_event("Create", UserProfileName="bob", SpaceName="s"))


def test_removing_a_person_deletes_only_their_apps_on_delete(handler, stub):
    apps = [user_app("default", "InService", user="bob"), user_app("lab", "Deleted", user="bob")]
    expect_owned_apps(stub, apps, UserProfileNameEquals="bob")
    expect_delete_app(stub, apps[0])
    ev = scoped_event("Delete", UserProfileName="bob")
    assert handler.on_event(ev) == {"PhysicalResourceId": ev["PhysicalResourceId"]}


def test_removed_person_waits_for_their_apps_before_touching_spaces(handler, stub):
    expect_owned_apps(stub, [user_app("default", "Deleting", user="bob")], UserProfileNameEquals="bob")
    assert handler.is_complete(scoped_event("Delete", UserProfileName="bob")) == {"IsComplete": False}


def test_removed_person_private_spaces_lose_their_apps_then_go(handler, stub):
    spaces = [owned_space("bob-private", "bob"), owned_space("alice-private", "alice")]
    ev = scoped_event("Delete", UserProfileName="bob")
    # Poll 1: no user apps; bob's space still has an app: only that app is deleted.
    expect_owned_apps(stub, [], UserProfileNameEquals="bob")
    expect_spaces(stub, spaces)
    app = space_app("lab", "InService", space="bob-private")
    expect_owned_apps(stub, [app], SpaceNameEquals="bob-private")
    expect_delete_app(stub, app)
    assert handler.is_complete(ev) == {"IsComplete": False}
    # Poll 2: the app is gone: bob's space (not alice's) is deleted.
    expect_owned_apps(stub, [], UserProfileNameEquals="bob")
    expect_spaces(stub, spaces)
    expect_owned_apps(stub, [{**app, "Status": "Deleted"}], SpaceNameEquals="bob-private")
    expect_delete_space(stub, "bob-private")
    assert handler.is_complete(ev) == {"IsComplete": False}
    # Poll 3: nothing of bob's left: CloudFormation may delete the profile.
    expect_owned_apps(stub, [], UserProfileNameEquals="bob")
    expect_spaces(stub, [spaces[1]])
    assert handler.is_complete(ev) == {"IsComplete": True}


def test_removed_space_waits_for_its_apps_and_leaves_the_space_to_cloudformation(handler, stub):
    ev = scoped_event("Delete", SpaceName="team-space-0123456789")
    app = space_app("lab", "InService", space="team-space-0123456789")
    expect_owned_apps(stub, [app], SpaceNameEquals="team-space-0123456789")
    expect_delete_app(stub, app)
    assert handler.is_complete(ev) == {"IsComplete": False}
    expect_owned_apps(stub, [{**app, "Status": "Deleted"}], SpaceNameEquals="team-space-0123456789")
    assert handler.is_complete(ev) == {"IsComplete": True}


def test_removed_person_access_denied_escapes(handler, stub):
    app = user_app("default", "InService", user="bob")
    expect_owned_apps(stub, [app], UserProfileNameEquals="bob")
    expect_delete_app(stub, app, error="AccessDeniedException")
    with pytest.raises(handler.StudioCleanupError, match="could not delete app"):
        handler.is_complete(scoped_event("Delete", UserProfileName="bob"))
