"""The chain of custody without AWS: what the signature document holds, and what verification reports."""
from __future__ import annotations

import hashlib
import json

import pytest

from responder import custody

BODY = b'{"incidentId":"IR-1"}'


class FakeKey:
    """Signs by hashing the digest with a secret (stands for KMS Sign / Verify)."""

    def __init__(self, secret: bytes = b"k"):
        self.secret = secret

    def sign(self, digest: bytes):
        return "arn:aws:kms:eu-west-1:999988887777:key/custody", hashlib.sha256(self.secret + digest).digest()

    def verify(self, digest: bytes, signature: bytes, *, key_id=None):
        return hashlib.sha256(self.secret + digest).digest() == signature


class FakeBucket:
    """Write-once like S3 with If-None-Match: * (None when the key is taken)."""

    bucket = "b"

    def __init__(self, taken=()):
        self.objects = {k: b"taken" for k in taken}

    def put_json_once(self, key, body):
        if key in self.objects:
            return None
        self.objects[key] = body
        return {"bucket": "b", "key": key, "versionId": f"v{len(self.objects)}"}


NAMES = ["incidents/IR-1/manifest-0002.json", "incidents/IR-1/manifest-0002-2.json"]


def _build(key):
    return json.dumps({"incidentId": "IR-1", "manifestKey": key}, sort_keys=True).encode()


def _sign(body):
    return FakeKey().sign(custody.digest(body))


def _signed(taken=()):
    bucket = FakeBucket(taken)
    out = custody.write_manifest(bucket, NAMES, _build, _sign, signed_at="2026-12-02T00:00:00Z")
    return out, bucket


def test_the_signature_is_written_first_and_names_the_manifest_key_and_digest():
    out, bucket = _signed()
    assert list(bucket.objects) == ["incidents/IR-1/manifest-0002.sig.json", "incidents/IR-1/manifest-0002.json"]
    assert out["key"] == NAMES[0] and out["signature"]["key"] == "incidents/IR-1/manifest-0002.sig.json"
    document = json.loads(bucket.objects["incidents/IR-1/manifest-0002.sig.json"])
    body = bucket.objects[NAMES[0]]
    assert document["manifest"] == {"bucket": "b", "key": NAMES[0], "sha256": "sha256:" + hashlib.sha256(body).hexdigest()}
    assert (document["custodyVersion"], document["signingAlgorithm"], document["messageType"]) == (
        2, "ECDSA_SHA_256", "DIGEST")
    assert custody.check_signature(FakeKey(), body, document, manifest_key=NAMES[0]) == []


def test_a_taken_name_is_never_overwritten_the_next_name_is_used():
    out, bucket = _signed(taken=[NAMES[0]])
    assert bucket.objects[NAMES[0]] == b"taken"
    assert out["key"] == NAMES[1] and out["namesTaken"] == [NAMES[0]]
    assert json.loads(bucket.objects[NAMES[1]])["manifestKey"] == NAMES[1]


def test_every_name_taken_is_an_error_and_nothing_is_overwritten():
    with pytest.raises(custody.ManifestNamesTaken):
        _signed(taken=[custody.signature_key(n) for n in NAMES])


def test_without_a_signer_the_manifest_is_still_written_unsigned():
    bucket = FakeBucket()
    out = custody.write_manifest(bucket, NAMES, _build, lambda body: None, signed_at="t")
    assert out["key"] == NAMES[0] and "signature" not in out and list(bucket.objects) == [NAMES[0]]


def test_a_changed_manifest_or_another_key_does_not_verify():
    _, bucket = _signed()
    body = bucket.objects[NAMES[0]]
    document = json.loads(bucket.objects[custody.signature_key(NAMES[0])])
    problems = custody.check_signature(FakeKey(), body + b" ", document)
    assert any(p.startswith("manifest: its SHA-256 is") for p in problems)
    assert any(p.startswith("signature: does not verify") for p in problems)
    assert any(p.startswith("signature: does not verify") for p in custody.check_signature(FakeKey(b"x"), body,
                                                                                               document))
    assert custody.check_signature(FakeKey(), body, document, manifest_key=NAMES[1]) == [
        f"signature: it is the signature of {NAMES[0]}, not of {NAMES[1]}"]


def _chain(objects, versions=None):
    counts = versions or {k: 1 for k in objects}
    return custody.check_chain(counts, objects.get, FakeKey(), "IR-1")


def test_the_chain_verifies_every_attempt_and_names_the_latest():
    first, b1 = _signed()
    objects = dict(b1.objects)
    later = FakeBucket()
    custody.write_manifest(later, ["incidents/IR-1/manifest-0003.json"], _build, _sign, signed_at="t")
    objects.update(later.objects)
    problems, notes, facts = _chain(objects)
    assert (problems, notes) == ([], [])
    assert facts["latest"] == "incidents/IR-1/manifest-0003.json" and facts["manifests"] == 2


