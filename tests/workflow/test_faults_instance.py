"""Fault injection on the instance branch (isolation and evidence), through the shipped state machine.

Faults hit the handlers' AWS calls before botocore's own retries (`tests.worlds.faults.inject`), or change the world under
the responder just before a call (`tests.worlds.reliability.intercept`). For every action:

* **throttling** is retried by Step Functions (TransientAwsError) and then succeeds: the history shows each
  retried attempt with the step and the code, and the instance ends fully isolated with one evidence collection
  (the retried steps made nothing twice);
* **AccessDenied** (and an IAM quota) is recorded: the execution fails with ContainmentIncomplete, the output names
  the step, the API and the code, the failed step's effect is absent, and every other step stands (read back from
  the in-memory AWS): nothing is undone;
* **a resource that vanishes mid-way** (instance terminated, snapshot deleted, volume deleted) and **a snapshot
  ending in error** fail the incident with the AWS code or SnapshotFailed, never a silent success;
* **a response lost after the change was made** is retried without creating a second group, snapshot set or copy.

A forced block-list mismatch (EvidenceIntegrityError) is covered by tests/workflow/test_evidence_workflow.py.
Each test reads back the execution output (the Finalize summary), its history (the attempts Step Functions
retried), the incident record in DynamoDB (outcome, and a timeline that holds exactly what the manifest holds) and the
AWS state.

"""
from __future__ import annotations

import json

import pytest

from responder.aws.ec2 import QUARANTINE, UNTRACK
from state_machines import gaps_ebs, local
from tests.worlds.evidence import dep, fresh_hooks  # noqa: F401 - shared fixtures
from tests.worlds.faults import inject
from tests.worlds.operations import evidence_object, record
from tests.worlds.reliability import (
    evidence_view,
    instance_item,
    instance_view,
    intercept,
    summary,
    task_failures,
    web_instance,
)
from tests.worlds.workflow import event

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
REVOKE = "AWSRevokeOlderSessions"




def isolation_world(dep) -> dict:
    """A web instance with one volume whose snapshots complete at once: for faults in isolation, the evidence
    chain only has to run (its waiting is exercised by the evidence faults below)."""
    gaps_ebs.set_pending_polls(0)
    return web_instance(dep)


def finding(world: dict) -> tuple[dict, str]:
    """A GuardDuty Instance finding about the world's instance, and its incident id."""
    ev = event("guardduty-instance.json", account=MEMBER, region=REGION)
    ev["detail"]["resource"]["instanceDetails"]["instanceId"] = world["instanceId"]
    return ev, f"gd-{ev['detail']['id']}"


def facts(dep, world: dict, incident_id: str) -> dict[str, bool]:
    """Each effect of isolation, read back from AWS: True when it is in place."""
    v = instance_view(dep, world)
    return {
        "metadata": f"incidents/{incident_id}/instances/{world['instanceId']}/metadata.json" in v["metadata"],
        "termination": v["disableApiTermination"] is True,
        "keep_volumes": set(v["deleteOnTermination"].values()) == {False},
        "detached": v["autoScaling"] == [],
        "network": list(v["interfaces"].values()) == [[v["responderGroups"].get(QUARANTINE)]],
        "revoked": REVOKE in v["roleInline"],
        "profile": (v["profile"] or "").endswith(f"/{dep.environment['IR_DENY_ALL_PROFILE']}"),
        "classic": not v["classic"],
        "targets": not v["targetGroup"],
        "tagged": v["tags"].get("ir:incident") == incident_id and "ir:quarantine" in v["tags"],
    }


def evidence_snapshots(dep, world: dict, account: str) -> dict[str, dict]:
    return evidence_view(dep, account, world["instanceId"])


def entries(item: dict, part: str) -> list[dict]:
    return (item.get(part) or {}).get("entries") or []


def _row(e: dict) -> tuple:
    return e.get("step"), e["status"], e.get("api"), e.get("target"), e.get("error")


