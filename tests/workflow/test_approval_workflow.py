"""Containment levels and approval with a deadline (issue 15, items 1 and 2), through the shipped state machine:
approved, denied, timed out (each default), an answer that is no approval, a used or stale token, evidence before
the approval (snapshots only, nothing isolated), a protection tag that asks for approval, the observe level, and
bad input. AWS state is read back through boto3 while the execution waits and after it ends."""
from __future__ import annotations

import json
import uuid

import pytest

from responder.approval import ApprovalRefused
from state_machines import local
from tests.worlds import isolation as w
from tests.worlds.deployment import deployment
from tests.worlds.operations import Inbox, configured, evidence_object, record, summary
from tests.worlds.workflow import access_key_event, backdate_cloudtrail, event, iam_state

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
QUARANTINE = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"
APPROVAL = {"rules": [{"name": "production", "accounts": ["production"], "level": "approval",
                       "approvalTimeoutSeconds": 600}],
            "accountGroups": {"production": [MEMBER]}}


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION, containment_levels=APPROVAL)


@pytest.fixture()
def inbox(dep):
    return Inbox(dep)


def levels(**changes) -> str:
    rule = dict(APPROVAL["rules"][0], **changes)
    return json.dumps(dict(APPROVAL, rules=[rule]))


def user(dep, tags=None):
    iam = dep.client("iam")
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name, **({"Tags": tags} if tags else {}))
    return name, iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]


def requests(inbox, incident_id, timeout=30.0):
    """The approval requests about the incident (RequestApproval publishes right after storing the token)."""
    import time

    deadline, found = time.time() + timeout, []
    while not found and time.time() < deadline:
        found = [m for m in inbox.about(incident_id) if m["message"]["outcome"] == "approval_required"]
        time.sleep(0.05)
    return found


def finding(name, key):
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=key)
    return ev, f"gd-{ev['detail']['id']}"


