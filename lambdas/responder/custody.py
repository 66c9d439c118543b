"""The signed chain of custody: every evidence manifest is signed, and both are written once, never replaced.

Each attempt that acted writes its own manifest under a name nobody writes twice (responder.manifest.key):
``incidents/<incidentId>/manifest-<attempt>.json`` (``manifest-<attempt>-<n>.json`` when Finalize itself is retried
and that name is taken), and beside it the signature document ``manifest-<attempt>.sig.json``. In this order:

1. the manifest's body is built naming its own key (``manifestKey``: a copy moved to another name does not verify);
2. Finalize signs the SHA-256 of those exact bytes with the forensics account's asymmetric custody key (KMS,
   ECC_NIST_P256), through the custody signer role - the only principal the key lets sign, assumed only by
   Finalize's role. The role that writes evidence (the forensics role) cannot sign;
3. the signature document, then the manifest, are written with ``If-None-Match: *`` (S3 conditional writes: S3
   answers ``PreconditionFailed`` when the key exists; the bucket policy refuses a manifest write without the
   header). A taken name is never overwritten: the next name is used. A manifest is never left unsigned by Finalize
   (its signature is written first), so an unsigned manifest is someone else's.

The signature document (``custodyVersion`` 2)::

    {"custodyVersion": 2, "manifest": {"bucket", "key", "sha256"}, "keyId": <key ARN>,
     "signingAlgorithm": "ECDSA_SHA_256", "messageType": "DIGEST", "signature": <base64>, "signedAt": <UTC>}

(``custodyVersion`` 1, before write-once names, also named the manifest's ``versionId``.) Anyone in the forensics
account can verify it (kms:Verify); `python -m cli verify <incident>` checks the whole chain (`check_chain`) and every
snapshot the latest manifest names against AWS (hash tag, lock).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Callable

from responder.errors import ResponderError

CUSTODY_VERSION = 2
KNOWN_VERSIONS = (1, 2)
SIGNATURE_SUFFIX = ".sig.json"
SIGNING_ALGORITHM = "ECDSA_SHA_256"  # the custody key is ECC_NIST_P256 (stacks.forensics_stack)
MESSAGE_TYPE = "DIGEST"  # the SHA-256 of the manifest's exact bytes is signed, not the bytes
MAX_NAMES = 5  # names tried per Finalize invocation before giving up (each taken one is a finding for verify)


def signature_key(manifest_key: str) -> str:
    """`.../manifest-0002.json` -> `.../manifest-0002.sig.json`."""
    return manifest_key.removesuffix(".json") + SIGNATURE_SUFFIX


def digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def signature_document(*, key_id: str, signature: bytes, bucket: str, key: str, body: bytes,
                       signed_at: str) -> dict[str, Any]:
    return {
        "custodyVersion": CUSTODY_VERSION,
        "manifest": {"bucket": bucket, "key": key, "sha256": "sha256:" + hashlib.sha256(body).hexdigest()},
        "keyId": key_id,
        "signingAlgorithm": SIGNING_ALGORITHM,
        "messageType": MESSAGE_TYPE,
        "signature": base64.b64encode(signature).decode(),
        "signedAt": signed_at,
    }


class ManifestNamesTaken(ResponderError):
    """Every name tried for this attempt's manifest already exists (someone else wrote them)."""


