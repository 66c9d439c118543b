"""Evidence through the shipped state machine (local.execute): the CollectEvidence -> EvidenceDone -> WaitForEvidence
loop, three accounts (security, member, forensics), three volumes, retention over eight incidents, a forced digest
mismatch, a snapshot in error, a crashing task, a dry run."""
from __future__ import annotations

import os
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from responder import blocklist
from state_machines import gaps_ebs, gaps_snapshot_lock, local
from tests.evidence_world import (
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

EVIDENCE_TAGS = {"ir:incident", "ir:source", "ir:collected-by", "ir:hash"}


@pytest.fixture(scope="module")
def dep():
    with mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}):  # the world uses no real AMI
        with local.aws(region=REGION):
            deployment = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)
            assert len({deployment.security_account, MEMBER, FORENSICS}) == 3
            yield deployment


@pytest.fixture(autouse=True)
def fresh_hooks(dep):
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


def test_an_eighth_incident_leaves_seven_member_snapshots_and_every_locked_forensics_copy(dep):
    # README "Custody": the seed's 7 collections per instance is the member side's count; a forensics copy is
    # locked (EBS Snapshot Lock) for the evidence retention and outlives the count until its lock expires
    inst = build_instance(dep, kinds=())  # one volume: one snapshot per collection and side
    for n in range(1, 9):
        run = local.execute(manual_request(inst.instance_id, f"IR-WF-RET-{n}"), dep)
        assert evidence_of(run, inst.instance_id)["status"] == "collected"
    member = evidence_snapshots(dep, MEMBER, inst.instance_id)
    forensics = evidence_snapshots(dep, FORENSICS, inst.instance_id)
    assert len(member) == 7 and len(forensics) == 8
    assert {tags(s)["ir:incident"] for s in member} == {f"IR-WF-RET-{n}" for n in range(2, 9)}
    ec2 = dep.client("ec2", account=FORENSICS)
    locks = ec2.describe_locked_snapshots(SnapshotIds=[s["SnapshotId"] for s in forensics])["Snapshots"]
    assert {lock["LockState"] for lock in locks} == {"compliance"} and len(locks) == 8
    last = evidence_of(run, inst.instance_id)["retention"]
    assert len(last["member"]["deleted"]) == 1
    assert last["forensics"]["deleted"] == [] and len(last["forensics"]["locked"]) == 1
    oldest = next(s for s in forensics if tags(s)["ir:incident"] == "IR-WF-RET-1")
    with pytest.raises(ClientError) as refused:  # nobody deletes a locked copy, an administrator neither
        ec2.delete_snapshot(SnapshotId=oldest["SnapshotId"])
    assert refused.value.response["Error"]["Code"] == gaps_snapshot_lock.LOCKED_ERROR

    # once the lock of the oldest copy has run out, the next incident's retention deletes it (and only it)
    gaps_snapshot_lock.expire(oldest["SnapshotId"])
    run = local.execute(manual_request(inst.instance_id, "IR-WF-RET-9"), dep)
    retention = evidence_of(run, inst.instance_id)["retention"]
    assert retention["forensics"]["deleted"] == [oldest["SnapshotId"]]
    remaining = {tags(s)["ir:incident"] for s in evidence_snapshots(dep, FORENSICS, inst.instance_id)}
    assert remaining == {f"IR-WF-RET-{n}" for n in range(2, 10)}


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
