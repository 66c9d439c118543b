"""Evidence chain against moto, one CollectEvidence invocation at a time (the state machine's loop, by hand):
each phase, idempotent retries, failures, dry run, resumed hashing, retention. Three accounts: member, forensics,
and the security account the responder runs in."""
from __future__ import annotations

from unittest import mock

import pytest
from botocore.exceptions import ClientError

from tests.worlds.evidence import (
    FORENSICS,
    MEMBER,
    REGION,
    build_instance,
    drive,
    evidence_snapshots,
    incident_for,
    run_task,
    tags,
)
from responder import blocklist
from responder.aws.snapshots import Snapshots
from responder.errors import TransientAwsError
from state_machines import gaps_ebs, gaps_snapshot_lock, local
from tests.worlds.evidence import dep, fresh_hooks  # noqa: F401 - shared fixtures

EVIDENCE_TAGS = {"ir:incident", "ir:source", "ir:collected-by", "ir:hash"}




def snapshot(dep, account, snapshot_id):
    return dep.client("ec2", account).describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]


def permissions(dep, snapshot_id):
    return dep.client("ec2").describe_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission")["CreateVolumePermissions"]


def expected_digest(volume_id: str, size: int) -> str:
    return blocklist.digest_of(size, gaps_ebs.BLOCK_SIZE, gaps_ebs.listing(volume_id, size))


def apis(state: dict, status: str = "done") -> list[str]:
    return [e["api"] for e in state["entries"] if e.get("status") == status and e.get("api")]


# -- phase by phase ---------------------------------------------------------------------------------------
def test_start_takes_one_crash_consistent_tagged_set(dep):
    inst = build_instance(dep)
    incident = incident_for(inst.instance_id, "IR-START")
    state = run_task(dep, incident, inst.instance_id)
    assert (state["done"], state["status"], state["phase"], state["waitSeconds"]) == (False, "in_progress", "snapshot", 30)
    assert apis(state) == ["ec2:CreateSnapshots"] + ["ec2:CreateTags"] * 3
    by_volume = {i["volumeId"]: i for i in state["snapshots"]}
    assert set(by_volume) == set(inst.volumes.values())
    for kind, volume in inst.volumes.items():
        snap = snapshot(dep, MEMBER, by_volume[volume]["source"]["snapshotId"])
        assert snap["Description"] == f"IR-START instance {inst.instance_id} evidence source"
        assert tags(snap) == {"ir:incident": "IR-START", "ir:collected-by": incident["executionId"],
                              "ir:source": f"arn:aws:ec2:{REGION}:{MEMBER}:volume/{volume}"}
        assert by_volume[volume]["encrypted"] is (kind != "root")

    again = run_task(dep, incident, inst.instance_id)  # the task retried with the same input
    assert [i["source"]["snapshotId"] for i in again["snapshots"]] == [i["source"]["snapshotId"] for i in state["snapshots"]]
    assert "ec2:CreateSnapshots" not in apis(again) and again["entries"][0]["status"] == "unchanged"
    assert len([s for s in evidence_snapshots(dep, MEMBER, inst.instance_id) if s["Description"].endswith("source")]) == 3


