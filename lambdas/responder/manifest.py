"""The evidence manifest: the chain-of-custody document of one response, written at the end of every attempt that
acted (not for duplicates, findings the responder does not act on, or dry runs: they changed nothing).

Stored write-once as ``incidents/<incidentId>/manifest-<attempt>.json`` in the forensics evidence bucket (one name
per attempt, ``manifest-<attempt>-<n>.json`` if Finalize is retried and the name is taken; versioned, Object Lock,
written with ``If-None-Match: *``: no attempt replaces another's, and responder.custody signs each), and its
SHA-256 (over the exact bytes stored) is written into the incident record with its key. To check one by hand::

    aws s3api get-object --bucket <bucket> --key incidents/<id>/manifest-0001.json m.json
    sha256sum m.json        # equals the record's manifest.sha256 (without the "sha256:" prefix)

Contents (``manifestVersion`` 1): ``incidentId``, ``manifestKey`` (the key it is stored under: a copy under another
name does not verify), ``attempt``, ``executionId``, ``generatedAt``, ``outcome``, ``incident`` (the
normalized incident: targets, cut-off, dry run...), ``finding`` (the execution input exactly as received: the
GuardDuty event, finding or manual request, read back from Step Functions), ``timeline`` (every action of this
attempt as the tasks recorded it in the incident record: what, target, when, result, request id or error;
``timelineOmitted`` counts entries that did not fit the record's bound), ``evidence`` (``cloudtrail``: each
capture's bucket, key, version and digest; ``instances``: each instance's isolation and evidence results as the
tasks stored them in the record - snapshot and copy ids, keys, digests; ``identities``: each identity's result;
``artifacts``: every item of an ``artifacts`` list in those results; ``pivots``: what the attacker minted and
what was done about it, each citing its CloudTrail event; ``rotation``: what the on-call must rotate, in the
runbook's order - responder.pivots, responder.rotation), and ``error`` (the failure slot, if any).

Serialisation: JSON, keys sorted, no insignificant whitespace, UTF-8.
"""
from __future__ import annotations

import json
from typing import Any

MANIFEST_VERSION = 1


def prefix(incident_id: str) -> str:
    """Every manifest and signature document of the incident starts with this."""
    return f"incidents/{incident_id}/manifest"


def key(incident_id: str, attempt: int, tried: int = 1) -> str:
    """The write-once name of an attempt's manifest: `manifest-0003.json`, then `manifest-0003-2.json`..."""
    return f"{prefix(incident_id)}-{attempt:04d}" + (f"-{tried}" if tried > 1 else "") + ".json"


def keys(incident_id: str, attempt: int, count: int) -> list[str]:
    """The names an attempt tries, in order."""
    return [key(incident_id, attempt, n) for n in range(1, count + 1)]


def _artifacts(value: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "artifacts" and isinstance(v, list):
                found.extend(v)
            else:
                found.extend(_artifacts(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(_artifacts(v))
    return found


def evidence(incident: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The evidence section from the incident record: CloudTrail captures (``scope``) and each target's result
    (``results``, written by the tasks)."""
    results = record.get("results") or {}
    cloudtrail = [{k: c[k] for k in ("principal", "bucket", "key", "uri", "versionId", "sha256", "events",
                                     "truncated", "status", "error") if k in c}
                  for c in record.get("scope") or [] if c.get("key")]
    instances = [{"instanceId": i, "isolation": results.get(f"isolation:{i}") or {},
                  "evidence": results.get(f"evidence:{i}") or {}} for i in incident.get("instances") or []]
    identities = [v for k, v in sorted(results.items()) if k.startswith("identity:")]
    return {"cloudtrail": cloudtrail, "instances": instances, "identities": identities,
            "artifacts": _artifacts(instances), "pivots": record.get("pivots") or [],
            "rotation": record.get("rotation") or []}


def build(*, incident: dict[str, Any], finding: Any, summary: dict[str, Any], timeline: list[dict[str, Any]],
          record: dict[str, Any], failure: dict[str, Any] | None, generated_at: str, manifest_key: str = "",
          attempt: int | None = None) -> dict[str, Any]:
    document = {
        "manifestVersion": MANIFEST_VERSION,
        "incidentId": summary.get("incidentId"),
        "manifestKey": manifest_key or None,
        "attempt": attempt,
        "executionId": summary.get("executionId"),
        "generatedAt": generated_at,
        "outcome": summary.get("outcome"),
        "incident": incident,
        "finding": finding,
        "timeline": timeline,
        "evidence": evidence(incident, record),
        "error": failure,
    }
    if record.get("timelineOmitted"):
        document["timelineOmitted"] = record["timelineOmitted"]
    if summary.get("approval"):  # who approved or denied, when and why (or the deadline that passed)
        document["approval"] = summary["approval"]
    if summary.get("report"):  # the incident report written beside it (responder.report): keys and SHA-256
        document["report"] = summary["report"]
    return document


def serialize(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()
