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
``approval_denied``          the containment level required an approval and a person denied it (or answered
                             something that is not an approval): nothing was contained
``approval_timed_out``       nobody answered before the deadline and the level's ``onTimeout`` is ``stand_down``:
                             nothing was contained (evidence taken before the approval is kept)
``not_handled``              a finding type, sample or severity the responder does not act on
``duplicate``                a re-published finding already answered by an earlier incident
``analysis_ready``           an analyze request: the incident's verified copies are attached to the workstation
                             (``analysis_incomplete`` / ``analysis_refused`` / ``analysis_failed`` fail the
                             execution; responder.workstation)
``released``                 a release request undid the responder's containment of the named targets
                             (``already_released``: nothing left to undo; ``release_planned``: dry run;
                             ``release_refused`` / ``release_failed`` fail the execution; responder.release)

The execution fails (error name in ``error``) for failed, partially_contained and protection_unverified.
"""
from __future__ import annotations

from typing import Any

from responder import shapes

FAILING = {"failed": "ContainmentFailed", "partially_contained": "ContainmentIncomplete",
           "protection_unverified": "ProtectionCheckFailed"}
DONE = frozenset({"contained", "already_contained", "isolated", "already_isolated", "collected", "planned"})


def target_statuses(state: dict[str, Any]) -> list[str]:
    """Per-target statuses from the state's summaries (responder.shapes): a task that failed as a whole is
    ``failed``, and so is an identity branch that failed before it had any identity."""
    statuses = [s for s in (shapes.status_of(t) for t in shapes.target_summaries(state)) if s]
    identity = shapes.branches(state)["identity"]
    if identity.get("failure") and not identity.get("identities"):
        statuses.append("failed")
    return statuses


def decide(state: dict[str, Any]) -> dict[str, Any]:
    incident = state.get("incident") or {}
    if incident.get("disposition") == "analyze":  # an analyze request: no containment, its own outcomes
        from responder.workstation import outcome as analysis_outcome

        return analysis_outcome(state)
    if incident.get("disposition") == "release":  # a release request: no containment, its own outcomes
        from responder.release import outcome as release_outcome

        return release_outcome(state)
    failure = shapes.failure_of(state.get("failure"))
    statuses = target_statuses(state)
    disposition = incident.get("disposition")
    if disposition in ("not_handled", "duplicate"):
        outcome = disposition
    elif not statuses and not failure and _stood_down(incident):
        outcome = _stood_down(incident)
    elif failure and not statuses:
        outcome = "failed"
    elif "failed" in statuses or failure:
        outcome = "partially_contained" if DONE & set(statuses) or _changed(state) else "failed"
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
    if name and _integrity_failure(state):
        name = "EvidenceIntegrityError"
    cause = _cause(incident, statuses, failure, state) if name else None
    return {"outcome": outcome, "fail": name is not None, "error": name, "cause": cause}


def _stood_down(incident: dict[str, Any]) -> str | None:
    """``approval_denied`` / ``approval_timed_out`` when the approval ended without containing, else None."""
    approval = incident.get("approval")
    if approval is None or (incident.get("containment") or {}).get("level") != "approval":
        return None
    decision = approval.get("decision") if isinstance(approval, dict) else None
    if decision == "approve" or (decision == "timed_out" and approval.get("onTimeout") == "contain"):
        return None
    return "approval_timed_out" if decision == "timed_out" else "approval_denied"


def _changed(state: dict[str, Any]) -> bool:
    """Did any step change something (``changes`` counted by the tasks)? Scope captures do not count."""
    return any((t.get("changes") or 0) > 0 for t in shapes.target_summaries(state))


def _integrity_failure(state: dict[str, Any]) -> bool:
    for item in shapes.branches(state)["instances"]:
        evidence = item.get("evidence") or {}
        if "EvidenceIntegrityError" in (evidence.get("error"), (evidence.get("failure") or {}).get("error")):
            return True
    return False


def first_failures(state: dict[str, Any], limit: int = 3) -> list[str]:
    """'target: Error: message' for the first failures found in the summaries, for the cause."""
    found: list[str] = []
    identity = shapes.branches(state)["identity"]
    if identity.get("failure"):
        f = identity["failure"]
        found.append(f"identities: {f['error']}: {str(f.get('cause'))[:300]}")
    for t in identity.get("identities") or []:
        if t.get("status") == "failed" and t.get("error"):
            found.append(f"{t.get('target')}: {t.get('error')}: {str(t.get('message'))[:200]}")
    for item in shapes.branches(state)["instances"]:
        for part, value in shapes.parts(item):
            if value.get("failure"):
                f = value["failure"]
                found.append(f"{item.get('instanceId')} {part}: {f['error']}: {str(f.get('cause'))[:200]}")
            elif value.get("status") == "failed" and value.get("error"):
                found.append(f"{item.get('instanceId')} {part}: {value['error']}: {str(value.get('message'))[:200]}")
    return found[:limit]


def _cause(incident: dict, statuses: list[str], failure: dict | None, state: dict[str, Any]) -> str:
    parts = [f"incident {incident.get('incidentId', '?')}"]
    if statuses:
        parts.append("targets: " + ", ".join(statuses[:20]) + (f" (+{len(statuses) - 20} more)" if len(statuses) > 20 else ""))
    if failure:
        parts.append(f"{failure['task']}: {failure['error']}: {str(failure.get('cause'))[:300]}")
    parts += first_failures(state)
    parts.append("nothing was undone; see the execution output and the incident record")
    return "; ".join(parts)