def test_the_chain_step_by_step_never_shares_beyond_the_forensics_account(dep):
    inst = build_instance(dep)
    incident = incident_for(inst.instance_id, "IR-CHAIN")
    states = drive(dep, incident, inst.instance_id)
    final = states[-1]
    assert final["status"] == "collected" and final["phase"] == "done" and "error" not in final
    assert [s["waitSeconds"] for s in states[:-1]] == [30, 60, 120, 240, 480][: len(states) - 1]
    member_keys = dep.sharing_keys[MEMBER]
    for item in final["snapshots"]:
        volume, size = item["volumeId"], item["sizeGiB"]
        digest = expected_digest(volume, size)
        source, copy = item["source"], item["forensicsCopy"]
        # forensics copy: forensics account, forensics key, four tags, ir:source = the snapshot it was copied from
        forensic = snapshot(dep, FORENSICS, copy["snapshotId"])
        assert forensic["OwnerId"] == FORENSICS and forensic["Encrypted"] is True
        assert forensic["KmsKeyId"] == copy["kmsKeyId"] == dep.forensics_key_arn
        assert set(tags(forensic)) == EVIDENCE_TAGS and tags(forensic)["ir:hash"] == digest
        assert tags(forensic)["ir:source"] == f"arn:aws:ec2:{REGION}:{MEMBER}:snapshot/{item['sharedSnapshotId']}"
        assert source["digest"] == copy["digest"] == item["digest"] == digest
        assert tags(snapshot(dep, MEMBER, source["snapshotId"]))["ir:hash"] == digest
        if item["encrypted"]:  # re-encrypted under the member's sharing key, kept, tagged, hashed
            shared = snapshot(dep, MEMBER, item["sharingCopy"]["snapshotId"])
            assert shared["KmsKeyId"] == member_keys and item["sharedSnapshotId"] == shared["SnapshotId"]
            assert set(tags(shared)) == EVIDENCE_TAGS and tags(shared)["ir:hash"] == digest
            assert tags(shared)["ir:source"] == source["arn"]
        else:
            assert "sharingCopy" not in item and item["sharedSnapshotId"] == source["snapshotId"]
        assert item["shared"] == "removed" and permissions(dep, item["sharedSnapshotId"]) == []
    # while the chain ran, only the forensics account was ever granted anything
    shares = [e for e in final["entries"] if e.get("api") == "ec2:ModifySnapshotAttribute"]
    assert len(shares) == 2 * 3  # one share and one removal per volume
    assert final["sharingKeyArn"] == member_keys and final["forensicsKeyArn"] == dep.forensics_key_arn
    assert final["retention"]["member"] == {"kept": ["IR-CHAIN"], "first": ["IR-CHAIN"], "deleted": []}

    # a state machine retry of the last call, or a late extra call, changes nothing
    again = run_task(dep, incident, inst.instance_id, states[-2])
    assert apis(again)[len(apis(states[-2])):] == [] and again["status"] == "collected"
    assert len(evidence_snapshots(dep, MEMBER, inst.instance_id)) == 5
    assert len(evidence_snapshots(dep, FORENSICS, inst.instance_id)) == 3


def test_shares_name_the_forensics_account_only(dep):
    inst = build_instance(dep, kinds=())
    incident = incident_for(inst.instance_id, "IR-SHARE")
    evidence = run_task(dep, incident, inst.instance_id)
    seen = []
    while not evidence["done"]:
        evidence = run_task(dep, incident, inst.instance_id, evidence)
        item = evidence["snapshots"][0]
        if item.get("shared") is True:
            seen.append(permissions(dep, item["sharedSnapshotId"]))
    assert seen and all(p == [{"UserId": FORENSICS}] for p in seen)


