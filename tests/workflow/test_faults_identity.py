"""Fault injection on identity containment: throttling is retried, hard errors are recorded and nothing that was
already done is undone; no silent success."""
from __future__ import annotations

import uuid

from state_machines import local
from tests.worlds.deployment import deployment
from tests.worlds.faults import inject
from tests.worlds.workflow import access_key_event, iam_state

MEMBER, REGION = "444455556666", "eu-west-1"
QUARANTINE = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"


dep = deployment(member_account=MEMBER, region=REGION)


def victim(dep):
    iam = dep.client("iam")
    name = f"victim-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    return name, access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=key)


def user(dep, name):
    return iam_state(dep.client("iam"))["users"][name]


def scheduled(run, state="ContainIdentities"):
    """How many times the task was scheduled (first try + Step Functions retries)."""
    return sum(1 for e in run.events if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled"))


def test_throttling_is_retried_then_succeeds(dep):
    name, ev = victim(dep)
    with inject("iam:AttachUserPolicy", "Throttling", times=2) as fault:
        run = local.execute(ev, dep)
    assert fault.raised == 2
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    assert user(dep, name)["attached"] == [QUARANTINE]


def test_endless_throttling_fails_the_incident_after_the_retries(dep):
    name, ev = victim(dep)
    with inject("iam:AttachUserPolicy", "Throttling") as fault:
        run = local.execute(ev, dep)
    assert fault.raised == 7  # the first try and six Step Functions retries
    assert run.status == "FAILED" and run.error == "ContainmentFailed"
    assert "TransientAwsError" in run.cause


def test_access_denied_is_recorded_and_earlier_steps_stay(dep):
    name, ev = victim(dep)
    with inject("iam:UpdateAccessKey", "AccessDenied"):
        run = local.execute(ev, dep)
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert "AccessDenied" in run.cause
    state = user(dep, name)
    assert state["attached"] == [QUARANTINE]  # the quarantine policy stays: nothing is undone
    assert "AWSRevokeOlderSessions" in state["inline"]  # later independent steps still ran
    assert state["keys"][0][1] == "Active"  # what failed is reported, not hidden


def test_policy_quota_exceeded_is_recorded(dep):
    name, ev = victim(dep)
    with inject("iam:PutUserPolicy", "LimitExceeded", message="Cannot exceed quota for PoliciesPerUser: 10"):
        run = local.execute(ev, dep)
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert "LimitExceeded" in run.cause
    assert user(dep, name)["keys"][0][1] == "Inactive"


def test_user_vanishing_mid_way_is_not_a_silent_success(dep):
    name, ev = victim(dep)
    with inject("iam:AttachUserPolicy", "NoSuchEntity", message="The user with name x cannot be found."):
        run = local.execute(ev, dep)
    assert run.status == "FAILED"
    assert "NoSuchEntity" in run.cause
