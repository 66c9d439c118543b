"""The evidence manifest: the chain-of-custody document of one response, written at the end of every attempt that
acted (not for duplicates, findings the responder does not act on, or dry runs: they changed nothing).

Stored as ``incidents/<incidentId>/manifest.json`` in the forensics evidence bucket (versioned, Object Lock: a
later attempt adds a version, never replaces one), and its SHA-256 (over the exact bytes stored) is written into
the incident record together with the object's version id. To verify a manifest::

    aws s3api get-object --bucket <bucket> --key incidents/<id>/manifest.json --version-id <v> m.json
    sha256sum m.json        # equals the record's manifest.sha256 (without the "sha256:" prefix)

Contents (``manifestVersion`` 1): ``incidentId``, ``executionId``, ``generatedAt``, ``outcome``, ``incident`` (the
normalized incident: targets, cut-off, dry run...), ``finding`` (the execution input exactly as received: the
GuardDuty event, finding or manual request), ``timeline`` (every action of this attempt: what, target, when,
result, request id or error), ``evidence`` (``cloudtrail``: each capture's bucket, key, version and digest;
``instances``: each instance's isolation and evidence results as the tasks returned them - snapshot and copy ids,
keys, digests - without their timeline entries, which are in ``timeline``; ``artifacts``: every item of an
``artifacts`` list a task returned), and ``error`` (the workflow error, if any).

Serialisation: JSON, keys sorted, no insignificant whitespace, UTF-8.
"""
from __future__ import annotations

import json
from typing import Any

MANIFEST_VERSION = 1
STATE_KEYS = ("incident", "results", "error")


def key(incident_id: str) -> str:
    return f"incidents/{incident_id}/manifest.json"


def finding(state: dict[str, Any]) -> dict[str, Any]:
    """The raw execution input: Finalize's state without what the workflow added."""
    return {k: v for k, v in state.items() if k not in STATE_KEYS}


def _without_entries(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_entries(v) for k, v in value.items() if k not in ("entries", "recordedEntries")}
    if isinstance(value, list):
        return [_without_entries(v) for v in value]
    return value


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


def evidence(results: list | None) -> dict[str, Any]:
    results = results or []
    identity = results[0] if results and isinstance(results[0], dict) else {}
    instances = results[1] if len(results) > 1 and isinstance(results[1], list) else []
    cloudtrail = [{k: c[k] for k in ("principal", "bucket", "key", "uri", "versionId", "sha256", "events",
                                     "truncated", "status", "error") if k in c}
                  for c in (identity.get("scope") or {}).get("captures", []) if c.get("key")]
    return {"cloudtrail": cloudtrail, "instances": _without_entries(instances),
            "artifacts": _artifacts(instances)}


def build(state: dict[str, Any], *, summary: dict[str, Any], timeline: list[dict[str, Any]],
          generated_at: str) -> dict[str, Any]:
    return {
        "manifestVersion": MANIFEST_VERSION,
        "incidentId": summary.get("incidentId"),
        "executionId": summary.get("executionId"),
        "generatedAt": generated_at,
        "outcome": summary.get("outcome"),
        "incident": state.get("incident") or {},
        "finding": finding(state),
        "timeline": timeline,
        "evidence": evidence(state.get("results")),
        "error": state.get("error"),
    }


def serialize(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()
