"""Finalize: turn the workflow's state into the incident summary (the execution output), then record and notify.

Every path of the state machine ends here: success, a Catch (``$.error``), a duplicate or a finding that is not
acted on. In this order, each step independent of the others:

1. **manifest** - for an attempt that acted (disposition ``respond``, not a dry run): the evidence manifest
   (responder.manifest) into the forensics evidence bucket;
2. **record** - the outcome, this execution's timeline, the manifest's location and SHA-256, scope, plan, manual
   steps into the incident item (responder.records.finish; not for a duplicate: its record is the first
   incident's, which Triage already updated);
3. **notify** - one SNS message (responder.notify).

A transient AWS error raises `TransientAwsError` (Step Functions retries Finalize; the manifest and record writes
are idempotent, and the notification is the last step, so a retry does not notify twice). Any other failure of a
step is reported in ``recordingErrors`` and in the notification, and fails the execution with
``IncidentRecordIncomplete`` - unless it already fails for a containment reason. Nothing is ever undone.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from responder import custody
from responder import manifest as manifests
from responder import notify, records
from responder.errors import InvalidInput, ResponderError, TransientAwsError, recorded
from responder.outcome import decide
from responder.scope import summarize

ACTED = frozenset({"respond"})


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(now: datetime) -> str:
    return now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- reading the state ---------------------------------------------------------------------------------------
def _branches(state: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    results = state.get("results") or []
    identity = results[0] if len(results) > 0 and isinstance(results[0], dict) else {}
    instances = results[1] if len(results) > 1 and isinstance(results[1], list) else []
    return identity, instances


def _failure(task: str, target: str, error: Any, when: str) -> dict[str, Any]:
    error = error if isinstance(error, dict) else {}
    return {"time": when, "task": task, "step": task, "status": "failed", "target": target,
            "error": str(error.get("Error") or error.get("error") or "TaskFailed"),
            "message": str(error.get("Cause") or error.get("cause") or "")[:400]}


def timeline(state: dict[str, Any], when: str, *, unrecorded_only: bool = False) -> list[dict[str, Any]]:
    """Every action of this execution (entries of every task, plus an entry for each task that failed as a
    whole). `unrecorded_only`: leave out what tasks already appended to the record (``recordedEntries``)."""
    identity, instances = _branches(state)

    def part(task: str, result: dict[str, Any], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        skip = int(result.get("recordedEntries") or 0) if unrecorded_only else 0
        return [dict(e, task=e.get("task") or task) for e in entries[skip:]]

    out = part("identity", identity, records.identity_entries(identity))
    if identity.get("status") == "failed" and (identity.get("error") or identity.get("cause")):
        out.append(_failure("identity", "identities", identity, when))
    for item in instances:
        target = item.get("instanceId") or "instance"
        for task, key in (("isolation", "isolation"), ("evidence", "evidence")):
            result = item.get(key) if isinstance(item.get(key), dict) else {}
            out += part(task, result, result.get("entries") or [])
            if "Error" in result:  # a Catch put {Error, Cause} in place of the result
                out.append(_failure(task, target, result, when))
        if item.get("error") and item.get("cause") is not None:  # EvidenceFailed
            out.append(_failure("evidence", target, item, when))
    if state.get("error"):
        out.append(_failure("workflow", (state.get("incident") or {}).get("incidentId") or "execution",
                            state["error"], when))
    return out


def _incident(state: dict[str, Any], execution_id: str) -> dict[str, Any]:
    """The incident; when Triage itself failed (no ``incident`` in the state), normalized again from the input
    (pure) so the failure is still recorded and notified under the right id."""
    if state.get("incident"):
        return state["incident"]
    from responder.triage import normalize

    try:
        return normalize(manifests.finding(state), execution_name=records.execution_name(execution_id))
    except InvalidInput:
        return {}


# -- the summary (the execution output) ----------------------------------------------------------------------
def summary(state: dict[str, Any], *, execution_id: str = "", incident: dict[str, Any] | None = None,
            when: str | None = None) -> dict[str, Any]:
    incident = incident if incident is not None else (state.get("incident") or {})
    identity, instances = _branches(state)
    decision = decide(dict(state, incident=incident))
    entries = timeline(dict(state, incident=incident), when or _iso(_now()))
    out: dict[str, Any] = {
        "incidentId": incident.get("incidentId"),
        "outcome": decision["outcome"],
        "fail": decision["fail"],
        "error": decision["error"],
        "cause": decision["cause"],
        "origin": incident.get("origin"),
        "accountId": incident.get("accountId"),
        "region": incident.get("region"),
        "findingType": incident.get("findingType"),
        "severity": incident.get("severity"),
        "count": incident.get("count"),
        "dryRun": bool(incident.get("dryRun")),
        "disposition": incident.get("disposition"),
        "dispositionReason": incident.get("dispositionReason"),
        "cutoff": incident.get("cutoff"),
        "identities": identity.get("identities", []),
        "instances": instances,
        "failures": [{k: e[k] for k in ("task", "target", "step", "api", "error", "message") if e.get(k)}
                     for e in entries if e.get("status") == "failed"],
        "executionId": execution_id,
    }
    if incident.get("record"):
        out["attempt"] = incident["record"]
    if incident.get("duplicateOf"):
        out["duplicateOf"] = incident["duplicateOf"]
    if incident.get("protectionConfigError"):
        out["protectionConfigError"] = incident["protectionConfigError"]
    if not out["identities"] and not out["instances"]:
        out["requested"] = records.targets(incident)
    captures = (identity.get("scope") or {}).get("captures")
    if captures:
        out["scope"] = summarize(captures)
    if state.get("error"):
        out["workflowError"] = state["error"]
    if out["dryRun"]:
        out["plan"] = [{k: e[k] for k in ("task", "step", "api", "target", "params") if k in e}
                       for e in entries if e.get("status") == "planned"]
    manual = [{"target": t.get("target"), "steps": t["manualSteps"]} for t in out["identities"] if t.get("manualSteps")]
    if manual:
        out["manualSteps"] = manual
    return out


# -- recording and notifying ---------------------------------------------------------------------------------
class _Steps:
    """Runs the recording steps: transient errors are raised (retry Finalize), others are collected."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            if isinstance(exc, ResponderError) and not isinstance(exc, TransientAwsError):
                code = type(exc).__name__  # a typed error (a role that cannot be assumed, a full record)
            else:
                code = recorded(exc, name)
            self.errors.append({"step": name, "error": code, "message": str(exc)[:300]})
        return None

    def missing(self, name: str, setting: str) -> None:
        self.errors.append({"step": name, "error": "NotConfigured", "message": f"{setting} is not configured"})


