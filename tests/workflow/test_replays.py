"""Replays: every workflow scenario executed again changes nothing, read back from a complete snapshot of the AWS
state the responder could touch (`tests.worlds.reliability.aws_state`: the member account's IAM users, keys,
attached and inline policies, roles, instance profiles; security groups and their rules; instances with their
attributes, interface groups, profile and tags; volumes; profile associations; Auto Scaling groups; Classic load
balancer and target-group registrations; snapshots with their tags and shares in the member and the forensics
account; the evidence bucket's objects).

Three kinds of replay, for each scenario (IAM user finding, assumed-role finding, instance finding, AccessKey
finding with instanceDetails, manual request for a user, a role and an instance, manual dry run):

1. **GuardDuty re-publishes the finding** (same ``detail.id``, higher ``service.count``): the execution ends as
   ``duplicate`` and the snapshot is *identical*, byte for byte.
2. **A person starts the same manual request again** (same ``incidentId``, a fresh execution): it responds again
   (manual requests are never duplicates) and the snapshot is *identical*: every action reads first, the
   revoke-older-sessions cut-off stays pinned to the incident, the evidence chain finds the incident's snapshot
   set and copies by their description and tags. (The only writes are the attempt's own records: a new version of
   the manifest and of the CloudTrail capture, which the snapshot holds by key; the incident record.)
3. **The same target in a new finding** (a new ``detail.id``: a new incident on an already-contained target).
   Containment changes nothing: no key, policy attachment, group, rule, interface, profile, Auto Scaling or
   load-balancer registration changes, and no earlier snapshot is changed, unshared or deleted. What a new
   incident legitimately adds, and nothing else:

   * the ``AWSRevokeOlderSessions`` cut-off of a contained user or role moves *forward* to the new incident's
     cut-off (UTC now): sessions issued since the first containment are revoked too; it never moves back;
   * the instance's ``ir:incident`` tag keeps naming the first incident; the new one is appended to
     ``ir:incidents`` (``ir:quarantine`` stays ``isolated``; the isolation reports ``already_isolated``; the
     earlier incident stays on its evidence snapshots and metadata object);
   * a new evidence collection: a new snapshot set (and re-encrypted copies) in the member account and new copies
     in the forensics account, all tagged with the new incident; the new incident's write-once metadata object,
     its manifest and CloudTrail capture.

A manual dry run changes nothing, and neither does running it again.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from state_machines import gaps_ebs, local
from tests.worlds.evidence import dep, fresh_hooks  # noqa: F401 - shared fixtures
from tests.worlds.reliability import aws_state, changes, instance_item, summary, web_instance
from tests.worlds.workflow import access_key_event, event

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
REVOKE = "AWSRevokeOlderSessions"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"}, "Action": "sts:AssumeRole"}]}




# -- the world ---------------------------------------------------------------------------------------------
def new_user(dep) -> tuple[str, list[str]]:
    """An IAM user with two access keys."""
    iam = dep.client("iam")
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    return name, [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(2)]


def new_role(dep) -> str:
    """A role with a live session."""
    iam = dep.client("iam")
    name = f"role-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    dep.client("sts").assume_role(RoleArn=arn, RoleSessionName="attacker")
    return name


def instance_finding(instance_id: str, name: str = "guardduty-instance.json") -> dict:
    ev = event(name, account=MEMBER, region=REGION)
    ev["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
    return ev


def republished(ev: dict) -> dict:
    """GuardDuty's re-publication of a finding: same id, higher count, later update."""
    again = json.loads(json.dumps(ev))
    again["detail"]["service"]["count"] += 1
    return again


def new_finding(ev: dict) -> dict:
    """The same activity reported in a new finding (a new id: a new incident)."""
    again = json.loads(json.dumps(ev))
    finding = uuid.uuid4().hex
    again["detail"]["id"] = finding
    again["detail"]["arn"] = again["detail"]["arn"].rsplit("/", 1)[0] + "/" + finding
    return again


def incident_of(ev: dict) -> str:
    return f"gd-{ev['detail']['id']}"


