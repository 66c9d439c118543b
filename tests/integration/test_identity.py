"""Identity containment against moto's IAM: each action, the second run, dry run, protection and failures."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from state_machines import local

from responder.aws.iam import Iam
from responder.identity import contain, contain_all, keys_to_deactivate
from responder.journal import Journal
from responder.settings import DEFAULT_QUARANTINE_POLICY, Settings

SETTINGS = Settings(protected_principals=("arn:aws:iam::*:user/break-glass-*",))
INCIDENT = {"incidentId": "gd-1", "accountId": "123456789012", "region": "us-east-1", "partition": "aws",
            "cutoff": "2026-01-01T00:00:10Z", "dryRun": False}


@pytest.fixture
def iam():
    with local.aws():  # moto with the managed policies loaded once, lean
        yield boto3.client("iam", region_name="us-east-1")


def run(iam_client, identity, incident=INCIDENT, settings=SETTINGS, dry_run=False):
    return contain(identity, incident, iam_for=lambda j: Iam(iam_client, j), settings=settings, dry_run=dry_run)


def user_with_keys(iam, name="ci-deployer", keys=2, tags=()):
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags])
    return [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(keys)]


def revoke_doc(iam, user=None, role=None):
    if user:
        return iam.get_user_policy(UserName=user, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    return iam.get_role_policy(RoleName=role, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]


def test_user_is_quarantined_keys_deactivated_and_older_sessions_denied(iam):
    keys = user_with_keys(iam)
    result = run(iam, {"type": "IAMUser", "name": "ci-deployer", "accessKeyId": keys[0]})
    assert result["status"] == "contained"
    attached = [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"]]
    assert attached == [DEFAULT_QUARANTINE_POLICY]
    assert {k["Status"] for k in iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]} == {"Inactive"}
    doc = revoke_doc(iam, user="ci-deployer")
    assert doc["Statement"][0] == {"Effect": "Deny", "Action": ["*"], "Resource": ["*"],
                                   "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-01-01T00:00:10Z"}}}
    apis = [e["api"] for e in result["entries"] if e["status"] == "done"]
    assert apis == ["iam:AttachUserPolicy", "iam:UpdateAccessKey", "iam:UpdateAccessKey", "iam:PutUserPolicy"]
    assert all(e["requestId"] for e in result["entries"] if e["status"] == "done")


def test_keys_are_never_deleted(iam):
    keys = user_with_keys(iam)
    run(iam, {"type": "IAMUser", "name": "ci-deployer", "accessKeyId": keys[0]})
    assert sorted(k["AccessKeyId"] for k in iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]) == sorted(keys)


def test_second_run_changes_nothing(iam):
    keys = user_with_keys(iam)
    identity = {"type": "IAMUser", "name": "ci-deployer", "accessKeyId": keys[0]}
    run(iam, identity)
    before = revoke_doc(iam, user="ci-deployer")
    again = run(iam, identity)
    assert again["status"] == "already_contained"
    # quarantine policy, console access (no login profile), two keys, revoke: all read, nothing written
    assert [e["status"] for e in again["entries"]] == ["unchanged"] * 5
    assert revoke_doc(iam, user="ci-deployer") == before
    assert len(iam.list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"]) == 1


def test_a_later_incident_moves_the_cutoff_forward_but_never_back(iam):
    user_with_keys(iam, keys=0)
    identity = {"type": "IAMUser", "name": "ci-deployer"}
    run(iam, identity, incident={**INCIDENT, "cutoff": "2026-01-02T00:00:00Z"})
    older = run(iam, identity, incident={**INCIDENT, "cutoff": "2026-01-01T00:00:00Z"})
    assert revoke_doc(iam, user="ci-deployer")["Statement"][0]["Condition"]["DateLessThan"][
        "aws:TokenIssueTime"] == "2026-01-02T00:00:00Z"
    assert older["status"] == "already_contained"
    run(iam, identity, incident={**INCIDENT, "cutoff": "2026-01-03T00:00:00Z"})
    assert revoke_doc(iam, user="ci-deployer")["Statement"][0]["Condition"]["DateLessThan"][
        "aws:TokenIssueTime"] == "2026-01-03T00:00:00Z"


def test_named_key_scope_deactivates_only_the_finding_key(iam):
    keys = user_with_keys(iam)
    settings = Settings(key_scope="named")
    run(iam, {"type": "IAMUser", "name": "ci-deployer", "accessKeyId": keys[1]}, settings=settings)
    status = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]}
    assert status == {keys[0]: "Active", keys[1]: "Inactive"}


def test_key_choice():
    keys = [{"AccessKeyId": "AKIA1"}, {"AccessKeyId": "AKIA2"}]
    assert keys_to_deactivate(keys, "AKIA1", "all") == {"AKIA1", "AKIA2"}
    assert keys_to_deactivate(keys, "AKIA1", "named") == {"AKIA1"}
    # a temporary key (ASIA...) names no long-term key: every key may have minted it
    assert keys_to_deactivate(keys, "ASIAXYZ", "named") == {"AKIA1", "AKIA2"}


def test_dry_run_plans_every_call_and_changes_nothing(iam):
    keys = user_with_keys(iam)
    result = run(iam, {"type": "IAMUser", "name": "ci-deployer", "accessKeyId": keys[0]}, dry_run=True)
    assert result["status"] == "planned"
    assert [(e["api"], e["target"]) for e in result["entries"] if e["status"] == "planned"] == [
        ("iam:AttachUserPolicy", "arn:aws:iam::123456789012:user/ci-deployer"),
        ("iam:UpdateAccessKey", keys[0]), ("iam:UpdateAccessKey", keys[1]),
        ("iam:PutUserPolicy", "arn:aws:iam::123456789012:user/ci-deployer")]
    planned = [e for e in result["entries"] if e["status"] == "planned"]
    assert planned[1]["params"] == {"UserName": "ci-deployer", "AccessKeyId": keys[0], "Status": "Inactive"}
    assert iam.list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"] == []
    assert {k["Status"] for k in iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]} == {"Active"}
    assert iam.list_user_policies(UserName="ci-deployer")["PolicyNames"] == []


@pytest.mark.parametrize("name, tags, status", [
    ("break-glass-ops", (), "protected"),
    # a tag alone is a claim: without CloudTrail to show who set it and when, it is unverified (never contained)
    ("ops", (("ir:protected", "true"),), "protection_unverified"),
    ("ops", (("ir:protected", "TRUE"),), "protection_unverified"),
])
def test_protected_users_are_never_touched(iam, name, tags, status):
    user_with_keys(iam, name=name, tags=tags)
    result = run(iam, {"type": "IAMUser", "name": name})
    assert result["status"] == status and result["reason"]
    assert iam.list_attached_user_policies(UserName=name)["AttachedPolicies"] == []
    assert {k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]} == {"Active"}


def test_unreadable_tags_fail_closed(iam):
    user_with_keys(iam)

    class NoTags(Iam):
        def get_user(self, name):
            user = super().get_user(name)
            user.pop("Tags", None)
            return user

        def user_tags(self, name):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListUserTags")

    result = contain({"type": "IAMUser", "name": "ci-deployer"}, INCIDENT, iam_for=lambda j: NoTags(iam, j),
                     settings=SETTINGS, dry_run=False)
    assert result["status"] == "protection_unverified"
    assert iam.list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"] == []


def test_missing_user_is_a_clean_not_found(iam):
    result = run(iam, {"type": "IAMUser", "name": "gone"})
    assert result["status"] == "not_found" and result["entries"][0]["status"] == "not_found"


def test_role_sessions_are_revoked(iam):
    iam.create_role(RoleName="app-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    result = run(iam, {"type": "AssumedRole", "name": "app-role"})
    assert result["status"] == "contained"
    assert revoke_doc(iam, role="app-role")["Statement"][0]["Condition"]["DateLessThan"] == {
        "aws:TokenIssueTime": "2026-01-01T00:00:10Z"}
    assert run(iam, {"type": "AssumedRole", "name": "app-role"})["status"] == "already_contained"


@pytest.mark.parametrize("name, path", [
    ("AWSReservedSSO_Admin_0123456789abcdef", "/aws-reserved/sso.amazonaws.com/"),
    ("AWSServiceRoleForECS", "/aws-service-role/ecs.amazonaws.com/"),
])
def test_roles_iam_cannot_change_get_manual_steps(iam, name, path):
    iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument="{}")
    result = run(iam, {"type": "AssumedRole", "name": name})
    assert result["status"] == "manual" and result["manualSteps"]
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []


def test_the_responders_own_roles_are_protected(iam):
    iam.create_role(RoleName="ir-responder-member", AssumeRolePolicyDocument="{}")
    result = run(iam, {"type": "AssumedRole", "name": "ir-responder-member"})
    assert result["status"] == "protected"
    assert iam.list_role_policies(RoleName="ir-responder-member")["PolicyNames"] == []


@pytest.mark.parametrize("kind", ["Root", "FederatedUser", "AWSService"])
def test_identities_iam_cannot_contain_get_manual_steps(iam, kind):
    result = run(iam, {"type": kind, "name": "x"})
    assert result["status"] == "manual" and result["manualSteps"]


def test_access_denied_fails_that_step_and_the_others_still_run(iam):
    keys = user_with_keys(iam)

    class Denied(Iam):
        def attach_user_policy(self, user, policy_arn, *, target):
            self._j.call(self._c, "attach_user_policy", target=target, UserName=user,
                         PolicyArn="arn:aws:iam::aws:policy/DoesNotExist")

    result = contain({"type": "IAMUser", "name": "ci-deployer", "accessKeyId": keys[0]}, INCIDENT,
                     iam_for=lambda j: Denied(iam, j), settings=SETTINGS, dry_run=False)
    assert result["status"] == "failed"
    failed = [e for e in result["entries"] if e["status"] == "failed"]
    assert failed[0]["step"] == "attach_quarantine_policy" and failed[0]["error"] == "NoSuchEntity"
    # later steps still ran: keys inactive, sessions revoked
    assert {k["Status"] for k in iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]} == {"Inactive"}
    assert revoke_doc(iam, user="ci-deployer")


@pytest.mark.parametrize("code", ["LimitExceeded", "AccessDenied"])
def test_a_refused_quarantine_policy_is_replaced_by_an_inline_deny_all(iam, code):
    keys = user_with_keys(iam)

    class Refused(Iam):
        def attach_user_policy(self, user, policy_arn, *, target):
            from unittest import mock

            error = ClientError({"Error": {"Code": code, "Message": "refused"}}, "AttachUserPolicy")
            with mock.patch.object(self._c, "attach_user_policy", side_effect=error):
                self._j.call(self._c, "attach_user_policy", target=target, UserName=user, PolicyArn=policy_arn)

    result = contain({"type": "IAMUser", "name": "ci-deployer", "accessKeyId": keys[0]}, INCIDENT,
                     iam_for=lambda j: Refused(iam, j), settings=SETTINGS, dry_run=False)
    assert result["status"] == "contained" and code in result["denyAll"]
    assert [e["status"] for e in result["entries"] if e["step"] == "attach_quarantine_policy"] == ["refused"]
    doc = iam.get_user_policy(UserName="ci-deployer", PolicyName="ir-quarantine-deny-all")["PolicyDocument"]
    assert doc["Statement"] == [{"Sid": "IrQuarantineDenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"}]
    again = contain({"type": "IAMUser", "name": "ci-deployer", "accessKeyId": keys[0]}, INCIDENT,
                    iam_for=lambda j: Refused(iam, j), settings=SETTINGS, dry_run=False)
    assert again["status"] == "already_contained"


def test_throttling_is_raised_for_step_functions_to_retry(iam):
    from responder.errors import TransientAwsError
    user_with_keys(iam)

    class Throttled(Iam):
        def access_keys(self, name):
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "ListAccessKeys")

    with pytest.raises(TransientAwsError):
        contain_all({**INCIDENT, "identities": [{"type": "IAMUser", "name": "ci-deployer"}]},
                    iam_for=lambda j: Throttled(iam, j), settings=SETTINGS)


def test_one_failing_identity_does_not_stop_the_others(iam):
    iam.create_role(RoleName="app-role", AssumeRolePolicyDocument="{}")

    class Broken(Iam):
        def get_user(self, name):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetUser")

    out = contain_all({**INCIDENT, "identities": [{"type": "IAMUser", "name": "u"},
                                                   {"type": "AssumedRole", "name": "app-role"}]},
                      iam_for=lambda j: Broken(iam, j), settings=SETTINGS)
    assert [r["status"] for r in out["identities"]] == ["failed", "contained"]
    assert out["status"] == "failed"