def finalize(state: dict[str, Any], *, execution_id: str = "", table: Callable[[], Any] | None = None,
             bucket: Callable[[str], Any] | None = None, topic: Callable[[], Any] | None = None,
             table_name: str = "", now: datetime | None = None,
             signer: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """The execution output, after writing the manifest and the record and publishing the notification.
    `table()`, `bucket(incident_id)`, `topic()` and `signer(incident_id)` (the custody key) build the adapters
    (None: that piece is not configured)."""
    now = now or _now()
    when = _iso(now)
    incident = _incident(state, execution_id)
    full = dict(state, incident=incident)
    out = summary(full, execution_id=execution_id, incident=incident, when=when)
    steps = _Steps()
    incident_id = incident.get("incidentId")
    duplicate = incident.get("disposition") == "duplicate"

    if incident_id and incident.get("disposition") in ACTED and not incident.get("dryRun"):
        if bucket is None:
            steps.missing("manifest", "IR_EVIDENCE_BUCKET (and IR_FORENSICS_ROLE_ARN)")
        else:
            document = manifests.build(full, summary=out, timeline=timeline(full, when), generated_at=when)
            body = manifests.serialize(document)
            stored = steps.run("manifest", lambda: bucket(incident_id).put_json(manifests.key(incident_id), body))
            if stored:
                out["manifest"] = stored
                # chain of custody (responder.custody): the stacks always configure the key; a manifest left
                # unsigned is what `cli verify` reports first
                if signer is not None:
                    signed = steps.run("signature", lambda: custody.sign_manifest(
                        signer(incident_id), bucket(incident_id), body, stored, signed_at=when))
                    if signed:
                        out["manifest"] = dict(stored, signature=signed)

    subject, _, _ = notify.render(out)
    if incident_id:
        out["record"] = {"table": table_name or None, "incidentId": incident_id}
    if incident_id and not duplicate:
        if table is None:
            steps.missing("record", "IR_INCIDENT_TABLE")
        else:
            fields = {
                "targetStatus": _target_status(out),
                "scope": out.get("scope"),
                "manifest": out.get("manifest"),
                "plan": records.compact(out["plan"], execution=records.execution_name(execution_id), task="plan")
                if out.get("plan") else None,
                "manualSteps": out.get("manualSteps"),
                "error": state.get("error"),
                "dispositionReason": incident.get("dispositionReason") or None,
                "notification": {"subject": subject, "priority": notify.PRIORITY.get(out["outcome"], "high")},
                "recordingErrors": list(steps.errors) or None,
            }
            result = steps.run("record", lambda: records.finish(
                table(), incident, execution_id=execution_id, outcome=out["outcome"],
                entries=timeline(full, when, unrecorded_only=True) + [_closing(out, when)], fields=fields, now=now))
            if result:
                out["record"]["result"] = result

    if steps.errors:
        out["recordingErrors"] = list(steps.errors)
    if topic is None:
        steps.missing("notify", "IR_TOPIC_ARN")
    else:
        subject, text, attributes = notify.render(out)
        message_id = steps.run("notify", lambda: topic().publish(subject, text, attributes))
        if message_id:
            out["notification"] = {"subject": subject, "messageId": message_id}
    if steps.errors:
        out["recordingErrors"] = steps.errors
        if not out["fail"]:
            out.update(fail=True, error="IncidentRecordIncomplete",
                       cause="; ".join(f"{e['step']}: {e['error']} {e['message']}" for e in steps.errors)[:1000]
                       + f"; the outcome was {out['outcome']}; nothing was undone")
    return out


def _target_status(out: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{k: t.get(k) for k in ("type", "target", "status", "reason") if t.get(k)} for t in out["identities"]]
    for item in out["instances"]:
        isolation = item.get("isolation") if isinstance(item.get("isolation"), dict) else {}
        evidence = item.get("evidence") if isinstance(item.get("evidence"), dict) else {}
        rows.append({"type": "Instance", "target": item.get("instanceId"),
                     "status": isolation.get("status") or ("failed" if "Error" in isolation else None),
                     "evidence": evidence.get("status")})
    return rows


def _closing(out: dict[str, Any], when: str) -> dict[str, Any]:
    return {"time": when, "task": "finalize", "step": "outcome", "status": out["outcome"],
            "target": out.get("incidentId") or "incident",
            "detail": out.get("cause") or out.get("dispositionReason") or ""}
