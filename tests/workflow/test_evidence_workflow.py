"""Evidence through the shipped state machine (local.execute): the CollectEvidence -> EvidenceDone -> WaitForEvidence
loop, three accounts (security, member, forensics), three volumes, retention over eight incidents, a forced digest
mismatch, a snapshot in error, a crashing task, a dry run."""
from __future__ import annotations

from unittest import mock

import pytest
from botocore.exceptions import ClientError

from responder import blocklist
from state_machines import gaps_ebs, gaps_snapshot_lock, local
from tests.worlds.deployment import deployment
from tests.worlds.evidence import (
    FORENSICS,
    MEMBER,
    REGION,
    build_instance,
    evidence_of,
    evidence_snapshots,
    finalize_output,
    manual_request,
    run_record,
    tags,
)
from tests.worlds.reliability import intercept
from tests.worlds.workflow import event

EVIDENCE_TAGS = {"ir:incident", "ir:source", "ir:collected-by", "ir:hash"}


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION, default_amis=False)  # no real AMI


@pytest.fixture(autouse=True)
def fresh_hooks(dep):
    assert len({dep.security_account, MEMBER, FORENSICS}) == 3
    gaps_ebs.reset()
    yield
    gaps_ebs.reset()


def describe(dep, account, ids):
    found = dep.client("ec2", account).describe_snapshots(SnapshotIds=list(ids))["Snapshots"]
    return {s["SnapshotId"]: s for s in found}


def test_three_volumes_end_in_three_verified_forensics_copies(dep):
    inst = build_instance(dep)  # unencrypted root, aws/ebs, workload's customer key
    run = local.execute(manual_request(inst.instance_id, "IR-WF-THREE"), dep)
    evidence = evidence_of(run, inst.instance_id)
    assert evidence["status"] == "collected" and evidence["done"] is True, evidence.get("message")
    assert finalize_output(run)["error"] != "EvidenceIntegrityError"
    items = evidence["snapshots"]
    assert {i["volumeId"] for i in items} == set(inst.volumes.values())

    copies = describe(dep, FORENSICS, [i["forensicsCopy"]["snapshotId"] for i in items])
    sources = describe(dep, MEMBER, [i["source"]["snapshotId"] for i in items])
    assert len(copies) == 3
    for item in items:
        copy, source = copies[item["forensicsCopy"]["snapshotId"]], sources[item["source"]["snapshotId"]]
        assert copy["OwnerId"] == FORENSICS and copy["KmsKeyId"] == dep.forensics_key_arn
        assert set(tags(copy)) == EVIDENCE_TAGS  # exactly the four runbook tags
        assert tags(copy)["ir:hash"] == tags(source)["ir:hash"] == item["digest"]
        assert tags(copy)["ir:incident"] == "IR-WF-THREE" and tags(copy)["ir:collected-by"] == run.arn
        size = item["sizeGiB"]
        assert item["digest"] == blocklist.digest_of(size, 524288, gaps_ebs.listing(item["volumeId"], size))
        assert dep.client("ec2").describe_snapshot_attribute(
            SnapshotId=item["sharedSnapshotId"], Attribute="createVolumePermission")["CreateVolumePermissions"] == []

    # every snapshot id, copy id, key ARN and digest is in the evidence manifest (the output only counts them)
    assert finalize_output(run)["instances"][0]["evidence"]["counts"] == {"volumes": 3, "done": 3, "failed": 0}
    where = run_record(run)["manifest"]
    summary = dep.client("s3", FORENSICS).get_object(Bucket=dep.bucket, Key=where["key"],
                                                     VersionId=where["versionId"])["Body"].read().decode()
    for item in items:
        for part in ("source", "sharingCopy", "forensicsCopy"):
            if part in item:
                assert item[part]["snapshotId"] in summary and item[part]["digest"] in summary
        assert item["forensicsCopy"]["kmsKeyId"] in summary
    assert dep.sharing_keys[MEMBER] in summary and dep.forensics_key_arn in summary

    # the wait loop: 9 history events per round, waits growing geometrically
    rounds = run.states.count("WaitForEvidence")
    assert run.states.count("CollectEvidence") == rounds + 1 == evidence["invocations"]
    entered = [n for n, e in enumerate(run.events) if (e.get("stateEnteredEventDetails") or {}).get("name") == "CollectEvidence"]
    assert {b - a for a, b in zip(entered, entered[1:])} == {9}