def recorded(dep, run, incident_id: str, outcome: str, instance_id: str) -> dict:
    """The incident record: its outcome, its timeline holding exactly the isolation and evidence entries the
    manifest lists for the instance, and a closing entry with the outcome (and the cause when the incident
    failed)."""
    item = record(dep, incident_id)
    assert item is not None and (item["status"], item["outcome"]) == (outcome, outcome)
    assert item["executionId"] == run.arn
    manifest = json.loads(evidence_object(dep, item["manifest"]["key"], item["manifest"]["versionId"]))
    for task in ("isolation", "evidence"):  # (a task that failed as a whole has one entry of its own: step = task)
        listed = [_row(e) for e in manifest["timeline"] if e.get("task") == task and e.get("step") != task]
        assert [_row(e) for e in item["timeline"] if e.get("task") == task and e.get("step") != task] == listed
        assert listed == [_row(e) for e in entries(instance_item(run, instance_id), task)]
    closing = item["timeline"][-1]
    assert (closing["task"], closing["step"], closing["status"]) == ("finalize", "outcome", outcome)
    if run.status == "FAILED":
        assert closing["detail"] == summary(run)["cause"]
    return item


# --------------------------------------------------------------------------------------------------------
# Throttling: retried, then it succeeds
# --------------------------------------------------------------------------------------------------------
ISOLATION_CALLS = [
    ("sts:AssumeRole", "sts:AssumeRole"),
    ("ec2:DescribeInstances", "DescribeInstances"),
    ("s3:PutObject", "capture_metadata"),
    ("ec2:ModifyInstanceAttribute", "termination_protection"),
    ("autoscaling:DetachInstances", "auto_scaling"),
    ("ec2:CreateSecurityGroup", "security_groups"),
    ("ec2:AuthorizeSecurityGroupIngress", "security_groups"),
    ("ec2:ModifyNetworkInterfaceAttribute", "network_isolation"),
    ("iam:PutRolePolicy", "revoke_older_sessions"),
    ("ec2:ReplaceIamInstanceProfileAssociation", "instance_profile"),
    ("elasticloadbalancing:DeregisterInstancesFromLoadBalancer", "classic_load_balancers"),
    ("elasticloadbalancing:DeregisterTargets", "target_groups"),
    ("ec2:CreateTags", "tag"),
]
EVIDENCE_CALLS = [
    ("ec2:CreateSnapshots", "create_snapshot_set"),
    ("kms:DescribeKey", "resolve_sharing_key"),
    ("ec2:CopySnapshot", "copy_snapshot"),
    ("ec2:ModifySnapshotAttribute", "share_with_forensics"),
    ("ebs:ListSnapshotBlocks", "ListSnapshotBlocks"),
]


@pytest.mark.parametrize("api,step", ISOLATION_CALLS + EVIDENCE_CALLS, ids=[a for a, _ in ISOLATION_CALLS + EVIDENCE_CALLS])
def test_throttling_is_retried_then_the_instance_is_isolated_once(dep, api, step):
    world = web_instance(dep, volumes=("plain", "aws-ebs")) if (api, step) in EVIDENCE_CALLS else isolation_world(dep)
    ev, incident_id = finding(world)
    with inject(api, "Throttling", times=2, message="Rate exceeded") as fault:
        run = local.execute(ev, dep)
    assert fault.raised == 2
    assert run.status == "SUCCEEDED", run.cause
    out = summary(run)
    assert out["outcome"] == "contained" and out["failures"] == []
    # the history shows both retried attempts, naming the step (or call) and the code
    retried = task_failures(run)
    assert [error for error, _ in retried] == ["TransientAwsError"] * 2
    assert all(step in cause and "Throttling" in cause for _, cause in retried), retried
    item = instance_item(run, world["instanceId"])
    assert item["isolation"]["status"] == "isolated"
    assert "failed" not in item["isolation"]["steps"].values()
    recorded(dep, run, incident_id, "contained", world["instanceId"])
    found = facts(dep, world, incident_id)
    assert found == dict.fromkeys(found, True)
    if api.split(":")[0] in ("ec2", "autoscaling", "elasticloadbalancing", "iam", "s3") and api != "ec2:DescribeInstances":
        made = [e for e in entries(item, "isolation") + entries(item, "evidence") if e.get("api") == api]
        # the throttled attempt is recorded as retried (it stays in the timeline), then the retry's call itself
        assert "retried" in [e["status"] for e in made]
        assert made[-1]["status"] in ("done", "unchanged") and {e["status"] for e in made} <= {
            "done", "unchanged", "retried"}
    # nothing was made twice: two responder groups in the VPC, one evidence collection
    view = instance_view(dep, world)
    assert set(view["responderGroups"]) == {QUARANTINE, UNTRACK}
    assert view["vpcGroups"] == 4  # default, app, untrack, quarantine
    evidence = item["evidence"]
    assert evidence["status"] == "collected", evidence.get("message")
    sources = [s for s in evidence_snapshots(dep, world, MEMBER).values() if s["description"].endswith("source")]
    assert len(sources) == len(world["volumes"])
    assert len(evidence_snapshots(dep, world, FORENSICS)) == len(world["volumes"])


