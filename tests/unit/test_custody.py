"""The chain of custody without AWS: what the signature document holds, and what verification reports."""
from __future__ import annotations

import hashlib

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
    def __init__(self):
        self.objects = {}

    def put_json(self, key, body):
        self.objects[key] = body
        return {"bucket": "b", "key": key, "versionId": f"v{len(self.objects)}"}


def _signed():
    bucket = FakeBucket()
    stored = {"bucket": "b", "key": "incidents/IR-1/manifest.json", "versionId": "m1"}
    out = custody.sign_manifest(FakeKey(), bucket, BODY, stored, signed_at="2026-12-02T00:00:00Z")
    import json

    return out, json.loads(bucket.objects["incidents/IR-1/manifest.sig.json"])


def test_the_signature_document_names_the_manifest_version_digest_and_key():
    out, document = _signed()
    assert out["key"] == "incidents/IR-1/manifest.sig.json" and out["keyId"].endswith(":key/custody")
    assert document["manifest"] == {"bucket": "b", "key": "incidents/IR-1/manifest.json", "versionId": "m1",
                                    "sha256": "sha256:" + hashlib.sha256(BODY).hexdigest()}
    assert (document["signingAlgorithm"], document["messageType"]) == ("ECDSA_SHA_256", "DIGEST")
    assert custody.check_signature(FakeKey(), BODY, document) == []


def test_a_changed_manifest_or_another_key_does_not_verify():
    _, document = _signed()
    problems = custody.check_signature(FakeKey(), BODY + b" ", document)
    assert any(p.startswith("manifest: its SHA-256 is") for p in problems)
    assert any(p.startswith("signature: does not verify") for p in problems)
    assert any(p.startswith("signature: does not verify") for p in custody.check_signature(FakeKey(b"x"), BODY,
                                                                                               document))


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
