"""The signed chain of custody, end to end through the real ASL: every forensics copy is locked, each attempt's
manifest is written once under its own name and signed through the custody signer role (only Finalize assumes it),
and `python -m cli --local verify` passes on a fresh incident and fails - naming the item - on a tampered tag, a
missing snapshot, a manifest with a second version, and an unsigned manifest. An attacker holding the forensics
role can neither sign nor replace a manifest (read back through boto3)."""
from __future__ import annotations

import base64
import io
import json

import pytest
from botocore.exceptions import ClientError

import cli
from responder import custody
from state_machines import gaps_snapshot_lock, local
from stacks import names
from tests.worlds.evidence import (  # noqa: F401 - fixtures
    FORENSICS,
    MEMBER,
    build_instance,
    dep,
    evidence_of,
    fresh_hooks,
    manual_request,
)
from tests.worlds.operations import record


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


def _versions(dep, prefix):  # noqa: F811
    s3 = dep.client("s3", account=FORENSICS)
    listed = s3.list_object_versions(Bucket=dep.bucket, Prefix=prefix)
    found: dict[str, int] = {}
    for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        found[v["Key"]] = found.get(v["Key"], 0) + 1
    return found


def _forensics_role_session(dep):  # noqa: F811
    """What an attacker holds who stole the forensics role's credentials (from a function's session)."""
    creds = local.session(None, dep.region).client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{FORENSICS}:role/{names.FORENSICS_ROLE_NAME}", RoleSessionName="stolen",
        ExternalId=dep.environment["IR_EXTERNAL_ID"])["Credentials"]
    import boto3

    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=dep.region)