def test_endless_throttling_fails_the_isolation_after_its_retries_and_keeps_what_was_done(dep):
    world = isolation_world(dep)
    ev, incident_id = finding(world)
    with inject("ec2:ModifyNetworkInterfaceAttribute", "Throttling", message="Rate exceeded") as fault:
        run = local.execute(ev, dep)
    assert fault.raised == 7  # the first try and six Step Functions retries
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert "isolation: TransientAwsError" in run.cause and "network_isolation" in run.cause
    item = instance_item(run, world["instanceId"])
    assert item["isolation"]["failure"]["error"] == "TransientAwsError"
    timeline = recorded(dep, run, incident_id, "partially_contained", world["instanceId"])["timeline"]
    assert [(e["task"], e["status"], e["error"]) for e in timeline if e["status"] == "failed"] == [
        ("isolation", "failed", "TransientAwsError")]
    found = facts(dep, world, incident_id)
    # every attempt stopped at the first interface move: what came before it stands, nothing after it ran
    assert {k for k, v in found.items() if v} == {"metadata", "termination", "keep_volumes", "detached"}
    assert instance_view(dep, world)["interfaces"] == {world["eni"]: [world["securityGroupId"]]}
    assert item["evidence"]["status"] == "collected"  # evidence is still preserved


def test_a_retried_isolation_still_reports_the_changes_its_failed_attempt_made(dep):
    """Throttled at the last step (tag): the first attempt made every other change, then Step Functions retried the
    task. The output must still say this incident isolated the instance (not `already_isolated`) and list the calls
    that changed it."""
    world = isolation_world(dep)
    ev, incident_id = finding(world)
    with inject("ec2:CreateTags", "Throttling", times=1):
        run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert [error for error, _ in task_failures(run)] == ["TransientAwsError"]  # the first attempt was retried
    isolation = instance_item(run, world["instanceId"])["isolation"]  # this execution's entries from the record
    made = {e.get("api") for e in isolation["entries"] if e["status"] == "done"}
    assert summary(run)["instances"][0]["isolation"]["status"] == "isolated", isolation["steps"]
    assert summary(run)["instances"][0]["isolation"]["changes"] >= 3
    assert isolation["steps"]["network_isolation"] == "done" and isolation["steps"]["tag"] == "done"
    assert {"ec2:ModifyNetworkInterfaceAttribute", "ec2:ReplaceIamInstanceProfileAssociation",
            "autoscaling:DetachInstances"} <= made
    timeline = record(dep, incident_id)["timeline"]
    assert {"ec2:ModifyNetworkInterfaceAttribute", "ec2:ReplaceIamInstanceProfileAssociation",
            "autoscaling:DetachInstances"} <= {e.get("api") for e in timeline if e["status"] == "done"}