def test_nothing_is_contained_before_the_approval_then_everything_after_it(dep, inbox):
    name, key = user(dep)
    ev, incident_id = finding(name, key)
    before = iam_state(dep.client("iam"))["users"][name]
    arn = local.start(ev, dep)
    pending = local.pending_approval(incident_id, dep)
    assert iam_state(dep.client("iam"))["users"][name] == before  # read back while the execution waits
    assert pending["onTimeout"] == "stand_down" and pending["rule"] == "production"
    asked = requests(inbox, incident_id)
    assert len(asked) == 1 and asked[0]["subject"].startswith("IR APPROVAL REQUIRED: user/")
    answer = asked[0]["message"]["answer"]
    assert answer["approve"] == f'python -m cli approve {incident_id} --reason "<why>"'
    assert answer["deny"] == f'python -m cli deny {incident_id} --reason "<why>"'
    assert answer["awsApprove"].startswith(f"aws stepfunctions send-task-success --task-token '{pending['taskToken']}'")

    sent = local.approve(incident_id, dep, reason="confirmed with the owner")
    run = local.wait(arn, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    assert run.states[:5] == ["Triage", "Route", "EvidenceBeforeApproval", "AwaitApproval", "ApprovalDecision"]
    after = iam_state(dep.client("iam"))["users"][name]
    assert after["attached"] == [QUARANTINE] and after["keys"] == [(key, "Inactive")]
    # who, when, why: in the output, the record (the token gone) and the manifest
    assert run.output["approval"] == {"decision": "approve", "by": sent["by"], "at": sent["at"],
                                      "reason": "confirmed with the owner"}
    assert sent["by"].startswith("arn:aws:")
    item = record(dep, incident_id)
    assert item["approval"]["status"] == "approved" and item["approval"]["by"] == sent["by"]
    assert "taskToken" not in item["approval"]
    assert [e for e in item["timeline"] if e.get("task") == "approval"][0]["status"] == "approve"
    manifest = json.loads(evidence_object(dep, run.output["manifest"]["key"]))
    assert manifest["approval"]["by"] == sent["by"] and manifest["approval"]["reason"] == "confirmed with the owner"


def test_a_used_token_is_refused_clearly(dep):
    name, key = user(dep)
    ev, incident_id = finding(name, key)
    arn = local.start(ev, dep)
    local.pending_approval(incident_id, dep)
    local.deny(incident_id, dep, reason="pen test SEC-1")
    with pytest.raises(ApprovalRefused, match="already denied .* the token is used"):
        local.approve(incident_id, dep, reason="changed my mind")
    assert local.wait(arn, dep).output["outcome"] == "approval_denied"


def test_denied_stands_down_and_changes_nothing(dep, inbox):
    name, key = user(dep)
    ev, incident_id = finding(name, key)
    before = iam_state(dep.client("iam"))
    arn = local.start(ev, dep)
    local.pending_approval(incident_id, dep)
    local.deny(incident_id, dep, reason="pen test, ticket SEC-1234")
    run = local.wait(arn, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "approval_denied"
    assert "Contain" not in run.states and "ContainIdentities" not in run.states
    assert iam_state(dep.client("iam")) == before
    assert record(dep, incident_id)["approval"]["status"] == "denied"
    last = inbox.about(incident_id)[-1]
    assert last["subject"].startswith("IR DENIED - NOT CONTAINED:")
    assert "pen test, ticket SEC-1234" in last["message"]["headline"]


def test_an_answer_that_is_no_approval_contains_nothing(dep):
    name, key = user(dep)
    ev, incident_id = finding(name, key)
    before = iam_state(dep.client("iam"))
    arn = local.start(ev, dep)
    token = local.pending_approval(incident_id, dep)["taskToken"]
    local.session(None, REGION).client("stepfunctions").send_task_success(taskToken=token,
                                                                          output=json.dumps({"decision": "yes"}))
    run = local.wait(arn, dep)
    assert run.output["outcome"] == "approval_denied"
    assert run.output["approval"]["decision"] == "invalid"
    assert iam_state(dep.client("iam")) == before


def test_timed_out_stands_down_by_default(dep, inbox):
    name, key = user(dep)
    ev, incident_id = finding(name, key)
    before = iam_state(dep.client("iam"))
    with configured(dep, IR_CONTAINMENT_LEVELS=levels(approvalTimeoutSeconds=1)):
        run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "approval_timed_out"
    assert run.states[3:6] == ["AwaitApproval", "ApprovalTimedOut", "OnTimeout"]
    assert iam_state(dep.client("iam")) == before
    assert record(dep, incident_id)["approval"]["status"] == "timed_out"
    assert inbox.about(incident_id)[-1]["subject"].startswith("IR NO APPROVAL - NOT CONTAINED:")
    with pytest.raises(ApprovalRefused, match="already timed_out"):
        local.approve(incident_id, dep, reason="too late")


def test_timed_out_contains_when_the_level_says_so(dep):
    name, key = user(dep)
    ev, _ = finding(name, key)
    with configured(dep, IR_CONTAINMENT_LEVELS=levels(approvalTimeoutSeconds=1, onTimeout="contain")):
        run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    assert run.output["approval"]["decision"] == "timed_out" and run.output["approval"]["onTimeout"] == "contain"
    assert iam_state(dep.client("iam"))["users"][name]["keys"] == [(key, "Inactive")]


def test_an_answer_through_the_aws_cli_line_is_recorded_and_its_token_refused_afterwards(dep):
    name, key = user(dep)
    ev, incident_id = finding(name, key)
    arn = local.start(ev, dep)
    token = local.pending_approval(incident_id, dep)["taskToken"]
    local.session(None, REGION).client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(
        {"decision": "approve", "by": "arn:aws:iam::123456789012:user/oncall", "reason": "from the console"}))
    run = local.wait(arn, dep)
    assert run.output["outcome"] == "contained" and run.output["approval"]["by"].endswith("user/oncall")
    with pytest.raises(ApprovalRefused, match="already approved by arn:aws:iam::123456789012:user/oncall at 20"):
        local.deny(incident_id, dep, reason="late")
    assert record(dep, incident_id)["approval"]["status"] == "approved"  # Finalize recorded the answer


def test_manual_requests_stay_automatic_unless_they_name_a_level(dep):
    name, key = user(dep)
    run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "a person asked",
                                    "iamUsers": [name]}}, dep)
    assert run.output["outcome"] == "contained" and "AwaitApproval" not in run.states
    assert run.states[:3] == ["Triage", "Route", "Contain"]


