"""The outcome of an incident, decided from the state the workflow reached. Pure.

Outcomes (one per incident, each notified):

``contained``                every target contained (or already contained by an earlier run)
``partially_contained``      something failed after something else was changed (a target contained, or a step of
                             a target that then failed) - nothing is undone
``failed``                   nothing could be contained
``protected``                a target is protected (own role, break-glass pattern, protection tag): untouched
``protection_unverified``    the protection check could not be made: nothing destructive was done (fail closed)
``not_found``                a target does not exist (any longer) where the finding says: a deleted or renamed
                             user whose key leads nowhere, a role that did not issue the credentials, a terminated
                             instance. Nothing was contained for it; the others are reported as they ended
``manual_action_required``   root / federated / Identity Center identities: the record lists the steps
``dry_run_plan``             a dry run: the plan lists every change that would be made
``not_handled``              a finding type, sample or severity the responder does not act on
``duplicate``                a re-published finding already answered by an earlier incident

The execution fails (error name in ``error``) for failed, partially_contained and protection_unverified.
"""
from __future__ import annotations

from typing import Any

FAILING = {"failed": "ContainmentFailed", "partially_contained": "ContainmentIncomplete",
           "protection_unverified": "ProtectionCheckFailed"}


def _instance_statuses(item: dict) -> list[str]:
    statuses = []
    for part in ("isolation", "evidence"):
        value = item.get(part) or {}
        if "Error" in value:  # a Catch put {Error, Cause} here
            statuses.append("failed")
        elif value.get("status"):
            statuses.append(value["status"])
    return statuses


def target_statuses(results: list | None) -> list[str]:
    """Per-target statuses from the Parallel state's results: [identity branch, instance branch]."""
    if not results:
        return []
    statuses: list[str] = []
    identity = results[0] if len(results) > 0 else {}
    statuses += [r["status"] for r in (identity or {}).get("identities", [])]
    if (identity or {}).get("status") == "failed" and not (identity or {}).get("identities"):
        statuses.append("failed")
    for item in (results[1] if len(results) > 1 else None) or []:
        statuses += _instance_statuses(item)
    return statuses


def decide(state: dict[str, Any]) -> dict[str, Any]:
    incident = state.get("incident") or {}
    error = state.get("error")
    statuses = target_statuses(state.get("results"))
    disposition = incident.get("disposition")
    if disposition in ("not_handled", "duplicate"):
        outcome = disposition
    elif error and not statuses:
        outcome = "failed"
    elif "failed" in statuses or error:
        done = {"contained", "already_contained", "isolated", "already_isolated", "collected", "planned"}
        outcome = "partially_contained" if done & set(statuses) or _changed(state.get("results")) else "failed"
    elif "protection_unverified" in statuses:
        outcome = "protection_unverified"
    elif "protected" in statuses:
        outcome = "protected"
    elif "not_found" in statuses:
        outcome = "not_found"
    elif incident.get("dryRun"):
        outcome = "dry_run_plan"
    elif "manual" in statuses:
        outcome = "manual_action_required"
    else:
        outcome = "contained"
    name = FAILING.get(outcome)
    if name and _integrity_failure(state.get("results")):
        name = "EvidenceIntegrityError"
    cause = None
    if name:
        cause = _cause(incident, statuses, error, state.get("results"))
    return {"outcome": outcome, "fail": name is not None, "error": name, "cause": cause}


def _changed(results: list | None) -> bool:
    """Did any containment step change something (a journal entry ``done``)? Scope captures do not count."""
    results = results or []
    identity = results[0] if results and isinstance(results[0], dict) else {}
    entries = [e for t in identity.get("identities") or [] for e in t.get("entries") or []]
    for item in (results[1] if len(results) > 1 and isinstance(results[1], list) else []):
        for part in ("isolation", "evidence"):
            value = item.get(part) if isinstance(item.get(part), dict) else {}
            entries += value.get("entries") or []
    return any(e.get("status") == "done" for e in entries)


def _integrity_failure(results: list | None) -> bool:
    for item in ((results or [None, None])[1:] or [None])[0] or []:
        evidence = item.get("evidence") or {}
        if evidence.get("error") == "EvidenceIntegrityError" or item.get("error") == "EvidenceIntegrityError":
            return True
    return False


def first_failures(results: list | None, limit: int = 3) -> list[str]:
    """'target: Error: message' for the first failures found in the branch results, for the cause."""
    found: list[str] = []
    identity = (results or [None])[0] or {}
    if identity.get("error"):
        found.append(f"identities: {identity['error']}: {str(identity.get('cause'))[:300]}")
    for result in identity.get("identities", []):
        for entry in result.get("entries", []):
            if entry.get("status") == "failed":
                found.append(f"{entry.get('target')}: {entry.get('error')}: {str(entry.get('message'))[:200]}")
    for item in ((results or [None, None])[1:] or [None])[0] or []:
        for part in ("isolation", "evidence"):
            value = item.get(part) or {}
            if "Error" in value:
                found.append(f"{item.get('instanceId')} {part}: {value['Error']}: {str(value.get('Cause'))[:200]}")
            elif value.get("status") == "failed" and value.get("error"):
                found.append(f"{item.get('instanceId')} {part}: {value['error']}: {str(value.get('message'))[:200]}")
    return found[:limit]


def _cause(incident: dict, statuses: list[str], error: dict | None, results: list | None = None) -> str:
    parts = [f"incident {incident.get('incidentId', '?')}"]
    if statuses:
        parts.append("targets: " + ", ".join(statuses))
    if error:
        parts.append(f"{error.get('Error')}: {str(error.get('Cause'))[:300]}")
    parts += first_failures(results)
    parts.append("nothing was undone; see the execution output and the incident record")
    return "; ".join(parts)