# --------------------------------------------------------------------------------------------------------
# AccessDenied / quota: recorded, named, nothing undone
# --------------------------------------------------------------------------------------------------------
DENIED = [  # (api, code, the steps that fail (the refused one first), the effects that must be absent afterwards)
    ("s3:PutObject", "AccessDenied", ["capture_metadata"], {"metadata"}),
    ("ec2:ModifyInstanceAttribute", "UnauthorizedOperation", ["termination_protection"], {"termination"}),
    ("autoscaling:DetachInstances", "AccessDenied", ["auto_scaling"], {"detached"}),
    ("ec2:CreateSecurityGroup", "UnauthorizedOperation", ["security_groups", "network_isolation"], {"network"}),
    ("ec2:RevokeSecurityGroupEgress", "UnauthorizedOperation", ["security_groups", "network_isolation"], {"network"}),
    ("ec2:ModifyNetworkInterfaceAttribute", "UnauthorizedOperation", ["network_isolation"], {"network"}),
    ("iam:PutRolePolicy", "AccessDenied", ["revoke_older_sessions"], {"revoked"}),
    ("iam:PutRolePolicy", "LimitExceeded", ["revoke_older_sessions"], {"revoked"}),
    ("ec2:ReplaceIamInstanceProfileAssociation", "UnauthorizedOperation", ["instance_profile"], {"profile"}),
    ("elasticloadbalancing:DeregisterInstancesFromLoadBalancer", "AccessDenied", ["classic_load_balancers"],
     {"classic"}),
    ("elasticloadbalancing:DeregisterTargets", "AccessDenied", ["target_groups"], {"targets"}),
    ("ec2:CreateTags", "UnauthorizedOperation", ["tag"], {"tagged"}),
]


@pytest.mark.parametrize("api,code,steps,absent", DENIED, ids=[f"{a}-{c}" for a, c, _, _ in DENIED])
def test_a_refused_isolation_step_is_recorded_and_every_other_step_stands(dep, api, code, steps, absent):
    world = isolation_world(dep)
    ev, incident_id = finding(world)
    before = instance_view(dep, world)
    with inject(api, code, times=1, message="not authorized to perform this operation") as fault:
        run = local.execute(ev, dep)
    assert fault.raised == 1
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert f"isolation: {code}: {steps[0]} on" in run.cause and "nothing was undone" in run.cause
    item = instance_item(run, world["instanceId"])
    isolation = item["isolation"]
    assert (isolation["status"], isolation["error"]) == ("failed", code)
    assert [s for s, status in isolation["steps"].items() if status == "failed"] == steps
    failures = summary(run)["failures"]
    assert (failures[0]["task"], failures[0]["step"], failures[0]["api"], failures[0]["error"]) == (
        "isolation", steps[0], api, code)
    assert [f["step"] for f in failures] == steps  # a step that could not run for it says why (no group to use)
    assert summary(run)["outcome"] == "partially_contained"
    timeline = recorded(dep, run, incident_id, "partially_contained", world["instanceId"])["timeline"]
    assert [e.get("step") for e in timeline if e["status"] == "failed"] == steps
    found = facts(dep, world, incident_id)
    assert {k for k, v in found.items() if not v} == absent  # exactly the refused effect is missing
    after = instance_view(dep, world)
    if "network" in absent:  # never moved half way: still in its own group, not in the allow-all one
        assert after["interfaces"] == before["interfaces"]
    if "tagged" not in absent:
        assert after["tags"]["ir:quarantine"] == "incomplete"
    assert after["tags"]["Environment"] == "production"
    assert item["evidence"]["status"] == "collected"  # a failed isolation does not stop evidence