def test_an_eighth_incident_keeps_the_first_collection_seven_member_collections_and_every_locked_copy(dep):
    """Manual requests (they collect whatever the interval): the first isolates the instance, the next seven find
    it isolated (follow-ups). The member side keeps 7 collections: the first and the six newest follow-ups. A
    forensics copy is locked (EBS Snapshot Lock, README "Custody") and outlives the count until its lock expires;
    the first collection's copy outlives its lock too."""
    inst = build_instance(dep, kinds=())  # one volume: one snapshot per collection and side
    for n in range(1, 9):
        run = local.execute(manual_request(inst.instance_id, f"IR-WF-RET-{n}"), dep)
        assert evidence_of(run, inst.instance_id)["status"] == "collected"
    member = evidence_snapshots(dep, MEMBER, inst.instance_id)
    forensics = evidence_snapshots(dep, FORENSICS, inst.instance_id)
    assert len(member) == 7 and len(forensics) == 8
    assert {tags(s)["ir:incident"] for s in member} == {f"IR-WF-RET-{n}" for n in (1, 3, 4, 5, 6, 7, 8)}
    for snapshot in member + forensics:  # the mark is in the immutable description
        assert snapshot["Description"].endswith(", follow-up") is (tags(snapshot)["ir:incident"] != "IR-WF-RET-1")
    ec2 = dep.client("ec2", account=FORENSICS)
    locks = ec2.describe_locked_snapshots(SnapshotIds=[s["SnapshotId"] for s in forensics])["Snapshots"]
    assert {lock["LockState"] for lock in locks} == {"compliance"} and len(locks) == 8
    last = evidence_of(run, inst.instance_id)["retention"]
    assert last["member"]["first"] == last["forensics"]["first"] == ["IR-WF-RET-1"]
    copy_of = {tags(s)["ir:incident"]: s["SnapshotId"] for s in forensics}
    assert len(last["member"]["deleted"]) == 1
    assert last["forensics"]["deleted"] == [] and last["forensics"]["locked"] == [copy_of["IR-WF-RET-2"]]
    with pytest.raises(ClientError) as refused:  # nobody deletes a locked copy, an administrator neither
        ec2.delete_snapshot(SnapshotId=copy_of["IR-WF-RET-1"])
    assert refused.value.response["Error"]["Code"] == gaps_snapshot_lock.LOCKED_ERROR

    # once the locks of IR-2's and IR-1's copies have run out, the next retention deletes IR-2's (an aged follow-up)
    # and keeps IR-1's (the first collection); IR-3's, aged too, is still locked
    gaps_snapshot_lock.expire(copy_of["IR-WF-RET-2"])
    gaps_snapshot_lock.expire(copy_of["IR-WF-RET-1"])
    run = local.execute(manual_request(inst.instance_id, "IR-WF-RET-9"), dep)
    retention = evidence_of(run, inst.instance_id)["retention"]
    assert retention["forensics"]["deleted"] == [copy_of["IR-WF-RET-2"]]
    assert retention["forensics"]["locked"] == [copy_of["IR-WF-RET-3"]]
    remaining = {tags(s)["ir:incident"] for s in evidence_snapshots(dep, FORENSICS, inst.instance_id)}
    assert remaining == {f"IR-WF-RET-{n}" for n in (1, *range(3, 10))}