def test_observe_level_plans_and_changes_nothing(dep):
    name, key = user(dep)
    ev, _ = finding(name, key)
    before = iam_state(dep.client("iam"))
    with configured(dep, IR_CONTAINMENT_LEVELS=levels(level="observe")):
        run = local.execute(ev, dep)
    assert run.output["outcome"] == "dry_run_plan" and run.output["containment"]["level"] == "observe"
    assert iam_state(dep.client("iam")) == before


def test_a_protection_tag_asks_for_approval_not_immunity(dep):
    # an administrator tagged the user a month ago: automatic containment leaves it alone ...
    name, key = user(dep, tags=[{"Key": "ir:protected", "Value": "true"}])
    backdate_cloudtrail("CreateUser", name, days=30)
    before = iam_state(dep.client("iam"))["users"][name]
    manual = {"accountId": MEMBER, "region": REGION, "reason": "tagged but compromised", "iamUsers": [name]}
    run = local.execute({"manual": dict(manual, incidentId=f"IR-{uuid.uuid4().hex[:6]}")}, dep)
    assert run.output["outcome"] == "protected"
    assert iam_state(dep.client("iam"))["users"][name] == before
    steps = run.output["manualSteps"][0]["steps"]  # the notification says how to contain it with an approval
    assert f"python -m cli start --user {name} --account {MEMBER} --region {REGION}" in steps[1]
    assert steps[1].endswith("--level approval")
    # ... and a person's approval contains it
    incident_id = f"IR-{uuid.uuid4().hex[:6]}"
    arn = local.start({"manual": dict(manual, incidentId=incident_id, level="approval")}, dep)
    local.pending_approval(incident_id, dep)
    assert iam_state(dep.client("iam"))["users"][name] == before
    local.approve(incident_id, dep, reason="the owner confirms the key leaked")
    run = local.wait(arn, dep)
    assert run.output["outcome"] == "contained", run.output
    assert iam_state(dep.client("iam"))["users"][name]["keys"] == [(key, "Inactive")]
    detail = record(dep, incident_id)["results"][f"identity:{run.output['identities'][0]['target']}"]
    assert detail["protectionTag"]["approvedBy"]["reason"] == "the owner confirms the key leaked"


def test_a_break_glass_pattern_stays_immune_even_after_an_approval(dep):
    name, key = user(dep)
    before = iam_state(dep.client("iam"))["users"][name]
    incident_id = f"IR-{uuid.uuid4().hex[:6]}"
    with configured(dep, IR_PROTECTED_PRINCIPALS=f"arn:aws:iam::*:user/{name}"):
        arn = local.start({"manual": {"accountId": MEMBER, "region": REGION, "reason": "r", "iamUsers": [name],
                                      "incidentId": incident_id, "level": "approval"}}, dep)
        local.pending_approval(incident_id, dep)
        local.approve(incident_id, dep, reason="contain it")
        run = local.wait(arn, dep)
    assert run.output["outcome"] == "protected"
    assert iam_state(dep.client("iam"))["users"][name] == before