def test_a_refused_move_to_quarantine_returns_the_interface_to_its_groups(dep):
    """The first move (to the untrack group, which allows all traffic from and to anywhere) succeeds, the second
    (to the quarantine group) is refused. The instance must not be left more exposed than before the response:
    the interface goes back to the groups it had, and the record says so."""
    world = isolation_world(dep)
    ev, _ = finding(world)
    with intercept("ec2:ModifyNetworkInterfaceAttribute", skip=1, code="UnauthorizedOperation") as seen:
        run = local.execute(ev, dep)
    # untrack, quarantine (refused), back to its groups, then the connection-tracking timeouts (networkAclIsolation)
    assert seen["acted"] == 1 and seen["calls"] == 4
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    view = instance_view(dep, world)
    assert view["interfaces"][world["eni"]] == [world["securityGroupId"]]  # read back: out of the allow-all group
    isolation = instance_item(run, world["instanceId"])["isolation"]
    assert isolation["steps"]["network_isolation"] == "failed"
    restored = [e for e in isolation["entries"] if e["status"] == "restored"]
    assert [e["target"] for e in restored] == [world["eni"]] and view["responderGroups"][UNTRACK] in restored[0]["detail"]
    assert "LeftInAllowAllGroup" not in json.dumps(summary(run)["failures"])


def test_an_interface_that_cannot_leave_the_allow_all_group_is_reported_as_danger(dep):
    """The move to quarantine and the way back are both refused: the interface stays in the allow-all untrack
    group. That is more open than before the response, so the failures, the cause and the notification name the
    interface and the group (LeftInAllowAllGroup, DANGER) for a person to fix at once."""
    world = isolation_world(dep)
    ev, incident_id = finding(world)
    with intercept("ec2:ModifyNetworkInterfaceAttribute", skip=1, times=2, code="UnauthorizedOperation") as seen:
        run = local.execute(ev, dep)
    assert seen["acted"] == 2
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    view = instance_view(dep, world)
    untrack = view["responderGroups"][UNTRACK]
    assert view["interfaces"][world["eni"]] == [untrack]  # read back: the state the report must name
    [danger] = [f for f in summary(run)["failures"] if f["error"] == "LeftInAllowAllGroup"]
    assert danger["target"] == world["eni"] and "DANGER" in danger["message"] and untrack in danger["message"]
    timeline = record(dep, incident_id)["timeline"]
    assert any(e.get("error") == "LeftInAllowAllGroup" and e["target"] == world["eni"] for e in timeline)


def test_the_member_role_refused_leaves_the_instance_untouched_and_says_why(dep):
    world = isolation_world(dep)
    ev, incident_id = finding(world)
    before = instance_view(dep, world)
    with inject("sts:AssumeRole", "AccessDenied", times=1) as fault:
        run = local.execute(ev, dep)
    assert fault.raised == 1
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert "isolation: AccountAccessError: " in run.cause and "ir-responder-member" in run.cause
    item = instance_item(run, world["instanceId"])
    assert item["isolation"]["failure"]["error"] == "AccountAccessError"
    timeline = recorded(dep, run, incident_id, "partially_contained", world["instanceId"])["timeline"]
    assert [(e["task"], e["error"]) for e in timeline if e["status"] == "failed"] == [("isolation", "AccountAccessError")]
    assert not any(facts(dep, world, incident_id).values())
    after = instance_view(dep, world)
    assert after == before
    assert item["evidence"]["status"] == "collected"  # the next call could assume the role: evidence is kept


EVIDENCE_DENIED = [  # (api, code, the chain step of the refused volume)
    ("ec2:CreateSnapshots", "UnauthorizedOperation", "create_snapshot_set"),
    ("kms:DescribeKey", "AccessDeniedException", "resolve_sharing_key"),
    ("ec2:CopySnapshot", "UnauthorizedOperation", "copy_snapshot"),
    ("ec2:ModifySnapshotAttribute", "UnauthorizedOperation", "share_with_forensics"),
    ("ebs:ListSnapshotBlocks", "AccessDeniedException", "hash_block_list"),
]