def test_a_finding_flood_on_an_isolated_instance_adds_no_collection_and_keeps_the_first(dep):
    """Nine GuardDuty findings on one instance (an attacker keeping the quarantined box noisy): the first isolates
    it and collects; the eight others find it isolated and collected less than evidenceMinIntervalMinutes (60)
    ago: no new collection, the record says which one stands. Collection #1 is there on both sides."""
    inst = build_instance(dep, kinds=())
    runs = []
    for _ in range(9):
        ev = event("guardduty-instance.json", account=MEMBER, region=REGION)
        ev["detail"]["resource"]["instanceDetails"]["instanceId"] = inst.instance_id
        runs.append(local.execute(ev, dep))
    first = evidence_of(runs[0], inst.instance_id)
    assert first["status"] == "collected"
    first_incident = finalize_output(runs[0])["incidentId"]
    for run in runs[1:]:
        evidence = evidence_of(run, inst.instance_id)
        assert evidence["status"] == "skipped" and evidence["recentCollection"]["incident"] == first_incident
        assert first_incident in evidence["reason"] and "evidenceMinIntervalMinutes" in evidence["reason"]
        assert finalize_output(run)["outcome"] != "failed"
    for account in (MEMBER, FORENSICS):
        snapshots = evidence_snapshots(dep, account, inst.instance_id)
        assert [tags(s)["ir:incident"] for s in snapshots] == [first_incident]
        assert tags(snapshots[0])["ir:hash"] == first["snapshots"][0]["digest"]


def test_every_volume_detached_before_evidence_is_named_missing_and_the_incident_is_not_contained(dep):
    """Between isolation and evidence every volume is detached: each volume the isolation captured is reported
    VolumeMissing by name (with what became of it), the evidence fails, the outcome is not `contained`."""
    inst = build_instance(dep)
    ec2 = dep.client("ec2")

    def detach_all():
        for volume in inst.volumes.values():
            ec2.detach_volume(VolumeId=volume, InstanceId=inst.instance_id, Force=True)

    # the isolation's DescribeInstances is the first; the evidence's own is the second
    with intercept("ec2:DescribeInstances", skip=1, before=detach_all) as seen:
        run = local.execute(manual_request(inst.instance_id, "IR-WF-VANISH"), dep)
    assert seen["acted"] == 1
    evidence = evidence_of(run, inst.instance_id)
    assert (evidence["status"], evidence["error"]) == ("failed", "VolumeMissing")
    missing = {m["volumeId"]: m for m in evidence["missingVolumes"]}
    assert set(missing) == set(inst.volumes.values())
    for volume, item in missing.items():
        assert item["error"] == "VolumeMissing" and volume in evidence["message"]
        assert "still exists, detached" in item["message"]
    summary = finalize_output(run)
    assert summary["outcome"] != "contained" and run.status == "FAILED"
    assert evidence_snapshots(dep, MEMBER, inst.instance_id) == []


def test_snapshots_not_yet_visible_after_create_and_share_are_waited_for_never_failed(dep):
    """EC2 eventual consistency at the exact calls: the new snapshots are unknown to CreateTags (ir:source) for two
    calls, the re-encrypted copies to the share, and the shared snapshots to the forensics account's CopySnapshot
    for seven calls (longer than the in-call back-off: the next evidence calls go on). Nothing fails; the chain
    completes with every tag and copy, read back from both accounts."""
    inst = build_instance(dep)
    with gaps_ebs.not_yet_visible("ec2:CreateTags", "ec2:DescribeSnapshotAttribute", calls=2) as early, \
            gaps_ebs.not_yet_visible("ec2:CopySnapshot", calls=7) as late:
        run = local.execute(manual_request(inst.instance_id, "IR-WF-NOTYET"), dep)
    evidence = evidence_of(run, inst.instance_id)
    assert evidence["status"] == "collected", evidence.get("message")
    assert any(api == "ec2:CreateTags" for api, _ in early) and any(api == "ec2:DescribeSnapshotAttribute" for api, _ in early)
    assert max(late.values()) == 7
    statuses = {e["status"] for e in evidence["entries"]}
    assert "not_yet" in statuses and "deferred" in statuses
    assert not [e for e in evidence["entries"] if e["status"] == "failed"]
    copies = describe(dep, FORENSICS, [i["forensicsCopy"]["snapshotId"] for i in evidence["snapshots"]])
    sources = describe(dep, MEMBER, [i["source"]["snapshotId"] for i in evidence["snapshots"]])
    assert len(copies) == len(sources) == 3
    for item in evidence["snapshots"]:
        source = tags(sources[item["source"]["snapshotId"]])
        assert source["ir:source"].endswith(f"volume/{item['volumeId']}") and source["ir:hash"] == item["digest"]
        assert tags(copies[item["forensicsCopy"]["snapshotId"]])["ir:hash"] == item["digest"]