def test_evidence_before_approval_takes_snapshots_and_isolates_nothing(dep):
    net = w.vpc(dep, 41)
    instance_id = w.instance(dep, net, volumes=2)
    groups = w.interface_groups(dep, instance_id)
    ev = event("guardduty-instance.json", account=MEMBER, region=REGION)
    ev["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
    incident_id = f"gd-{ev['detail']['id']}"
    arn = local.start(ev, dep)
    local.pending_approval(incident_id, dep)
    ec2 = dep.client("ec2")
    taken = ec2.describe_snapshots(Filters=[{"Name": "tag:ir:incident", "Values": [incident_id]}])["Snapshots"]
    assert len(taken) == 2  # the crash-consistent set, before any isolation
    assert w.interface_groups(dep, instance_id) == groups  # nothing isolated yet
    assert "ir:quarantine" not in w.instance_state(dep, instance_id)["tags"]
    local.approve(incident_id, dep, reason="isolate it")
    run = local.wait(arn, dep)
    assert "SnapshotBeforeApproval" in run.states
    assert run.output["evidenceBeforeApproval"][0]["instanceId"] == instance_id
    assert w.interface_groups(dep, instance_id) != groups
    after = ec2.describe_snapshots(Filters=[{"Name": "tag:ir:incident", "Values": [incident_id]},
                                            {"Name": "volume-id",
                                             "Values": [s["VolumeId"] for s in taken]}])["Snapshots"]
    assert sorted(s["SnapshotId"] for s in after) == sorted(s["SnapshotId"] for s in taken)  # the set was adopted
    item = summary(run)["instances"][0]
    assert item["isolation"]["status"] == "isolated"


def test_evidence_before_approval_can_be_switched_off(dep):
    net = w.vpc(dep, 42)
    instance_id = w.instance(dep, net)
    ev = event("guardduty-instance.json", account=MEMBER, region=REGION)
    ev["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
    incident_id = f"gd-{ev['detail']['id']}"
    with configured(dep, IR_CONTAINMENT_LEVELS=levels(evidenceBeforeApproval=False, approvalTimeoutSeconds=1)):
        run = local.execute(ev, dep)
    assert "SnapshotBeforeApproval" not in run.states and run.output["outcome"] == "approval_timed_out"
    assert dep.client("ec2").describe_snapshots(
        Filters=[{"Name": "tag:ir:incident", "Values": [incident_id]}])["Snapshots"] == []


def test_a_bad_level_in_a_manual_request_is_invalid_input_naming_the_field(dep):
    name, _ = user(dep)
    before = iam_state(dep.client("iam"))
    run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "r", "iamUsers": [name],
                                    "level": "sometimes"}}, dep)
    assert run.status == "FAILED" and run.error == "InvalidInput"
    assert "manual.level" in run.cause
    assert iam_state(dep.client("iam")) == before


def test_an_unusable_policy_fails_closed_to_approval(dep):
    name, key = user(dep)
    ev, _ = finding(name, key)
    before = iam_state(dep.client("iam"))
    with configured(dep, IR_CONTAINMENT_LEVELS='{"rules": [{"level": "sometimes"}]}'):
        arn = local.start(ev, dep)
        pending = local.pending_approval(f"gd-{ev['detail']['id']}", dep)
        assert pending["onTimeout"] == "stand_down"
        local.deny(f"gd-{ev['detail']['id']}", dep, reason="drill")
        run = local.wait(arn, dep)
    assert "IR_CONTAINMENT_LEVELS" in run.output["containment"]["policyError"]
    assert iam_state(dep.client("iam")) == before


def test_transitions_added_by_the_approval(dep):
    """Transitions per incident (what Step Functions bills): an approved IAM user incident against the same incident
    automatic. The figure is quoted in the note."""
    name, key = user(dep)
    automatic = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "r", "iamUsers": [name]}},
                              dep)
    name, key = user(dep)
    incident_id = f"IR-{uuid.uuid4().hex[:6]}"
    arn = local.start({"manual": {"accountId": MEMBER, "region": REGION, "reason": "r", "iamUsers": [name],
                                  "incidentId": incident_id, "level": "approval"}}, dep)
    local.pending_approval(incident_id, dep)
    local.approve(incident_id, dep, reason="ok")
    approved = local.wait(arn, dep)
    assert approved.transitions - automatic.transitions == 3  # EvidenceBeforeApproval, AwaitApproval, ApprovalDecision