def manual(incident_id: str, *, users=(), roles=(), instances=(), dry_run: bool = False) -> dict:
    return {"manual": {"accountId": MEMBER, "region": REGION, "reason": "replay test", "incidentId": incident_id,
                       "iamUsers": list(users), "roles": list(roles), "instances": list(instances),
                       "dryRun": dry_run}}


def run_ok(request: Any, dep, outcome: str = "contained") -> local.Execution:
    run = local.execute(request, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert summary(run)["outcome"] == outcome, summary(run).get("cause")
    return run


# -- what a new incident may change --------------------------------------------------------------------------
def cutoff_of(document: Any) -> str | None:
    try:
        return document[0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    except (TypeError, KeyError, IndexError):
        return None


def unexpected_for_new_incident(before: dict, after: dict, *, incident: str, cutoff: str,
                                principals: set[tuple[str, str]] = frozenset(), instance: str | None = None) -> dict:
    """The changes between two snapshots that a new incident on already-contained targets must not make (see the
    module docstring). `principals`: {("users"|"roles", name)} whose revoke cut-off may move forward."""
    new_snapshots = {side: set(after[key]["snapshots"]) - set(before[key]["snapshots"])
                     for side, key in (("member", "ec2"), ("forensics", "forensics"))}
    for side, key in (("member", "ec2"), ("forensics", "forensics")):
        for sid in new_snapshots[side]:
            snap = after[key]["snapshots"][sid]
            assert snap["tags"].get("ir:incident") == incident and snap["description"].startswith(f"{incident} ")
    added = set(after["forensics"]["bucket"]["perAttempt"]) - set(before["forensics"]["bucket"]["perAttempt"])
    assert all(k.startswith(f"incidents/{incident}/") for k in added)
    assert set(before["forensics"]["bucket"]["perAttempt"]) <= set(after["forensics"]["bucket"]["perAttempt"])

    def allowed(path: tuple, old: Any, new: Any) -> bool:
        if path[:1] == ("iam",) and (path[1], path[2]) in principals and path[3:5] == ("inline", REVOKE):
            if path[5] == "Statement":
                return cutoff_of(new) == cutoff and cutoff_of(old) is not None and cutoff_of(old) < cutoff
            return old == new
        if instance and path == ("ec2", "instances", instance, "tags", "ir:incidents"):
            return new is not None and new.split()[-1] == incident and (old is None or new.startswith(f"{old} "))
        if path[:2] == ("ec2", "snapshots") and path[2] in new_snapshots["member"]:
            return True
        if path[:2] == ("forensics", "snapshots") and path[2] in new_snapshots["forensics"]:
            return True
        if path[:3] == ("forensics", "bucket", "writeOnce"):
            return old is None and path[3].startswith(f"incidents/{incident}/instances/")
        return path == ("forensics", "bucket", "perAttempt")

    return {p: v for p, v in changes(before, after).items() if not allowed(p, *v)}


def new_collection(before: dict, after: dict, volumes: int) -> tuple[int, int]:
    """(new source snapshots in the member account, new copies in the forensics account)."""
    sources = [s for sid, s in after["ec2"]["snapshots"].items()
               if sid not in before["ec2"]["snapshots"] and s["description"].endswith(" evidence source")]
    copies = set(after["forensics"]["snapshots"]) - set(before["forensics"]["snapshots"])
    return len(sources), len(copies)


def revoke_cutoff(state: dict, kind: str, name: str) -> str | None:
    return cutoff_of((state["iam"][kind][name]["inline"].get(REVOKE) or {}).get("Statement"))


# -- identities -----------------------------------------------------------------------------------------------
def test_iam_user_finding_replayed(dep):
    name, keys = new_user(dep)
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=keys[0])
    first = run_ok(ev, dep)
    contained = aws_state(dep)
    assert set(contained["iam"]["users"][name]["keys"].values()) == {"Inactive"}

    again = run_ok(republished(ev), dep, "duplicate")
    assert again.states.count("ContainIdentities") == 0
    assert changes(contained, aws_state(dep)) == {}

    other = new_finding(ev)
    second = run_ok(other, dep)
    after = aws_state(dep)
    assert unexpected_for_new_incident(contained, after, incident=incident_of(other),
                                       cutoff=summary(second)["cutoff"], principals={("users", name)}) == {}
    assert revoke_cutoff(after, "users", name) == max(summary(first)["cutoff"], summary(second)["cutoff"])
    assert [i["status"] for i in summary(second)["identities"]] in (["already_contained"], ["contained"])


def test_assumed_role_finding_replayed(dep):
    role = new_role(dep)
    ev = access_key_event(account=MEMBER, region=REGION, user_type="AssumedRole", name=role)
    role_id = dep.client("iam").get_role(RoleName=role)["Role"]["RoleId"]
    ev["detail"]["resource"]["accessKeyDetails"]["principalId"] = f"{role_id}:session"  # the issuer (issue 10)
    first = run_ok(ev, dep)
    contained = aws_state(dep)
    assert revoke_cutoff(contained, "roles", role) == summary(first)["cutoff"]

    run_ok(republished(ev), dep, "duplicate")
    assert changes(contained, aws_state(dep)) == {}

    other = new_finding(ev)
    second = run_ok(other, dep)
    after = aws_state(dep)
    assert unexpected_for_new_incident(contained, after, incident=incident_of(other),
                                       cutoff=summary(second)["cutoff"], principals={("roles", role)}) == {}
    assert revoke_cutoff(after, "roles", role) == max(summary(first)["cutoff"], summary(second)["cutoff"])


# -- instances --------------------------------------------------------------------------------------------------
def test_instance_finding_replayed(dep):
    world = web_instance(dep, volumes=("plain", "aws-ebs"))
    iid = world["instanceId"]
    ev = instance_finding(iid)
    first = run_ok(ev, dep)
    assert instance_item(first, iid)["isolation"]["status"] == "isolated"
    assert instance_item(first, iid)["evidence"]["status"] == "collected"
    contained = aws_state(dep)

    again = run_ok(republished(ev), dep, "duplicate")
    assert "IsolateInstance" not in again.states and "CollectEvidence" not in again.states
    assert changes(contained, aws_state(dep)) == {}

    other = new_finding(ev)
    second = run_ok(other, dep)
    after = aws_state(dep)
    assert unexpected_for_new_incident(contained, after, incident=incident_of(other),
                                       cutoff=summary(second)["cutoff"], instance=iid) == {}
    assert after["ec2"]["instances"][iid]["tags"]["ir:incident"] == incident_of(ev)  # the first stays named
    assert after["ec2"]["instances"][iid]["tags"]["ir:incidents"] == incident_of(other)
    assert after["ec2"]["instances"][iid]["tags"]["ir:quarantine"] == "isolated"
    # a new finding on the isolated instance within evidenceMinIntervalMinutes: the first collection stands
    assert new_collection(contained, after, 2) == (0, 0)
    item = instance_item(second, iid)
    assert item["evidence"]["status"] == "skipped"
    assert item["evidence"]["recentCollection"]["incident"] == incident_of(ev)
    assert item["isolation"]["steps"]["network_isolation"] == "unchanged"
    assert item["isolation"]["status"] == "already_isolated"
    assert {s for s, status in item["isolation"]["steps"].items() if status == "done"} == {
        "capture_metadata", "later_incident"}


def test_access_key_finding_with_instance_details_replayed(dep):
    """Stolen instance credentials: the identity branch revokes the role's sessions, the instance branch isolates
    the instance and collects its evidence."""
    world = web_instance(dep)
    iid, role = world["instanceId"], world["roleName"]
    ev = instance_finding(iid, "guardduty-instance-credentials.json")
    ev["detail"]["resource"]["accessKeyDetails"]["userName"] = role
    role_id = dep.client("iam").get_role(RoleName=role)["Role"]["RoleId"]
    ev["detail"]["resource"]["accessKeyDetails"]["principalId"] = f"{role_id}:{iid}"
    first = run_ok(ev, dep)
    assert {"ContainIdentities", "IsolateInstance"} <= set(first.states)
    contained = aws_state(dep)
    assert revoke_cutoff(contained, "roles", role) == summary(first)["cutoff"]

    again = run_ok(republished(ev), dep, "duplicate")
    assert not {"ContainIdentities", "IsolateInstance", "CollectEvidence"} & set(again.states)
    assert changes(contained, aws_state(dep)) == {}

    other = new_finding(ev)
    second = run_ok(other, dep)
    after = aws_state(dep)
    assert unexpected_for_new_incident(contained, after, incident=incident_of(other),
                                       cutoff=summary(second)["cutoff"], principals={("roles", role)},
                                       instance=iid) == {}
    assert revoke_cutoff(after, "roles", role) == max(summary(first)["cutoff"], summary(second)["cutoff"])
    assert new_collection(contained, after, 1) == (0, 0)  # within the collection interval: no second collection
    assert instance_item(second, iid)["evidence"]["recentCollection"]["incident"] == incident_of(ev)


# -- manual requests ---------------------------------------------------------------------------------------------
def test_the_same_manual_request_started_again_changes_nothing(dep):
    user, _ = new_user(dep)
    role = new_role(dep)
    world = web_instance(dep, volumes=("plain", "aws-ebs"))
    iid = world["instanceId"]
    request = manual(f"IR-{uuid.uuid4().hex[:8]}", users=[user], roles=[role], instances=[iid])
    first = run_ok(request, dep)
    contained = aws_state(dep)
    assert set(contained["iam"]["users"][user]["keys"].values()) == {"Inactive"}
    assert revoke_cutoff(contained, "roles", role) == summary(first)["cutoff"]

    again = run_ok(request, dep)  # a fresh execution of the very same request
    assert {"ContainIdentities", "IsolateInstance", "CollectEvidence"} <= set(again.states)
    assert changes(contained, aws_state(dep)) == {}
    out = summary(again)
    assert out["cutoff"] == summary(first)["cutoff"]  # pinned to the incident
    assert [i["status"] for i in out["identities"]] == ["already_contained", "already_contained"]
    item = instance_item(again, iid)
    assert item["isolation"]["status"] == "already_isolated"
    assert item["evidence"]["status"] == "collected"
    ids = lambda run: sorted(p["snapshotId"] for i in instance_item(run, iid)["evidence"]["snapshots"]  # noqa: E731
                             for p in (i["source"], i.get("sharingCopy"), i["forensicsCopy"]) if p)
    assert ids(again) == ids(first)  # the same evidence, found again
    assert [t["changes"] for t in out["identities"]] == [0, 0] and item["isolation"]["changes"] == 0
    made = [e["api"] for e in item["isolation"]["entries"] if e["status"] == "done"]
    assert made == []


def test_a_replayed_evidence_chain_makes_no_change_call(dep):
    """The end state of a replay is identical (test above), but on the way the evidence chain of the same incident
    must not change anything either: no share re-opened to the forensics account for a snapshot whose forensics
    copy is already there."""
    world = web_instance(dep)
    iid = world["instanceId"]
    request = manual(f"IR-{uuid.uuid4().hex[:8]}", instances=[iid])
    run_ok(request, dep)
    again = run_ok(request, dep)
    made = [(e["api"], e["target"]) for e in instance_item(again, iid)["evidence"]["entries"] if e["status"] == "done"]
    assert made == []


def test_a_manual_dry_run_and_its_replay_change_nothing(dep):
    user, _ = new_user(dep)
    role = new_role(dep)
    world = web_instance(dep)
    iid = world["instanceId"]
    request = manual(f"IR-{uuid.uuid4().hex[:8]}", users=[user], roles=[role], instances=[iid], dry_run=True)
    before = aws_state(dep)
    first = run_ok(request, dep, "dry_run_plan")
    assert changes(before, aws_state(dep)) == {}
    second = run_ok(request, dep, "dry_run_plan")
    assert changes(before, aws_state(dep)) == {}
    plan = lambda run: [(e.get("api"), e["target"]) for e in summary(run)["plan"]]  # noqa: E731
    assert plan(second) == plan(first) and len(plan(first)) > 20
    assert {"iam:AttachUserPolicy", "iam:UpdateAccessKey", "iam:PutRolePolicy", "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:CreateSnapshots", "ec2:CopySnapshot"} <= {api for api, _ in plan(first)}