def test_hashing_resumes_across_invocations_and_gives_the_one_shot_digest(dep):
    inst = build_instance(dep, kinds=(), sizes={"root": 40})  # 24,000 to 50,000 blocks: three to five pages
    incident = incident_for(inst.instance_id, "IR-RESUME")
    states = drive(dep, incident, inst.instance_id, remaining_ms=1000)  # every call: at most one page per job
    final = states[-1]
    volume = inst.volumes["root"]
    assert final["status"] == "collected"
    assert final["snapshots"][0]["digest"] == expected_digest(volume, 40)
    continued = [s for s in states if s["waitSeconds"] == 1]
    assert len(continued) >= 4  # 2 listings of 3 to 5 pages, read one page per call
    assert all(len(str(s["hashing"])) < 800 for s in continued)
    hashed = [e for s in states for e in s["entries"] if e["status"] == "hashed"]
    blocks = len(gaps_ebs.listing(volume, 40))
    assert {e["pages"] for e in hashed} == {-(-blocks // 10000)} and {e["blocks"] for e in hashed} == {blocks}


# -- dry run ----------------------------------------------------------------------------------------------
def test_dry_run_plans_every_call_and_changes_nothing(dep):
    inst = build_instance(dep)
    before = {a: len(dep.client("ec2", a).describe_snapshots(OwnerIds=["self"])["Snapshots"]) for a in (MEMBER, FORENSICS)}
    state = run_task(dep, incident_for(inst.instance_id, "IR-DRY", dry_run=True), inst.instance_id,
                     isolation={"status": "planned"})
    assert (state["done"], state["status"], state["waitSeconds"]) == (True, "planned", 0)
    assert {e["status"] for e in state["entries"]} == {"planned"}
    planned = [e["api"] for e in state["entries"]]
    assert planned.count("ec2:CreateSnapshots") == 1
    assert planned.count("ec2:CopySnapshot") == 3 + 2  # forensics copies, re-encryption of the two encrypted
    assert planned.count("ec2:ModifySnapshotAttribute") == 6  # share and unshare, per volume
    create = next(e for e in state["entries"] if e["api"] == "ec2:CreateSnapshots")
    assert create["params"]["InstanceSpecification"] == {"InstanceId": inst.instance_id, "ExcludeBootVolume": False}
    shares = [e["params"] for e in state["entries"] if e["api"] == "ec2:ModifySnapshotAttribute"]
    assert all(p["UserIds"] == [FORENSICS] and "GroupNames" not in p for p in shares)
    keys = {e["params"]["KmsKeyId"] for e in state["entries"] if e["api"] == "ec2:CopySnapshot"}
    assert keys == {dep.forensics_key_arn, dep.sharing_keys[MEMBER]}
    after = {a: len(dep.client("ec2", a).describe_snapshots(OwnerIds=["self"])["Snapshots"]) for a in (MEMBER, FORENSICS)}
    assert after == before


# -- failures ---------------------------------------------------------------------------------------------
def test_a_snapshot_in_error_fails_with_snapshot_failed_and_the_rest_goes_on(dep):
    inst = build_instance(dep)
    gaps_ebs.fail_snapshots(MEMBER, inst.volumes["customer"])
    final = drive(dep, incident_for(inst.instance_id, "IR-SNAPFAIL"), inst.instance_id)[-1]
    assert (final["status"], final["error"]) == ("failed", "SnapshotFailed")
    by_volume = {i["volumeId"]: i for i in final["snapshots"]}
    broken = by_volume[inst.volumes["customer"]]
    assert broken["stage"] == "failed" and "Internal error during snapshot creation" in broken["message"]
    assert all(by_volume[inst.volumes[k]]["stage"] == "done" for k in ("root", "aws-ebs"))
    assert "retention" not in final  # nothing is deleted after an incomplete collection


def test_a_failed_forensics_copy_fails_the_volume_and_still_removes_the_share(dep):
    inst = build_instance(dep, kinds=())
    gaps_ebs.fail_snapshots(FORENSICS, inst.volumes["root"])
    final = drive(dep, incident_for(inst.instance_id, "IR-COPYFAIL"), inst.instance_id)[-1]
    item = final["snapshots"][0]
    assert (final["error"], item["stage"], item["shared"]) == ("SnapshotFailed", "failed", "removed")
    assert item["forensicsCopy"]["state"] == "error" and permissions(dep, item["sharedSnapshotId"]) == []


def test_a_digest_mismatch_fails_with_evidence_integrity_error_and_tags_nothing(dep):
    inst = build_instance(dep, kinds=("aws-ebs",))
    gaps_ebs.tamper_listing(FORENSICS, inst.volumes["aws-ebs"])
    final = drive(dep, incident_for(inst.instance_id, "IR-TAMPER"), inst.instance_id)[-1]
    assert (final["status"], final["error"]) == ("failed", "EvidenceIntegrityError")
    bad = next(i for i in final["snapshots"] if i["volumeId"] == inst.volumes["aws-ebs"])
    assert bad["source"]["digest"] == bad["sharingCopy"]["digest"] != bad["forensicsCopy"]["digest"]
    assert bad["forensicsCopy"]["digest"] in bad["message"] and "digest" not in bad
    for account, snap in ((MEMBER, bad["source"]), (MEMBER, bad["sharingCopy"]), (FORENSICS, bad["forensicsCopy"])):
        assert "ir:hash" not in tags(snapshot(dep, account, snap["snapshotId"]))
    assert "retention" not in final


def test_a_transient_error_after_a_copy_is_retried_without_a_duplicate(dep):
    inst = build_instance(dep, kinds=())
    incident = incident_for(inst.instance_id, "IR-RETRY")
    states = [run_task(dep, incident, inst.instance_id)]  # the next call finds the snapshot completed: copy
    real = Snapshots.copy
    throttled = ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "CopySnapshot")

    def copy_then_throttle(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise throttled

    with mock.patch.object(Snapshots, "copy", copy_then_throttle), pytest.raises(TransientAwsError):
        run_task(dep, incident, inst.instance_id, states[-1])
    assert len(evidence_snapshots(dep, FORENSICS, inst.instance_id)) == 1  # the copy was made before the error
    retried = run_task(dep, incident, inst.instance_id, states[-1])  # Step Functions retries with the same input
    assert retried["snapshots"][0]["forensicsCopy"]["snapshotId"] == evidence_snapshots(dep, FORENSICS, inst.instance_id)[0]["SnapshotId"]
    final = drive(dep, incident, inst.instance_id)[-1]
    assert final["status"] == "collected" and len(evidence_snapshots(dep, FORENSICS, inst.instance_id)) == 1


def test_a_concurrent_copy_limit_defers_instead_of_failing(dep):
    inst = build_instance(dep, kinds=())
    incident = incident_for(inst.instance_id, "IR-LIMIT")
    state = run_task(dep, incident, inst.instance_id)
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    def limit(self):
        raise EC2ClientError("ResourceLimitExceeded", "Too many snapshot copies in progress. The limit is 20.")

    with mock.patch.object(ElasticBlockStore, "copy_snapshot", limit):
        deferred = run_task(dep, incident, inst.instance_id, state)
        deferred = run_task(dep, incident, inst.instance_id, deferred)
    assert deferred["done"] is False and "error" not in deferred["snapshots"][0]
    assert [e["status"] for e in deferred["entries"] if e.get("api") == "ec2:CopySnapshot"] == ["deferred"] * 2
    final = drive(dep, incident, inst.instance_id)[-1]
    assert final["status"] == "collected"


def test_the_first_call_of_an_unknown_instance_is_skipped(dep):
    state = run_task(dep, incident_for("i-0123456789abcdef0", "IR-GONE"), "i-0123456789abcdef0")
    assert (state["done"], state["status"]) == (True, "skipped") and state["entries"][0]["status"] == "not_found"


# -- retention ----------------------------------------------------------------------------------------------
def test_retention_deletes_whole_aged_follow_ups_of_this_instance_only(dep):
    """IR-R1 isolated the instance (its collection is first: never aged out); IR-R2 and IR-R3 found it isolated."""
    inst = build_instance(dep, kinds=("customer",))
    other = build_instance(dep, kinds=())
    keep = {"IR_SNAPSHOT_RETENTION": "2"}
    drive(dep, incident_for(other.instance_id, "IR-OTHER-1"), other.instance_id, env=keep)
    ec2 = dep.client("ec2")
    foreign = ec2.copy_snapshot(  # looks like ours, but another tool made it: never deleted
        SourceSnapshotId=evidence_snapshots(dep, MEMBER, other.instance_id)[0]["SnapshotId"], SourceRegion=REGION,
        Description=f"IR-R0 instance {inst.instance_id} evidence source",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
            {"Key": "ir:incident", "Value": "IR-R0"}, {"Key": "ir:collected-by", "Value": "arn:aws:states:x"}]}])
    follow_up = {"status": "already_isolated",
                 "metadata": {"tags": {"ir:quarantine": "isolated", "ir:incident": "IR-R1"}}}
    finals = [drive(dep, incident_for(inst.instance_id, f"IR-R{n}"), inst.instance_id, env=keep,
                    isolation=None if n == 1 else follow_up)[-1] for n in (1, 2)]
    assert finals[1]["retention"]["member"] == {"kept": ["IR-R2", "IR-R1"], "first": ["IR-R1"], "deleted": []}
    assert all(s["Description"].endswith(", follow-up") for s in evidence_snapshots(dep, FORENSICS, inst.instance_id)
               if tags(s)["ir:incident"] != "IR-R1")
    gone = finals[1]["snapshots"]
    for item in gone:  # the forensics copies are locked (README "Custody"): the aged collection's locks run out
        gaps_snapshot_lock.expire(item["forensicsCopy"]["snapshotId"])
    finals.append(drive(dep, incident_for(inst.instance_id, "IR-R3"), inst.instance_id, env=keep,
                        isolation=follow_up)[-1])
    assert sorted(finals[2]["retention"]["member"]["deleted"]) == sorted(
        [i["source"]["snapshotId"] for i in gone] + [i["sharingCopy"]["snapshotId"] for i in gone if i["encrypted"]])
    assert sorted(finals[2]["retention"]["forensics"]["deleted"]) == sorted(i["forensicsCopy"]["snapshotId"] for i in gone)
    member = {tags(s)["ir:incident"] for s in evidence_snapshots(dep, MEMBER, inst.instance_id)}
    forensics = {tags(s)["ir:incident"] for s in evidence_snapshots(dep, FORENSICS, inst.instance_id)}
    assert member == {"IR-R0", "IR-R1", "IR-R3"} and forensics == {"IR-R1", "IR-R3"}
    assert any(s["SnapshotId"] == foreign["SnapshotId"] for s in evidence_snapshots(dep, MEMBER, inst.instance_id))
    assert len(evidence_snapshots(dep, MEMBER, other.instance_id)) == 1  # another instance's evidence untouched


