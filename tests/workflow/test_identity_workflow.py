"""The shipped state machine, executed locally, on identity findings and manual requests (issue 2)."""
from __future__ import annotations

import json
import uuid

import pytest

from state_machines import local
from tests.worlds.deployment import deployment
from tests.worlds.workflow import access_key_event, event, iam_state

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


def new_user(dep, keys=2):
    iam = dep.client("iam")
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    return name, [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(keys)]


def new_role(dep):
    name = f"app-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    dep.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return name


def test_iam_user_finding_is_contained_through_the_rule(dep):
    name, keys = new_user(dep)
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=keys[0])
    run = local.deliver(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.states[:3] == ["Triage", "Route", "Contain"]  # the Parallel's branches interleave after this
    assert run.states.index("HasIdentities") < run.states.index("ContainIdentities") < run.states.index("Finalize")
    assert run.output["outcome"] == "contained"
    assert run.output["incidentId"] == f"gd-{ev['detail']['id']}"
    state = iam_state(dep.client("iam"))["users"][name]
    assert state["attached"] == ["arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"]
    assert {status for _, status in state["keys"]} == {"Inactive"}
    cond = state["inline"]["AWSRevokeOlderSessions"]["Statement"][0]["Condition"]
    assert cond["DateLessThan"]["aws:TokenIssueTime"] == run.output["cutoff"]


def test_assumed_role_finding_revokes_older_sessions(dep):
    role = new_role(dep)
    ev = access_key_event(account=MEMBER, region=REGION, user_type="AssumedRole", name=role, key="ASIAEXAMPLEKEY000001")
    role_id = dep.client("iam").get_role(RoleName=role)["Role"]["RoleId"]
    ev["detail"]["resource"]["accessKeyDetails"]["principalId"] = f"{role_id}:session"  # who issued it (issue 10)
    run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    inline = iam_state(dep.client("iam"))["roles"][role]["inline"]
    assert inline["AWSRevokeOlderSessions"]["Statement"][0]["Effect"] == "Deny"


def test_root_finding_records_manual_steps_and_changes_nothing(dep):
    before = iam_state(dep.client("iam"))
    run = local.execute(access_key_event(account=MEMBER, region=REGION, user_type="Root", name=None), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "manual_action_required"
    assert run.output["manualSteps"][0]["steps"]
    assert iam_state(dep.client("iam")) == before


def test_s3_finding_is_recorded_as_not_handled(dep):
    ev = event(account=MEMBER, region=REGION)
    ev["detail"]["type"] = "Policy:S3/BucketBlockPublicAccessDisabled"
    ev["detail"]["resource"] = {"resourceType": "S3Bucket", "s3BucketDetails": [{"name": "b"}]}
    run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "not_handled" and "S3Bucket" in run.output["dispositionReason"]
    assert "Contain" not in run.states


def test_manual_request_contains_users_and_roles(dep):
    name, _ = new_user(dep, keys=1)
    role = new_role(dep)
    run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "phished laptop",
                                    "iamUsers": [name], "roles": [role], "incidentId": f"IR-{uuid.uuid4().hex[:6]}"}},
                        dep)
    assert run.status == "SUCCEEDED", run.cause
    assert [i["status"] for i in run.output["identities"]] == ["contained", "contained"]
    state = iam_state(dep.client("iam"))
    assert state["users"][name]["keys"][0][1] == "Inactive"
    assert "AWSRevokeOlderSessions" in state["roles"][role]["inline"]


@pytest.mark.parametrize("bad, field", [
    ({"manual": {"accountId": MEMBER, "region": REGION, "reason": "r", "iamUsers": ["x"], "force": True}},
     "manual.force"),
    ({"manual": {"accountId": "12", "region": REGION, "reason": "r", "iamUsers": ["x"]}}, "manual.accountId"),
    ({"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {"id": "x"}}, "detail.accountId"),
    ({"hello": "world"}, "$"),
])
def test_malformed_input_fails_naming_the_field_and_changes_nothing(dep, bad, field):
    before = iam_state(dep.client("iam"))
    run = local.execute(bad, dep)
    assert run.status == "FAILED"
    assert run.error == "InvalidInput"
    assert json.loads(run.cause)["errorMessage"].startswith(field + ":")
    assert run.states == ["Triage", "RejectInput"]
    assert iam_state(dep.client("iam")) == before


def test_the_same_finding_twice_changes_nothing_the_second_time(dep):
    name, keys = new_user(dep)
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=keys[0])
    first = local.execute(ev, dep)
    assert first.output["outcome"] == "contained"
    after_first = iam_state(dep.client("iam"))
    ev["detail"]["service"]["count"] = 2  # GuardDuty re-publishes the finding with a higher count
    second = local.execute(ev, dep)
    assert second.status == "SUCCEEDED", second.cause
    assert second.output["outcome"] in ("duplicate", "contained")
    assert iam_state(dep.client("iam")) == after_first


def test_finding_for_an_account_without_the_member_stack_fails_and_says_why(dep):
    run = local.execute(access_key_event(account="777766665555", region=REGION, user_type="IAMUser", name="u"), dep)
    assert run.status == "FAILED"
    assert run.output is None
    assert run.error in ("ContainmentFailed", "ContainmentIncomplete")
    assert "AccountAccessError" in run.cause or "cannot assume" in run.cause


@pytest.mark.parametrize("severity, matches", [(3.9, False), (4.0, True), (8.9, True), (1, False)])
def test_the_rule_pattern_starts_the_workflow_from_severity_4(severity, matches):
    ev = event(account=MEMBER, region=REGION, severity=severity)
    assert local.matches_rule(ev) is matches


def test_single_account_layout():
    with local.aws():
        dep = local.deploy()
        iam = dep.client("iam")
        iam.create_user(UserName="solo")
        key = iam.create_access_key(UserName="solo")["AccessKey"]["AccessKeyId"]
        run = local.execute(access_key_event(account=dep.member_account, region=dep.region, user_type="IAMUser",
                                             name="solo", key=key), dep)
        assert run.status == "SUCCEEDED", run.cause
        assert dep.member_account == dep.security_account == dep.forensics_account
        assert iam.list_access_keys(UserName="solo")["AccessKeyMetadata"][0]["Status"] == "Inactive"
