"""The signed chain of custody, end to end through the real ASL: every forensics copy is locked, the manifest is
signed with the forensics account's custody key, and `python -m cli --local verify` passes on a fresh incident and
fails - naming the item - on a tampered tag, a missing snapshot and a modified manifest."""
from __future__ import annotations

import io
import json

import pytest

import cli
from responder import custody
from state_machines import gaps_snapshot_lock, local
from tests.worlds.evidence import (  # noqa: F401 - fixtures
    FORENSICS,
    MEMBER,
    build_instance,
    dep,
    evidence_of,
    fresh_hooks,
    manual_request,
)


def _verify(incident_id: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(["--local", "verify", incident_id], out=out)
    return code, out.getvalue()


def _incident(dep, incident_id: str, kinds: tuple[str, ...] = ()) -> dict:  # noqa: F811
    inst = build_instance(dep, kinds=kinds)
    run = local.execute(manual_request(inst.instance_id, incident_id), dep)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    copies = [i["forensicsCopy"] for i in evidence_of(run, inst.instance_id)["snapshots"]]
    assert _verify(incident_id)[0] == cli.OK
    return {"run": run, "instance": inst, "copies": copies, "id": incident_id}


@pytest.fixture(scope="module")
def incident(dep):  # noqa: F811
    """An incident nobody tampers with (the tests that tamper make their own: xdist may split this module)."""
    return _incident(dep, "IR-CUSTODY-1", kinds=("customer",))


def _read(dep, key):  # noqa: F811
    s3 = dep.client("s3", account=FORENSICS)
    return s3.get_object(Bucket=dep.bucket, Key=key)


def test_the_manifest_is_signed_by_the_custody_key_and_the_copies_are_locked(dep, incident):  # noqa: F811
    manifest = incident["run"].output["manifest"]
    signature = json.loads(_read(dep, custody.signature_key(manifest["key"]))["Body"].read())
    body = _read(dep, manifest["key"])["Body"].read()
    assert signature["manifest"] == {"bucket": dep.bucket, "key": manifest["key"], "versionId": manifest["versionId"],
                                     "sha256": manifest["sha256"]}
    kms = dep.client("kms", account=FORENSICS)
    custody_key = kms.describe_key(KeyId="alias/ir-custody-signing")["KeyMetadata"]
    assert signature["keyId"] == custody_key["Arn"] and custody_key["KeyUsage"] == "SIGN_VERIFY"
    assert kms.verify(KeyId=custody_key["Arn"], Message=custody.digest(body), MessageType="DIGEST",
                      Signature=__import__("base64").b64decode(signature["signature"]),
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"] is True
    ec2 = dep.client("ec2", account=FORENSICS)
    locks = ec2.describe_locked_snapshots(SnapshotIds=[c["snapshotId"] for c in incident["copies"]])["Snapshots"]
    assert len(locks) == len(incident["copies"]) == 2
    assert {(lock["LockState"], lock["LockDuration"]) for lock in locks} == {("compliance", 365)}
    assert all(c["lock"]["LockState"] == "compliance" for c in incident["copies"])


def test_verify_passes_on_a_fresh_incident(incident):
    code, text = _verify(incident["id"])
    assert code == cli.OK, text
    assert "verified: the signature and every checked snapshot match the manifest" in text
    assert "MISMATCH" not in text


def test_a_second_run_of_the_incident_still_verifies(dep, incident):  # noqa: F811
    again = local.execute(manual_request(incident["instance"].instance_id, incident["id"]), dep)
    assert again.status == "SUCCEEDED"
    code, text = _verify(incident["id"])
    assert code == cli.OK, text


def test_verify_names_a_tampered_hash_tag(dep):  # noqa: F811
    incident = _incident(dep, "IR-CUSTODY-TAG")
    copy = incident["copies"][0]
    ec2 = dep.client("ec2", account=FORENSICS)
    ec2.create_tags(Resources=[copy["snapshotId"]], Tags=[{"Key": "ir:hash", "Value": "sha256:" + "0" * 64}])
    try:
        code, text = _verify(incident["id"])
    finally:
        ec2.create_tags(Resources=[copy["snapshotId"]], Tags=[{"Key": "ir:hash", "Value": copy["digest"]}])
    assert code == cli.FAILED
    assert f"MISMATCH  snapshot {copy['snapshotId']} (account {FORENSICS}): tag ir:hash is 'sha256:000" in text
    assert "NOT VERIFIED: 1 mismatch(es)" in text
    assert _verify(incident["id"])[0] == cli.OK


def test_verify_names_a_modified_manifest(dep):  # noqa: F811
    incident = _incident(dep, "IR-CUSTODY-MANIFEST")
    key = incident["run"].output["manifest"]["key"]
    s3 = dep.client("s3", account=FORENSICS)
    original = _read(dep, key)["Body"].read()
    forged = json.loads(original)
    forged["outcome"] = "not_handled"
    s3.put_object(Bucket=dep.bucket, Key=key, Body=json.dumps(forged).encode())
    code, text = _verify(incident["id"])
    assert code == cli.FAILED
    assert "MISMATCH  manifest: version" in text and "is not the signed version" in text
    assert "MISMATCH  signature: does not verify" in text
    s3.put_object(Bucket=dep.bucket, Key=key, Body=original)  # the original bytes again: its signature holds
    code, text = _verify(incident["id"])
    assert code == cli.FAILED and "is not the signed version" in text and "does not verify" not in text


def test_verify_names_a_missing_snapshot_once_its_lock_let_it_go(dep):  # noqa: F811
    incident = _incident(dep, "IR-CUSTODY-MISSING")
    copy = incident["copies"][-1]
    ec2 = dep.client("ec2", account=FORENSICS)
    with pytest.raises(Exception) as locked:
        ec2.delete_snapshot(SnapshotId=copy["snapshotId"])
    assert "SnapshotLocked" in str(locked.value)
    gaps_snapshot_lock.expire(copy["snapshotId"])
    ec2.delete_snapshot(SnapshotId=copy["snapshotId"])
    code, text = _verify(incident["id"])
    assert code == cli.FAILED
    assert (f"MISMATCH  snapshot {copy['snapshotId']} (account {FORENSICS}): missing - the manifest names it, AWS "
            "does not have it") in text


def test_verify_without_a_manifest_says_so(dep):  # noqa: F811
    code, _ = _verify("IR-NEVER-HAPPENED")
    assert code == cli.NOT_FOUND