def test_retention_never_deletes_a_locked_snapshot_and_a_refused_delete_never_fails_the_incident(dep):
    inst = build_instance(dep, kinds=())
    keep = {"IR_SNAPSHOT_RETENTION": "1"}  # only the current collection and the first one stay
    follow_up = {"status": "already_isolated",
                 "metadata": {"tags": {"ir:quarantine": "isolated", "ir:incident": "IR-L1"}}}
    finals = {n: drive(dep, incident_for(inst.instance_id, f"IR-L{n}"), inst.instance_id, env=keep,
                       isolation=None if n == 1 else follow_up)[-1] for n in (1, 2, 3)}
    [copy] = [i["forensicsCopy"]["snapshotId"] for i in finals[2]["snapshots"]]  # aged out by IR-L3, but locked
    third = finals[3]
    assert third["status"] == "collected"
    assert third["retention"]["forensics"]["locked"] == [copy] and third["retention"]["forensics"]["deleted"] == []
    assert len(third["retention"]["member"]["deleted"]) == 1  # the member side of IR-L2 is not locked
    assert any(e["status"] == "skipped" and "locked (compliance)" in e.get("detail", "") for e in third["entries"])
    assert not [e for e in third["entries"] if e.get("api") == "ec2:DeleteSnapshot" and copy in e["target"]]
    assert snapshot(dep, FORENSICS, copy)["SnapshotId"] == copy

    # a lock the responder could not see (set between its read and its delete): AWS refuses, it is recorded
    with mock.patch.object(Snapshots, "locked", lambda self, ids: {}):
        fourth = drive(dep, incident_for(inst.instance_id, "IR-L4"), inst.instance_id, env=keep,
                       isolation=follow_up)[-1]
    assert fourth["status"] == "collected" and copy in fourth["retention"]["forensics"]["failed"]
    refused = [e for e in fourth["entries"] if e.get("api") == "ec2:DeleteSnapshot" and e["status"] == "failed"]
    assert refused and {e["error"] for e in refused} == {gaps_snapshot_lock.LOCKED_ERROR}
    assert snapshot(dep, FORENSICS, copy)["SnapshotId"] == copy
    left = {tags(s)["ir:incident"] for s in evidence_snapshots(dep, FORENSICS, inst.instance_id)}
    assert left == {"IR-L1", "IR-L2", "IR-L3", "IR-L4"}  # every forensics copy is still under its lock


# -- single-account layout ------------------------------------------------------------------------------------
def test_single_account_layout_copies_without_sharing(dep):
    solo = "777766665555"
    single = local.deploy(member_account=solo, forensics_account=solo, region=REGION)
    inst = build_instance(single, account=solo)
    final = drive(single, incident_for(inst.instance_id, "IR-SOLO", account=solo), inst.instance_id)[-1]
    assert final["status"] == "collected"
    assert "ec2:ModifySnapshotAttribute" not in [e.get("api") for e in final["entries"]]
    for item in final["snapshots"]:
        assert "sharingCopy" not in item and item["forensicsCopy"]["kmsKeyId"] == single.forensics_key_arn
        assert item["forensicsCopy"]["digest"] == item["source"]["digest"]
