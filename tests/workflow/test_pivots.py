"""Contain what the attacker minted and list what to rotate (issue 14, items 3 and 4), through the shipped state
machine. The attacker's moves are made with the attacker's own credentials in the in-memory AWS (a stolen key:
assume a role, create a key for another user, create a user, create a KMS grant, read a secret and a parameter), so
the CloudTrail history the responder reads is the one those calls made; then the finding arrives. The AWS state is
read back through boto3."""
from __future__ import annotations

import json

import pytest

from state_machines import gaps_cloudtrail, local
from tests.worlds.deployment import deployment
from tests.worlds.operations import Inbox, configured, record, summary
from tests.worlds.pivots import attack, finding, world
from tests.worlds.workflow import iam_state

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
QUARANTINE = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


@pytest.fixture(scope="module")
def inbox(dep):
    return Inbox(dep)


def grants(dep, w):
    return {g["GrantId"] for g in dep.client("kms").list_grants(KeyId=w["key"]["KeyId"])["Grants"]}


def state(dep, w):
    return {"iam": iam_state(dep.client("iam")), "grants": grants(dep, w)}


def event_ids(name: str) -> set[str]:
    return {e["record"]["eventID"] for e in gaps_cloudtrail.events() if e["record"]["eventName"] == name}


def test_each_pivot_is_contained_and_the_rotation_list_names_each_item(dep, inbox):
    w = world(dep)
    moves = attack(w)
    run = local.deliver(finding(w), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    iam = dep.client("iam")
    # the role it assumed: older sessions revoked
    assert "AWSRevokeOlderSessions" in iam.list_role_policies(RoleName=w["app"]["RoleName"])["PolicyNames"]
    # the key it created for another user: inactive, never deleted; the other user itself untouched
    keys = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=w["other"])["AccessKeyMetadata"]}
    assert keys == {moves["minted"]["AccessKeyId"]: "Inactive"}
    assert iam.list_attached_user_policies(UserName=w["other"])["AttachedPolicies"] == []
    # the user it created: quarantined
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=w["backdoor"])["AttachedPolicies"]] \
        == [QUARANTINE]
    # the grant it created: revoked
    assert moves["grant"] not in grants(dep, w)

    item = record(dep, run.output["incidentId"])
    pivots = {p["kind"]: p for p in item["pivots"]}
    assert set(pivots) == {"assumed_role", "created_key", "created_user", "kms_grant"}
    assert {p["status"] for p in item["pivots"]} == {"contained"}
    assert pivots["assumed_role"]["target"] == w["app"]["Arn"]
    assert pivots["created_key"]["target"] == moves["minted"]["AccessKeyId"]
    assert pivots["kms_grant"]["target"].endswith("/grant/" + moves["grant"])
    for kind, name in (("assumed_role", "AssumeRole"), ("created_key", "CreateAccessKey"),
                       ("created_user", "CreateUser"), ("kms_grant", "CreateGrant")):
        assert pivots[kind]["eventId"] in event_ids(name), kind  # each action cites the CloudTrail event

    rotation = item["rotation"]
    assert [r["order"] for r in rotation] == list(range(1, len(rotation) + 1))
    kinds = [r["kind"] for r in rotation]
    assert kinds == sorted(kinds, key=["access_key", "role_trust", "kms_key_policy", "kms_grant", "secret",
                                       "parameter"].index)  # the runbook's order
    text = json.dumps(rotation)
    assert w["stolen"]["AccessKeyId"] in text and moves["minted"]["AccessKeyId"] in text
    assert any(r["kind"] == "role_trust" and r["arn"] == w["app"]["Arn"] for r in rotation)
    assert any(r["kind"] == "kms_grant" and r["arn"].endswith(moves["grant"]) for r in rotation)
    secret = next(r for r in rotation if r["kind"] == "secret")
    assert secret["arn"] == w["secret"] and "aws secretsmanager rotate-secret --secret-id " + w["secret"] in \
        secret["command"] and secret["eventId"] in event_ids("GetSecretValue")
    parameter = next(r for r in rotation if r["kind"] == "parameter")
    assert parameter["arn"] == f"arn:aws:ssm:{REGION}:{MEMBER}:parameter{w['parameter']}"
    assert "aws ssm put-parameter --name " + w["parameter"] in parameter["command"]

    # bounded in the execution output; named in the notification and the manifest
    out = run.output
    assert out["pivots"]["count"] == 4 and len(out["pivots"]["items"]) == 4
    assert out["rotation"]["count"] == len(rotation) and out["rotation"]["items"][0]["command"]
    note = inbox.about(out["incidentId"])[-1]["message"]
    assert note["pivots"]["count"] == 4 and note["rotation"]["count"] == len(rotation)
    manifest = json.loads(local.session(FORENSICS, REGION).client("s3").get_object(
        Bucket=dep.bucket, Key=out["manifest"]["key"], VersionId=out["manifest"]["versionId"])["Body"].read())
    assert manifest["evidence"]["rotation"] == rotation
    assert {p["eventId"] for p in manifest["evidence"]["pivots"]} == {p["eventId"] for p in item["pivots"]}

    # a second run (a person re-runs the incident's user) changes nothing
    before = state(dep, w)
    again = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "second run",
                                      "iamUsers": [w["victim"]], "incidentId": out["incidentId"]}}, dep)
    assert again.status == "SUCCEEDED", again.cause
    assert state(dep, w) == before
    assert set(again.output["pivots"]["statuses"]) == {"already_contained"}


def test_dry_run_changes_nothing_and_lists_the_plan(dep):
    w = world(dep)
    moves = attack(w)
    before = state(dep, w)
    with configured(dep, IR_OBSERVE_ONLY="true"):
        run = local.execute(finding(w), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert state(dep, w) == before
    assert moves["grant"] in grants(dep, w)
    assert set(run.output["pivots"]["statuses"]) == {"planned"}
    plan = {(p["api"], p["target"]) for p in summary(run)["plan"]}
    assert ("iam:UpdateAccessKey", moves["minted"]["AccessKeyId"]) in plan
    assert ("iam:PutRolePolicy", w["app"]["Arn"]) in plan
    assert any(api == "kms:RevokeGrant" and target.endswith(moves["grant"]) for api, target in plan)
