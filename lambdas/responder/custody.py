"""The signed chain of custody: every evidence manifest is signed, and the signature stored beside it.

Finalize writes ``incidents/<incidentId>/manifest.json`` (responder.manifest) and then, with the forensics
account's asymmetric custody key (KMS, ECC_NIST_P256, only the forensics role may sign), the signature document
``incidents/<incidentId>/manifest.sig.json``::

    {"custodyVersion": 1, "manifest": {"bucket", "key", "versionId", "sha256"}, "keyId": <key ARN>,
     "signingAlgorithm": "ECDSA_SHA_256", "messageType": "DIGEST", "signature": <base64>, "signedAt": <UTC>}

The signature is over the SHA-256 digest of the manifest's exact bytes (the object version named). Anyone in the
forensics account can verify it (kms:Verify), offline too with the key's public key; `python -m cli verify
<incident>` does, and checks every snapshot the manifest names against AWS (hash tag, lock).
"""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

CUSTODY_VERSION = 1
SIGNATURE_SUFFIX = ".sig.json"
SIGNING_ALGORITHM = "ECDSA_SHA_256"  # the custody key is ECC_NIST_P256 (stacks.forensics_stack)
MESSAGE_TYPE = "DIGEST"  # the SHA-256 of the manifest's exact bytes is signed, not the bytes


def signature_key(manifest_key: str) -> str:
    """`incidents/<id>/manifest.json` -> `incidents/<id>/manifest.sig.json` (not a prefix of the manifest's key)."""
    return manifest_key.removesuffix(".json") + SIGNATURE_SUFFIX


def digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def signature_document(*, key_id: str, signature: bytes, stored: dict[str, Any], body: bytes,
                       signed_at: str) -> dict[str, Any]:
    return {
        "custodyVersion": CUSTODY_VERSION,
        "manifest": {"bucket": stored.get("bucket"), "key": stored.get("key"), "versionId": stored.get("versionId"),
                     "sha256": "sha256:" + hashlib.sha256(body).hexdigest()},
        "keyId": key_id,
        "signingAlgorithm": SIGNING_ALGORITHM,
        "messageType": MESSAGE_TYPE,
        "signature": base64.b64encode(signature).decode(),
        "signedAt": signed_at,
    }


def sign_manifest(key: Any, bucket: Any, body: bytes, stored: dict[str, Any], *, signed_at: str) -> dict[str, Any]:
    """Sign the stored manifest (`stored`: what `EvidenceObjects.put_json` returned for `body`) and write the
    signature document beside it. Returns where it is and which key signed."""
    key_id, signature = key.sign(digest(body))
    document = signature_document(key_id=key_id, signature=signature, stored=stored, body=body, signed_at=signed_at)
    where = bucket.put_json(signature_key(stored["key"]),
                            json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    return {"key": where["key"], "versionId": where.get("versionId"), "keyId": key_id}


def check_signature(key: Any, body: bytes, document: dict[str, Any]) -> list[str]:
    """What does not match between a manifest's bytes and its signature document ([] when it all holds)."""
    problems = []
    if document.get("custodyVersion") != CUSTODY_VERSION:
        problems.append(f"signature: unknown custodyVersion {document.get('custodyVersion')!r}")
    recorded = (document.get("manifest") or {}).get("sha256")
    actual = "sha256:" + hashlib.sha256(body).hexdigest()
    if recorded != actual:
        problems.append(f"manifest: its SHA-256 is {actual}, the signature document names {recorded}")
    try:
        signature = base64.b64decode(document.get("signature") or "", validate=True)
    except ValueError:
        return problems + ["signature: not base64"]
    if not key.verify(digest(body), signature, key_id=document.get("keyId")):
        problems.append(f"signature: does not verify under {document.get('keyId')} (the manifest was changed "
                        "after it was signed, or another key signed it)")
    return problems


# -- verification (python -m cli verify) -------------------------------------------------------------------------
HOLDING_LOCKS = ("compliance", "compliance-cooloff", "governance")


def _when(value: Any) -> Any:
    """A lock time (datetime from boto3, ISO text from a manifest) as an aware datetime; the earliest if absent."""
    from datetime import datetime, timezone

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def manifest_snapshots(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every snapshot the manifest's evidence names (source, sharing copy, forensics copy), with where it is and what
    the manifest recorded: {snapshotId, account, region, digest, lock, incidentId}."""
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            arn = value.get("arn")
            if value.get("snapshotId") and isinstance(arn, str) and ":snapshot/" in arn:
                parts = arn.split(":")
                found.append({"snapshotId": value["snapshotId"], "region": parts[3], "account": parts[4],
                              "digest": value.get("digest"), "lock": value.get("lock")})
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk((manifest.get("evidence") or {}).get("instances"))
    unique = {(s["account"], s["snapshotId"]): s for s in found}
    return [dict(s, incidentId=manifest.get("incidentId")) for _, s in sorted(unique.items())]


def check_snapshots(manifest: dict[str, Any], describe: Any) -> tuple[list[str], list[str]]:
    """(problems, notes) for the manifest's snapshots. `describe(account, region, ids)` returns
    {id: {"tags": {...}, "lock": {...} or None}} for the ids that exist, or None when that account cannot be read
    (then the snapshots are noted as not checked)."""
    problems, notes, groups = [], [], {}
    for snap in manifest_snapshots(manifest):
        groups.setdefault((snap["account"], snap["region"]), []).append(snap)
    for (account, region), snaps in sorted(groups.items()):
        seen = describe(account, region, [s["snapshotId"] for s in snaps])
        if seen is None:
            notes.append(f"{len(snaps)} snapshot(s) in account {account} not checked (no access to that account)")
            continue
        for snap in snaps:
            sid, where = snap["snapshotId"], f"account {account}"
            got = seen.get(sid)
            if got is None:
                problems.append(f"snapshot {sid} ({where}): missing - the manifest names it, AWS does not have it")
                continue
            tags = got.get("tags") or {}
            if snap.get("digest") and tags.get("ir:hash") != snap["digest"]:
                problems.append(f"snapshot {sid} ({where}): tag ir:hash is {tags.get('ir:hash')!r}, the manifest "
                                f"records {snap['digest']}")
            if tags.get("ir:incident") != snap.get("incidentId"):
                problems.append(f"snapshot {sid} ({where}): tag ir:incident is {tags.get('ir:incident')!r}, the "
                                f"manifest is of {snap.get('incidentId')}")
            recorded = snap.get("lock") or {}
            if recorded.get("LockState"):
                lock = got.get("lock") or {}
                if lock.get("LockState") not in HOLDING_LOCKS:
                    problems.append(f"snapshot {sid} ({where}): not locked (the manifest records a "
                                    f"{recorded['LockState']} lock until {recorded.get('LockExpiresOn')})")
                elif _when(lock.get("LockExpiresOn")) < _when(recorded.get("LockExpiresOn")):
                    problems.append(f"snapshot {sid} ({where}): its lock ends {lock.get('LockExpiresOn')}, earlier "
                                    f"than the manifest's {recorded.get('LockExpiresOn')}")
    return problems, notes