def test_a_forced_digest_mismatch_fails_the_incident(dep):
    inst = build_instance(dep, kinds=("customer",))
    gaps_ebs.tamper_listing(FORENSICS, inst.volumes["customer"])
    run = local.execute(manual_request(inst.instance_id, "IR-WF-TAMPER"), dep)
    assert (run.status, run.error) == ("FAILED", "EvidenceIntegrityError")
    evidence = evidence_of(run, inst.instance_id)
    assert (evidence["status"], evidence["error"]) == ("failed", "EvidenceIntegrityError")
    bad = next(i for i in evidence["snapshots"] if i["volumeId"] == inst.volumes["customer"])
    assert bad["source"]["digest"] != bad["forensicsCopy"]["digest"]
    assert "ir:hash" not in tags(describe(dep, FORENSICS, [bad["forensicsCopy"]["snapshotId"]])[bad["forensicsCopy"]["snapshotId"]])


def test_a_snapshot_in_error_fails_the_incident_with_snapshot_failed(dep):
    inst = build_instance(dep, kinds=("aws-ebs",))
    gaps_ebs.fail_snapshots(MEMBER, inst.volumes["aws-ebs"])
    run = local.execute(manual_request(inst.instance_id, "IR-WF-SNAPERR"), dep)
    assert run.status == "FAILED"
    evidence = evidence_of(run, inst.instance_id)
    assert (evidence["status"], evidence["error"]) == ("failed", "SnapshotFailed")
    assert finalize_output(run)["outcome"] in ("failed", "partially_contained")


def test_a_crashing_evidence_task_keeps_every_id_it_had_collected(dep):
    inst = build_instance(dep, kinds=())
    from responder import evidence as chain

    calls = []
    real = chain._Run.advance

    def crash_on_third_call(self):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a bug")
        return real(self)

    with mock.patch.object(chain._Run, "advance", crash_on_third_call):
        run = local.execute(manual_request(inst.instance_id, "IR-WF-CRASH"), dep)
    item = next(i for i in finalize_output(run)["instances"] if i["instanceId"] == inst.instance_id)
    assert item["evidence"]["status"] == "failed" and item["evidence"]["failure"]["error"] == "RuntimeError"
    last = evidence_of(run, inst.instance_id)  # the last state stored in the record before the crash
    assert last["snapshots"][0]["source"]["snapshotId"] == evidence_snapshots(dep, MEMBER, inst.instance_id)[0]["SnapshotId"]
    assert run.status == "FAILED"


def test_a_dry_run_plans_the_chain_and_changes_nothing(dep):
    inst = build_instance(dep)
    before = {a: len(evidence_snapshots(dep, a, inst.instance_id)) for a in (MEMBER, FORENSICS)}
    run = local.execute(manual_request(inst.instance_id, "IR-WF-DRY", dry_run=True), dep)
    evidence = evidence_of(run, inst.instance_id)
    assert (evidence["status"], evidence["done"]) == ("planned", True)
    assert run.states.count("CollectEvidence") == 1 and "WaitForEvidence" not in run.states
    plan = [e["api"] for e in finalize_output(run)["plan"]]
    assert plan.count("ec2:CreateSnapshots") == 1 and plan.count("ec2:CopySnapshot") == 5
    assert {a: len(evidence_snapshots(dep, a, inst.instance_id)) for a in (MEMBER, FORENSICS)} == before == {
        MEMBER: 0, FORENSICS: 0}