@pytest.mark.parametrize("api,code,step", EVIDENCE_DENIED, ids=[a for a, _, _ in EVIDENCE_DENIED])
def test_a_refused_evidence_step_fails_its_volume_and_keeps_everything_else(dep, api, code, step):
    world = web_instance(dep, volumes=("plain", "aws-ebs"))
    ev, incident_id = finding(world)
    with inject(api, code, times=1, message="not authorized") as fault:
        run = local.execute(ev, dep)
    assert fault.raised == 1
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert f"evidence: {code}:" in run.cause
    item = instance_item(run, world["instanceId"])
    assert item["isolation"]["status"] == "isolated"
    assert all(facts(dep, world, incident_id).values())  # isolation stands
    evidence = item["evidence"]
    assert (evidence["status"], evidence["error"], evidence["done"]) == ("failed", code, True)
    failed = [e for e in evidence["entries"] if e["status"] == "failed"]
    assert any((e.get("step") == step or e.get("api") == api) and e["error"] == code for e in failed), failed
    recorded(dep, run, incident_id, "partially_contained", world["instanceId"])
    member, forensics = evidence_snapshots(dep, world, MEMBER), evidence_snapshots(dep, world, FORENSICS)
    if api == "ec2:CreateSnapshots":
        assert evidence["snapshots"] == [] and member == {} and forensics == {}
        return
    items = evidence["snapshots"]
    assert sorted((i["stage"], i.get("error")) for i in items) == [("done", None), ("failed", code)]
    bad = next(i for i in items if i["stage"] == "failed")
    assert bad["volumeId"] in evidence["message"]
    # nothing of the failed volume is deleted, nothing stays shared, no digest is claimed for it
    assert bad["source"]["snapshotId"] in member
    assert all(s["sharedWith"] == [] for s in member.values())
    chain = [bad["source"]] + [bad[k] for k in ("sharingCopy", "forensicsCopy") if k in bad]
    for part in chain:
        snap = member.get(part["snapshotId"]) or forensics.get(part["snapshotId"])
        assert snap is not None and "ir:hash" not in snap["tags"]
    good = next(i for i in items if i["stage"] == "done")
    assert member[good["source"]["snapshotId"]]["tags"]["ir:hash"] == good["digest"]


# --------------------------------------------------------------------------------------------------------
# Resources that vanish mid-way, snapshots that end in error
# --------------------------------------------------------------------------------------------------------
def test_an_instance_terminated_mid_way_fails_loudly_and_keeps_what_was_done(dep):
    """Terminated between the responder's first look and its first change: every call on the instance and its
    interface answers NotFound (moto's codes), which the output names; what does not depend on the instance
    (detach, deregistration, the role's sessions) still happens."""
    world = isolation_world(dep)
    ev, incident_id = finding(world)
    gone = "InvalidInstanceID.NotFound"
    with inject("ec2:ModifyInstanceAttribute", gone, message=f"The instance ID '{world['instanceId']}' does not exist"), \
            inject("ec2:ModifyNetworkInterfaceAttribute", "InvalidNetworkInterfaceID.NotFound"), \
            inject("ec2:ReplaceIamInstanceProfileAssociation", "InvalidAssociationID.NotFound"), \
            inject("ec2:CreateTags", gone), \
            intercept("ec2:DescribeInstances", skip=1, times=10, code=gone):
        run = local.execute(ev, dep)
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert gone in run.cause
    item = instance_item(run, world["instanceId"])
    steps = item["isolation"]["steps"]
    assert {s for s, status in steps.items() if status == "failed"} == {
        "termination_protection", "delete_on_termination", "network_isolation", "connection_tracking",
        "instance_profile", "tag"}
    assert {s for s, status in steps.items() if status == "done"} >= {
        "auto_scaling", "revoke_older_sessions", "classic_load_balancers", "target_groups"}
    captured = {v["volumeId"] for v in item["isolation"]["metadata"]["volumes"]}
    assert {(f.get("api"), f["error"]) for f in summary(run)["failures"]} == {
        ("ec2:ModifyInstanceAttribute", gone), ("ec2:ModifyNetworkInterfaceAttribute", "InvalidNetworkInterfaceID.NotFound"),
        ("ec2:ReplaceIamInstanceProfileAssociation", "InvalidAssociationID.NotFound"), ("ec2:CreateTags", gone),
        (None, "VolumeMissing")}  # the evidence: each captured volume named (below)
    timeline = recorded(dep, run, incident_id, "partially_contained", world["instanceId"])["timeline"]
    assert {(e.get("api"), e["error"]) for e in timeline if e["status"] == "failed"} == {
        (f.get("api"), f["error"]) for f in summary(run)["failures"]}
    assert {e["target"] for e in timeline if e.get("error") == "VolumeMissing"} == captured
    found = facts(dep, world, incident_id)
    assert found["detached"] and found["revoked"] and found["classic"] and found["targets"]
    evidence = item["evidence"]  # every volume the isolation captured is accounted for, with what became of it
    assert (evidence["status"], evidence["error"]) == ("failed", "VolumeMissing")
    assert {m["volumeId"] for m in evidence["missingVolumes"]} == {
        v["volumeId"] for v in item["isolation"]["metadata"]["volumes"]} != set()
    assert "the instance no longer exists" in evidence["message"]


