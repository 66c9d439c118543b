"""Following the attacker's pivots against moto (responder.pivots): each is verified in IAM / KMS and passes the
protection gate before anything changes; refusals become manual steps with the exact command."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from unittest import mock

import boto3
import uuid

import pytest
from botocore.exceptions import ClientError

from state_machines import local

from responder import pivots
from responder.aws.iam import Iam
from responder.aws.kms import KeyGrants
from responder.identity import Trail
from responder.settings import Settings

ACCOUNT, REGION = "123456789012", "us-east-1"
SETTINGS = Settings(protected_principals=("arn:aws:iam::*:user/break-glass-*", "arn:aws:iam::*:role/BreakGlass*"))
NOW = datetime.now(timezone.utc)
INCIDENT = {"incidentId": "gd-1", "accountId": ACCOUNT, "region": REGION, "partition": "aws",
            "cutoff": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "dryRun": False}


@pytest.fixture(scope="module")
def aws():
    with local.aws(region=REGION):  # one in-memory AWS for the module: every test names its own principals
        yield {"iam": boto3.client("iam", region_name=REGION), "kms": boto3.client("kms", region_name=REGION)}


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def follow(aws, pivot, *, dry_run=False, kms=None):
    incident = dict(INCIDENT, dryRun=dry_run)
    return pivots.follow(dict({"eventId": "ev-1", "eventTime": INCIDENT["cutoff"], "account": ACCOUNT}, **pivot),
                         incident, iam_for=lambda j: Iam(aws["iam"], j),
                         kms_for=lambda region, j: KeyGrants(kms or aws["kms"], j), settings=SETTINGS,
                         trail=Trail(None, incident), dry_run=dry_run)


def minted_key(aws, user):
    aws["iam"].create_user(UserName=user)
    return aws["iam"].create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]


def status(aws, user, key):
    return next(k["Status"] for k in aws["iam"].list_access_keys(UserName=user)["AccessKeyMetadata"]
                if k["AccessKeyId"] == key)


def test_a_created_key_is_deactivated_and_a_second_run_changes_nothing(aws):
    user = uid("deployer")
    key = minted_key(aws, user)
    pivot = {"kind": "created_key", "target": key, "userName": user, "eventName": "CreateAccessKey"}
    first = follow(aws, pivot)
    assert first["status"] == "contained" and first["action"] == "deactivated" and first["eventId"] == "ev-1"
    assert status(aws, user, key) == "Inactive"
    again = follow(aws, pivot)
    assert again["status"] == "already_contained" and not [e for e in again["entries"] if e["status"] == "done"]


def test_dry_run_plans_the_deactivation_and_changes_nothing(aws):
    user = uid("deployer")
    key = minted_key(aws, user)
    result = follow(aws, {"kind": "created_key", "target": key, "userName": user}, dry_run=True)
    assert result["status"] == "planned"
    assert [(e["api"], e["params"]["AccessKeyId"]) for e in result["entries"] if e["status"] == "planned"] == [
        ("iam:UpdateAccessKey", key)]
    assert status(aws, user, key) == "Active"


def test_a_key_created_for_a_protected_user_is_a_manual_step(aws):
    user = uid("break-glass-admin")
    key = minted_key(aws, user)
    result = follow(aws, {"kind": "created_key", "target": key, "userName": user})
    assert result["status"] == "protected"
    assert result["command"] == f"aws iam update-access-key --user-name {user} --access-key-id {key} --status Inactive"
    assert status(aws, user, key) == "Active"


def test_a_key_not_created_at_the_events_time_is_not_touched(aws):
    """A record naming a key that existed long before (a forged or replayed record) is not the attacker's key."""
    user = uid("deployer")
    key = minted_key(aws, user)
    old = (NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = follow(aws, {"kind": "created_key", "target": key, "userName": user, "eventTime": old})
    assert result["status"] == "not_verified" and status(aws, user, key) == "Active"


def test_an_assumed_role_gets_its_older_sessions_revoked_only_if_it_is_the_same_role(aws):
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},' \
            '"Action":"sts:AssumeRole"}]}'
    name = uid("app")
    role = aws["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
    pivot = {"kind": "assumed_role", "target": role["Arn"], "roleName": name, "roleId": "AROADIFFERENTROLE0001"}
    result = follow(aws, pivot)  # the role of that name now is another role (deleted and re-created)
    assert result["status"] == "not_verified"
    assert aws["iam"].list_role_policies(RoleName=name)["PolicyNames"] == []
    result = follow(aws, dict(pivot, roleId=role["RoleId"]))
    assert result["status"] == "contained" and result["action"] == "older sessions revoked"
    assert aws["iam"].list_role_policies(RoleName=name)["PolicyNames"] == ["AWSRevokeOlderSessions"]


def test_the_responders_own_role_and_a_protected_role_are_never_touched(aws):
    trust = '{"Version":"2012-10-17","Statement":[]}'
    for name in (SETTINGS.member_role_name, uid("BreakGlassAdmin")):
        role = aws["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
        result = follow(aws, {"kind": "assumed_role", "target": role["Arn"], "roleName": name,
                              "roleId": role["RoleId"]})
        assert result["status"] == "protected", result
        assert aws["iam"].list_role_policies(RoleName=name)["PolicyNames"] == []


def test_a_role_of_another_account_is_a_manual_step_with_the_command(aws):
    result = follow(aws, {"kind": "assumed_role", "target": "arn:aws:iam::999988887777:role/admin",
                          "roleName": "admin", "roleId": "AROAX", "account": "999988887777"})
    assert result["status"] == "manual"
    assert result["command"].startswith("aws iam put-role-policy --role-name admin --policy-name "
                                        "AWSRevokeOlderSessions")


def grant(aws, grantee="arn:aws:iam::111122223333:root"):
    key = aws["kms"].create_key()["KeyMetadata"]
    grant_id = aws["kms"].create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Decrypt"])["GrantId"]
    return key["Arn"], grant_id, {"kind": "kms_grant", "target": f"{key['Arn']}/grant/{grant_id}",
                                  "keyArn": key["Arn"], "grantId": grant_id, "grantee": grantee, "region": REGION}


def grant_ids(aws, key):
    return {g["GrantId"] for g in aws["kms"].list_grants(KeyId=key)["Grants"]}


def test_a_grant_is_revoked_and_a_second_run_finds_it_gone(aws):
    key, grant_id, pivot = grant(aws)
    assert follow(aws, pivot)["status"] == "contained"
    assert grant_id not in grant_ids(aws, key)
    assert follow(aws, pivot)["status"] == "already_contained"


def test_a_grant_the_key_policy_will_not_let_the_member_role_revoke_is_a_manual_step(aws):
    key, grant_id, pivot = grant(aws)
    refused = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "RevokeGrant")
    with mock.patch.object(aws["kms"], "revoke_grant", side_effect=refused):
        result = follow(aws, pivot)
    assert result["status"] == "manual"
    assert result["command"] == f"aws kms revoke-grant --key-id {key} --grant-id {grant_id} --region {REGION}"
    assert grant_id in grant_ids(aws, key)
    assert [e["status"] for e in result["entries"]][:1] == ["refused"]


def test_a_grant_for_another_grantee_than_the_record_says_is_not_touched(aws):
    key, grant_id, pivot = grant(aws)
    result = follow(aws, dict(pivot, grantee="arn:aws:iam::111122223333:user/someone-else"))
    assert result["status"] == "not_verified" and grant_id in grant_ids(aws, key)


def test_a_login_profile_is_removed_and_an_mfa_device_is_a_manual_step(aws):
    bob = uid("bob")
    aws["iam"].create_user(UserName=bob)
    aws["iam"].create_login_profile(UserName=bob, Password="Attacker-Chose-1!")
    pivot = {"kind": "login_profile", "target": f"arn:aws:iam::{ACCOUNT}:user/{bob}", "userName": bob,
             "eventName": "UpdateLoginProfile"}
    assert follow(aws, pivot)["status"] == "contained"
    with pytest.raises(ClientError):
        aws["iam"].get_login_profile(UserName=bob)
    assert follow(aws, pivot)["status"] == "already_contained"
    serial = aws["iam"].create_virtual_mfa_device(VirtualMFADeviceName=bob)["VirtualMFADevice"]["SerialNumber"]
    aws["iam"].enable_mfa_device(UserName=bob, SerialNumber=serial, AuthenticationCode1="123456",
                                 AuthenticationCode2="654321")
    result = follow(aws, {"kind": "mfa_device", "target": serial, "userName": bob})
    assert result["status"] == "manual"
    assert result["command"] == f"aws iam deactivate-mfa-device --user-name {bob} --serial-number {serial}"
    assert aws["iam"].list_mfa_devices(UserName=bob)["MFADevices"]


def test_a_user_the_attacker_created_under_a_protected_name_is_still_quarantined(aws):
    """The attacker names what it creates: a protected pattern does not protect a user it created in the window."""
    name = uid("break-glass-backdoor")
    user = aws["iam"].create_user(UserName=name)["User"]
    result = follow(aws, {"kind": "created_user", "target": user["Arn"], "userName": name, "userId": user["UserId"],
                          "eventName": "CreateUser"})
    assert result["status"] == "contained" and result["action"] == "quarantined"
    assert [p["PolicyArn"] for p in aws["iam"].list_attached_user_policies(UserName=name)["AttachedPolicies"]] == [
        SETTINGS.quarantine_policy_arn]
    other = follow(aws, {"kind": "created_user", "target": user["Arn"], "userName": name, "userId": "AIDANOTTHEONE",
                         "eventName": "CreateUser"})  # the same name, another id: not the user the event created
    assert other["status"] == "not_verified"