def test_the_manifest_is_signed_by_the_custody_key_and_the_copies_are_locked(dep, incident):  # noqa: F811
    manifest = incident["run"].output["manifest"]
    assert manifest["key"] == "incidents/IR-CUSTODY-1/manifest-0001.json" and manifest["attempt"] == 1
    signature = json.loads(_read(dep, custody.signature_key(manifest["key"]))["Body"].read())
    body = _read(dep, manifest["key"])["Body"].read()
    assert json.loads(body)["manifestKey"] == manifest["key"]
    assert signature["manifest"] == {"bucket": dep.bucket, "key": manifest["key"], "sha256": manifest["sha256"]}
    kms = dep.client("kms", account=FORENSICS)
    custody_key = kms.describe_key(KeyId="alias/ir-custody-signing")["KeyMetadata"]
    assert signature["keyId"] == custody_key["Arn"] and custody_key["KeyUsage"] == "SIGN_VERIFY"
    assert kms.verify(KeyId=custody_key["Arn"], Message=custody.digest(body), MessageType="DIGEST",
                      Signature=base64.b64decode(signature["signature"]),
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"] is True
    ec2 = dep.client("ec2", account=FORENSICS)
    locks = ec2.describe_locked_snapshots(SnapshotIds=[c["snapshotId"] for c in incident["copies"]])["Snapshots"]
    assert len(locks) == len(incident["copies"]) == 2
    assert {(lock["LockState"], lock["LockDuration"]) for lock in locks} == {("compliance", 365)}
    assert all(c["lock"]["LockState"] == "compliance" for c in incident["copies"])


def test_verify_passes_on_a_fresh_incident(incident):
    code, text = _verify(incident["id"])
    assert code == cli.OK, text
    assert "verified: every manifest is signed and written once" in text
    assert "MISMATCH" not in text


def test_a_second_run_writes_a_new_attempt_name_never_a_new_version(dep):  # noqa: F811
    first = _incident(dep, "IR-CUSTODY-AGAIN")
    again = local.execute(manual_request(first["instance"].instance_id, first["id"]), dep)
    assert again.status == "SUCCEEDED"
    assert again.output["manifest"]["key"] == "incidents/IR-CUSTODY-AGAIN/manifest-0002.json"
    prefix = "incidents/IR-CUSTODY-AGAIN/manifest"
    assert _versions(dep, prefix) == {f"{prefix}-0001.json": 1, f"{prefix}-0001.sig.json": 1,
                                      f"{prefix}-0002.json": 1, f"{prefix}-0002.sig.json": 1}
    assert record(dep, first["id"])["manifest"]["key"] == f"{prefix}-0002.json"  # the record names the latest
    code, text = _verify(first["id"])
    assert code == cli.OK, text
    assert f"latest manifest s3://{dep.bucket}/{prefix}-0002.json (2 manifest(s) in the chain)" in text


def test_the_forensics_role_cannot_sign_nor_assume_the_signer(dep, incident):  # noqa: F811
    stolen = _forensics_role_session(dep)
    key_arn = dep.environment["IR_CUSTODY_KEY_ARN"]
    with pytest.raises(ClientError) as refused:
        stolen.client("kms").sign(KeyId=key_arn, Message=b"\0" * 32, MessageType="DIGEST",
                                  SigningAlgorithm="ECDSA_SHA_256")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as untrusted:
        stolen.client("sts").assume_role(RoleArn=dep.environment["IR_CUSTODY_SIGNER_ROLE_ARN"],
                                         RoleSessionName="sign-forgery",
                                         ExternalId=dep.environment["IR_EXTERNAL_ID"])
    assert untrusted.value.response["Error"]["Code"] == "AccessDenied"
    admin = dep.client("kms", account=FORENSICS)  # the forensics account's own administrator cannot sign either
    with pytest.raises(ClientError):
        admin.sign(KeyId=key_arn, Message=b"\0" * 32, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")


def test_the_forensics_role_cannot_replace_a_manifest(dep, incident):  # noqa: F811
    stolen = _forensics_role_session(dep).client("s3")
    key = incident["run"].output["manifest"]["key"]
    original = _read(dep, key)["Body"].read()
    forged = json.dumps(dict(json.loads(original), outcome="not_handled")).encode()
    with pytest.raises(ClientError) as unconditional:  # the bucket policy: manifests only with If-None-Match
        stolen.put_object(Bucket=dep.bucket, Key=key, Body=forged)
    assert unconditional.value.response["Error"]["Code"] in ("AccessDenied", "403")
    with pytest.raises(ClientError) as conditional:  # S3 itself: the key exists
        stolen.put_object(Bucket=dep.bucket, Key=key, Body=forged, IfNoneMatch="*")
    assert conditional.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError):
        stolen.put_object(Bucket=dep.bucket, Key=custody.signature_key(key), Body=b"{}")
    with pytest.raises(ClientError):
        stolen.copy_object(Bucket=dep.bucket, Key=key, CopySource={"Bucket": dep.bucket, "Key": key})
    assert _read(dep, key)["Body"].read() == original
    assert _versions(dep, key) == {key: 1}
    assert _verify(incident["id"])[0] == cli.OK


def test_verify_names_an_unsigned_manifest_the_forensics_role_added(dep):  # noqa: F811
    incident = _incident(dep, "IR-CUSTODY-UNSIGNED")
    stolen = _forensics_role_session(dep).client("s3")
    first = json.loads(_read(dep, incident["run"].output["manifest"]["key"])["Body"].read())
    key = "incidents/IR-CUSTODY-UNSIGNED/manifest-0002.json"
    stolen.put_object(Bucket=dep.bucket, Key=key, IfNoneMatch="*",
                      Body=json.dumps(dict(first, manifestKey=key, outcome="not_handled")).encode())
    code, text = _verify(incident["id"])
    assert code == cli.FAILED
    assert f"latest manifest s3://{dep.bucket}/{key}" in text
    assert f"MISMATCH  {key}: unsigned - no signature document {custody.signature_key(key)}" in text


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


def test_verify_names_a_manifest_overwritten_once_the_bucket_policy_is_gone(dep):  # noqa: F811
    """The documented remaining risk: the forensics account's administrators can change the bucket policy. Even
    then a replaced manifest is found: a second version, and a signature that no longer verifies."""
    incident = _incident(dep, "IR-CUSTODY-MANIFEST")
    key = incident["run"].output["manifest"]["key"]
    s3 = dep.client("s3", account=FORENSICS)
    policy = s3.get_bucket_policy(Bucket=dep.bucket)["Policy"]
    original = _read(dep, key)["Body"].read()
    forged = json.loads(original)
    forged["outcome"] = "not_handled"
    s3.delete_bucket_policy(Bucket=dep.bucket)
    try:
        s3.put_object(Bucket=dep.bucket, Key=key, Body=json.dumps(forged).encode())
    finally:
        s3.put_bucket_policy(Bucket=dep.bucket, Policy=policy)
    code, text = _verify(incident["id"])
    assert code == cli.FAILED
    assert f"MISMATCH  {key}: 2 versions - a manifest or signature is written once" in text
    assert f"MISMATCH  {key}: signature: does not verify" in text


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