def test_the_chain_names_a_second_version_an_unsigned_manifest_and_a_copied_one():
    _, bucket = _signed()
    objects = dict(bucket.objects)
    objects["incidents/IR-1/manifest-0009.json"] = _build("incidents/IR-1/manifest-0009.json")  # nobody signed it
    objects["incidents/IR-1/manifest-0005.json"] = objects[NAMES[0]]  # a signed one copied under a later name
    objects["incidents/IR-1/manifest-0005.sig.json"] = objects[custody.signature_key(NAMES[0])]
    versions = {k: 1 for k in objects}
    versions[NAMES[0]] = 2
    problems, _, facts = _chain(objects, versions)
    assert facts["latest"] == "incidents/IR-1/manifest-0009.json"
    assert f"{NAMES[0]}: 2 versions - a manifest or signature is written once; a later version was written over it" in problems
    assert any(p.startswith("incidents/IR-1/manifest-0009.json: unsigned - no signature document") for p in problems)
    assert ("incidents/IR-1/manifest-0005.json: it names itself incidents/IR-1/manifest-0002.json (a manifest "
            "copied to another name)") in problems
    assert any(p.startswith("incidents/IR-1/manifest-0005.json: signature: it is the signature of") for p in problems)


def test_an_analysis_manifest_is_checked_but_never_the_latest():
    _, bucket = _signed()
    objects = dict(bucket.objects)
    analysis = FakeBucket()
    name = "incidents/IR-1/manifest-analysis-exec-1.json"
    custody.write_manifest(analysis, [name], _build, _sign, signed_at="t")
    objects.update(analysis.objects)
    problems, notes, facts = _chain(objects)
    assert (problems, notes) == ([], []) and facts["manifests"] == 2 and facts["latest"] == NAMES[0]
    assert custody.manifest_name("incidents/x/manifest-analysis-exec-1.sig.json") == (-1, 1, True)
    objects.pop(custody.signature_key(name))
    problems, _, _ = _chain(objects)
    assert any(p.startswith(f"{name}: unsigned") for p in problems)


def test_manifest_names_order_attempts_then_tries():
    assert custody.manifest_name("incidents/x/manifest-0002-3.json") == (2, 3, False)
    assert custody.manifest_name("incidents/x/manifest-0010.sig.json") == (10, 1, True)
    assert custody.manifest_name("incidents/x/manifest.json") == (0, 1, False)  # the earlier design's one name
    assert custody.manifest_name("incidents/x/cloudtrail/a.json") is None


MANIFEST = {"incidentId": "IR-1", "evidence": {"instances": [{"evidence": {"snapshots": [{
    "source": {"snapshotId": "snap-a", "arn": "arn:aws:ec2:eu-west-1:444455556666:snapshot/snap-a",
               "digest": "sha256:1"},
    "forensicsCopy": {"snapshotId": "snap-b", "arn": "arn:aws:ec2:eu-west-1:999988887777:snapshot/snap-b",
                      "digest": "sha256:1", "lock": {"LockState": "compliance",
                                                     "LockExpiresOn": "2027-12-02T01:00:00+00:00"}}}]}}]}}


def _describe(seen):
    return lambda account, region, ids: seen.get(account)


def test_verification_names_each_snapshot_that_does_not_match():
    from datetime import datetime, timezone

    good_lock = {"LockState": "compliance", "LockExpiresOn": datetime(2027, 12, 2, 1, tzinfo=timezone.utc)}
    tags = {"ir:hash": "sha256:1", "ir:incident": "IR-1"}
    ok = {"999988887777": {"snap-b": {"tags": tags, "lock": good_lock}}}
    assert custody.check_snapshots(MANIFEST, _describe(ok)) == (
        [], ["1 snapshot(s) in account 444455556666 not checked (no access to that account)"])
    bad = {"999988887777": {"snap-b": {"tags": {**tags, "ir:hash": "sha256:2"},
                                       "lock": {**good_lock, "LockExpiresOn": datetime(2027, 1, 1, tzinfo=timezone.utc)}}},
           "444455556666": {}}
    problems, _ = custody.check_snapshots(MANIFEST, _describe(bad))
    assert problems == [
        "snapshot snap-a (account 444455556666): missing - the manifest names it, AWS does not have it",
        "snapshot snap-b (account 999988887777): tag ir:hash is 'sha256:2', the manifest records sha256:1",
        "snapshot snap-b (account 999988887777): its lock ends 2027-01-01 00:00:00+00:00, earlier than the "
        "manifest's 2027-12-02T01:00:00+00:00",
    ]
    unlocked = {"999988887777": {"snap-b": {"tags": tags, "lock": None}}}
    assert custody.check_snapshots(MANIFEST, _describe(unlocked))[0] == [
        "snapshot snap-b (account 999988887777): not locked (the manifest records a compliance lock until "
        "2027-12-02T01:00:00+00:00)"]