def test_a_snapshot_deleted_before_its_forensics_copy_fails_with_the_aws_code(dep):
    world = web_instance(dep)
    ev, incident_id = finding(world)
    ec2 = dep.client("ec2")

    def delete_sources():
        for sid in evidence_snapshots(dep, world, MEMBER):
            ec2.delete_snapshot(SnapshotId=sid)

    with intercept("ec2:CopySnapshot", before=delete_sources) as seen:
        run = local.execute(ev, dep)
    assert seen["acted"] == 1
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert "evidence: InvalidSnapshot.NotFound:" in run.cause
    item = instance_item(run, world["instanceId"])
    evidence = item["evidence"]
    assert (evidence["status"], evidence["error"]) == ("failed", "InvalidSnapshot.NotFound")
    [volume] = evidence["snapshots"]
    assert (volume["stage"], volume["error"]) == ("failed", "InvalidSnapshot.NotFound")
    assert [(f["api"], f["error"]) for f in summary(run)["failures"]] == [("ec2:CopySnapshot", "InvalidSnapshot.NotFound")]
    assert evidence_snapshots(dep, world, FORENSICS) == {}
    assert all(facts(dep, world, incident_id).values())  # isolation stands
    recorded(dep, run, incident_id, "partially_contained", world["instanceId"])


def test_a_snapshot_deleted_while_pending_fails_with_snapshot_failed(dep):
    world = web_instance(dep)
    ev, incident_id = finding(world)
    ec2 = dep.client("ec2")

    def delete_sources():
        for sid in evidence_snapshots(dep, world, MEMBER):
            ec2.delete_snapshot(SnapshotId=sid)

    # DescribeSnapshots: the 1st call looks for an earlier set; before the 2nd (the first state poll) it is gone
    with intercept("ec2:DescribeSnapshots", skip=1, before=delete_sources) as seen:
        run = local.execute(ev, dep)
    assert seen["acted"] == 1
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    evidence = instance_item(run, world["instanceId"])["evidence"]
    assert (evidence["status"], evidence["error"]) == ("failed", "SnapshotFailed")
    assert "no longer exists" in evidence["message"] and "SnapshotFailed" in run.cause
    assert evidence["invocations"] <= 6  # gave up after a few polls, not after seven days
    recorded(dep, run, incident_id, "partially_contained", world["instanceId"])