def write_manifest(bucket: Any, names: list[str], build: Callable[[str], bytes],
                   sign: Callable[[bytes], tuple[str, bytes] | None], *, signed_at: str) -> dict[str, Any]:
    """Write this attempt's manifest, signed, under the first of `names` nobody has written.

    `build(key)` is the manifest's body naming `key`; `sign(body)` returns (key id, signature) of its digest, or
    None when it cannot sign (not configured, or refused: the manifest is then written unsigned and `verify` says
    so). `bucket.put_json_once(key, body)` returns where it stored, or None when the key exists. Returns what
    `put_json_once` returned for the manifest, with ``signature`` (key, keyId) when signed and ``attempt`` names
    tried (``namesTaken``)."""
    taken: list[str] = []
    for key in names[:MAX_NAMES]:
        body = build(key)
        signed = sign(body)
        signature = None
        if signed is not None:
            key_id, raw = signed
            document = signature_document(key_id=key_id, signature=raw, bucket=bucket.bucket, key=key, body=body,
                                          signed_at=signed_at)
            where = bucket.put_json_once(signature_key(key),
                                         json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
            if where is None:
                taken.append(signature_key(key))
                continue
            signature = {"key": where["key"], "versionId": where.get("versionId"), "keyId": key_id}
        stored = bucket.put_json_once(key, body)
        if stored is None:  # our signature now sits beside someone else's manifest: verify reports that name
            taken.append(key)
            continue
        out = dict(stored)
        if signature:
            out["signature"] = signature
        if taken:
            out["namesTaken"] = taken
        return out
    raise ManifestNamesTaken(f"every manifest name tried exists already: {', '.join(taken)} (written by someone "
                             "other than this attempt; python -m cli verify reports them)")


def check_signature(key: Any, body: bytes, document: dict[str, Any], *, manifest_key: str | None = None) -> list[str]:
    """What does not match between a manifest's bytes and its signature document ([] when it all holds)."""
    problems = []
    if document.get("custodyVersion") not in KNOWN_VERSIONS:
        problems.append(f"signature: unknown custodyVersion {document.get('custodyVersion')!r}")
    named = (document.get("manifest") or {}).get("key")
    if manifest_key is not None and named not in (None, manifest_key):
        problems.append(f"signature: it is the signature of {named}, not of {manifest_key}")
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


# -- the chain (python -m cli verify) ----------------------------------------------------------------------------
_NAME = re.compile(r"manifest(?:-(\d+)(?:-(\d+))?)?(\.sig)?\.json")


_ANALYSIS = re.compile(r"manifest-(?:analysis|release)-[A-Za-z0-9._-]{1,90}?(\.sig)?\.json")


def manifest_name(key: str) -> tuple[int, int, bool] | None:
    """(attempt, try, is a signature document) of a key under `incidents/<id>/`, or None if it is no manifest's.
    The name of the earlier design, `manifest.json`, is attempt 0. An analysis's manifest
    (``manifest-analysis-<execution>.json``, responder.workstation) and a release's
    (``manifest-release-<execution>.json``, responder.release) are attempt -1: checked like every manifest,
    never the latest (the latest names the evidence snapshots)."""
    analysis = _ANALYSIS.fullmatch(key.rsplit("/", 1)[-1])
    if analysis:
        return -1, 1, bool(analysis.group(1))
    match = _NAME.fullmatch(key.rsplit("/", 1)[-1])
    if not match:
        return None
    return int(match.group(1) or 0), int(match.group(2) or 1), bool(match.group(3))


def check_chain(versions: dict[str, int], read: Callable[[str], bytes | None], key: Any,
                incident_id: str) -> tuple[list[str], list[str], dict[str, Any]]:
    """(problems, notes, facts) of every manifest of an incident. `versions`: every object key under
    `incidents/<incidentId>/manifest` with its number of versions (ListObjectVersions); `read(key)` its bytes.
    Each manifest must exist once (one version), be signed by a signature document naming it, verify, name
    itself and the incident. facts: ``latest`` (the key of the newest attempt's manifest), ``manifests`` (how many),
    ``manifest`` (its parsed document, or None)."""
    problems: list[str] = []
    notes: list[str] = []
    manifests: dict[str, tuple[int, int]] = {}
    signatures: set[str] = set()
    for name, count in sorted(versions.items()):
        parsed = manifest_name(name)
        if parsed is None:
            continue
        attempt, tried, is_signature = parsed
        if count > 1:
            problems.append(f"{name}: {count} versions - a manifest or signature is written once; a later version "
                            "was written over it")
        if is_signature:
            signatures.add(name)
        else:
            manifests[name] = (attempt, tried)
    latest = max(manifests, key=lambda k: manifests[k]) if manifests else None
    parsed_latest = None
    for name in sorted(manifests, key=lambda k: manifests[k]):
        body = read(name)
        if body is None:
            problems.append(f"{name}: listed but cannot be read")
            continue
        try:
            document = json.loads(body)
        except ValueError:
            problems.append(f"{name}: not JSON")
            continue
        if name == latest:
            parsed_latest = document
        if document.get("incidentId") != incident_id:
            problems.append(f"{name}: it is of incident {document.get('incidentId')!r}, not {incident_id}")
        if document.get("manifestKey") not in (None, name):
            problems.append(f"{name}: it names itself {document['manifestKey']} (a manifest copied to another name)")
        if signature_key(name) not in signatures:
            problems.append(f"{name}: unsigned - no signature document {signature_key(name)} (Finalize writes the "
                            "signature first: this manifest was not written by the responder)")
            continue
        raw = read(signature_key(name))
        try:
            signed = json.loads(raw or b"")
        except ValueError:
            problems.append(f"{signature_key(name)}: not JSON")
            continue
        for problem in check_signature(key, body, signed, manifest_key=name):
            problems.append(f"{name}: {problem}")
        recorded_version = (signed.get("manifest") or {}).get("versionId")
        if recorded_version and versions.get(name, 0) > 1:
            notes.append(f"{name}: the signature names version {recorded_version}")
    for name in sorted(signatures):
        if name.removesuffix(SIGNATURE_SUFFIX) + ".json" not in manifests:
            notes.append(f"{name}: a signature without its manifest (Finalize stopped between the two writes, "
                         "or the name was taken)")
    return problems, notes, {"latest": latest, "manifests": len(manifests), "manifest": parsed_latest}


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