def test_a_volume_deleted_before_the_snapshot_set_is_reported(dep):
    """A data volume that the isolation's metadata lists is detached and deleted just before CreateSnapshots.
    The evidence of that volume is missing: the output must say so (a failed or at least reported volume), never
    `collected` as if the set were complete."""
    world = web_instance(dep, volumes=("plain", "plain"))
    ev, _ = finding(world)
    ec2 = dep.client("ec2")
    data = world["volumes"][1]

    def delete_volume():
        ec2.detach_volume(VolumeId=data, InstanceId=world["instanceId"], Device="/dev/sdf")
        ec2.delete_volume(VolumeId=data)

    with intercept("ec2:CreateSnapshots", before=delete_volume):
        run = local.execute(ev, dep)
    item = instance_item(run, world["instanceId"])
    assert data in [v["volumeId"] for v in item["isolation"]["metadata"]["volumes"]]
    evidence = item["evidence"]
    assert (evidence["status"], evidence["error"]) == ("failed", "VolumeMissing")
    assert [v["volumeId"] for v in evidence["missingVolumes"]] == [data]
    assert data not in json.dumps(evidence.get("snapshots"))  # no snapshot claimed for it
    assert ("evidence", data, "VolumeMissing") in {(f["task"], f["target"], f["error"]) for f in summary(run)["failures"]}
    assert run.status == "FAILED"


def test_a_forensics_copy_ending_in_error_fails_its_volume_and_removes_the_share(dep):
    """The forensics account's copy of one volume ends in state `error` (gaps_ebs.fail_snapshots): that volume
    fails with SnapshotFailed and the copy's StateMessage, its share is removed, its snapshots are kept without a
    digest; the other volume completes."""
    world = web_instance(dep, volumes=("plain", "aws-ebs"))
    ev, incident_id = finding(world)
    gaps_ebs.fail_snapshots(FORENSICS, world["volumes"][1], "Internal error while copying the snapshot")
    run = local.execute(ev, dep)
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    assert "SnapshotFailed" in run.cause and "Internal error while copying" in run.cause
    evidence = instance_item(run, world["instanceId"])["evidence"]
    assert (evidence["status"], evidence["error"]) == ("failed", "SnapshotFailed")
    items = {i["volumeId"]: i for i in evidence["snapshots"]}
    bad, good = items[world["volumes"][1]], items[world["volumes"][0]]
    assert (bad["stage"], bad["error"], bad["shared"]) == ("failed", "SnapshotFailed", "removed")
    assert bad["forensicsCopy"]["state"] == "error"
    assert good["stage"] == "done" and good["digest"]
    member, forensics = evidence_snapshots(dep, world, MEMBER), evidence_snapshots(dep, world, FORENSICS)
    assert all(s["sharedWith"] == [] for s in member.values())
    assert forensics[bad["forensicsCopy"]["snapshotId"]]["state"] == "error"  # kept as it is, for the record
    for sid in (bad["source"]["snapshotId"], bad["sharingCopy"]["snapshotId"]):
        assert member[sid]["state"] == "completed" and "ir:hash" not in member[sid]["tags"]
    assert all(facts(dep, world, incident_id).values())
    recorded(dep, run, incident_id, "partially_contained", world["instanceId"])


# --------------------------------------------------------------------------------------------------------
# A response lost after the change was made: the retry finds what the lost call made
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["ec2:CreateSecurityGroup", "ec2:CreateSnapshots", "ec2:CopySnapshot"])
def test_a_lost_response_is_retried_without_making_anything_twice(dep, api):
    world = web_instance(dep, volumes=("plain", "aws-ebs"))
    ev, incident_id = finding(world)
    with intercept(api, lose_response=True) as seen:
        run = local.execute(ev, dep)
    assert seen["acted"] == 1
    assert run.status == "SUCCEEDED", run.cause
    assert [error for error, _ in task_failures(run)] == ["TransientAwsError"]
    assert all(facts(dep, world, incident_id).values())
    assert instance_view(dep, world)["vpcGroups"] == 4
    member, forensics = evidence_snapshots(dep, world, MEMBER), evidence_snapshots(dep, world, FORENSICS)
    kinds = sorted(s["description"].split(" evidence ")[1].split(" ")[0] for s in member.values())
    assert kinds == ["sharing-copy", "source", "source"]  # one set, one re-encrypted copy of the aws/ebs volume
    assert len(forensics) == 2
    assert instance_item(run, world["instanceId"])["evidence"]["status"] == "collected"
    recorded(dep, run, incident_id, "contained", world["instanceId"])
