"""Finalize: turn the workflow's state into the incident summary (the execution output), then record and notify.

Every path of the state machine ends here: success, a Catch (the failure slot ``$.failure``), a duplicate or a
finding that is not acted on. The state is bounded (responder.shapes): the incident and one short summary per
target. The full detail is read back, not carried: this execution's journal and each target's result from the
incident record (the tasks wrote them as they ran), the raw input from Step Functions (`execution_input`). In this
order, each step independent of the others:

1. **report** and **manifest** - for an attempt that acted (disposition ``respond``, not a dry run): the evidence manifest
   (responder.manifest), signed through the custody signer role and written once under this attempt's own name
   into the forensics evidence bucket (responder.custody); before it, the incident report (responder.report: a
   self-contained HTML page and the principal's events as CSV), written once beside it (`write_report`);
2. **record** - the outcome, the task failures and the closing entry, the manifest's location and SHA-256, plan,
   manual steps into the incident item (responder.records.finish; not for a duplicate: its record is the first
   incident's, which Triage already updated);
3. **notify** - one SNS message (responder.notify).

A transient AWS error raises `TransientAwsError` (Step Functions retries Finalize; the manifest and record writes
are idempotent, and the notification is the last step, so a retry does not notify twice). Any other failure of a
step is reported in ``recordingErrors`` and in the notification, and fails the execution with
``IncidentRecordIncomplete`` - unless it already fails for a containment reason. Nothing is ever undone.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Callable

from responder import approval as approvals
from responder import custody
from responder import manifest as manifests
from responder import notify, records, report, shapes, workstation
from responder import release as releases
from responder.errors import InvalidInput, ResponderError, TransientAwsError, recorded
from responder.outcome import decide

ACTED = frozenset({"respond"})
MAX_LISTED = 50  # failures listed in the output (the record and the manifest have them all)
MAX_PLAN_BYTES = 32_000  # the dry-run plan in the output (the record's timeline has every planned call)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(now: datetime) -> str:
    return now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- reading the state and the record -----------------------------------------------------------------------
def failure_entries(state: dict[str, Any], when: str) -> list[dict[str, Any]]:
    """A timeline entry for each task (or the workflow) that failed as a whole: its journal cannot say it."""
    return [{"time": when, "task": f["task"], "step": f["task"], "status": "failed", "target": f["target"],
             "error": f["error"], "message": f["cause"][:400]} for f in shapes.failures(state)]


def _incident(state: dict[str, Any], execution_id: str, raw: Callable[[], Any]) -> dict[str, Any]:
    """The incident; when Triage itself failed (no ``incident`` in the state), normalized again from the raw
    input (pure) so the failure is still recorded and notified under the right id."""
    if state.get("incident"):
        return state["incident"]
    from responder.triage import normalize

    try:
        return normalize(raw(), execution_name=records.execution_name(execution_id))
    except InvalidInput:
        return {}


PLAN_TASKS = ("triage", "scope", "identity", "isolation", "evidence", "analysis")


def _plan_order(entry: dict[str, Any]) -> tuple[int, str, str]:
    task = str(entry.get("task") or "")
    rank = PLAN_TASKS.index(task) if task in PLAN_TASKS else len(PLAN_TASKS)
    return rank, task, str(entry.get("subject") or "")


def _capped(items: list[dict[str, Any]], limit_bytes: int) -> tuple[list[dict[str, Any]], int]:
    kept, total = [], 0
    for item in items:
        total += len(json.dumps(item, default=str))
        if total > limit_bytes:
            break
        kept.append(item)
    return kept, len(items) - len(kept)


# -- the summary (the execution output) ----------------------------------------------------------------------
def summary(state: dict[str, Any], *, execution_id: str = "", incident: dict[str, Any] | None = None,
            journal: list[dict[str, Any]] = (), scope: list[dict[str, Any]] | None = None,
            results: dict[str, dict[str, Any]] | None = None, when: str | None = None) -> dict[str, Any]:
    """The incident summary: bounded whatever the incident's size (one short summary per target, at most
    MAX_LISTED failures, the plan cut at MAX_PLAN_BYTES; ``failuresOmitted``/``planOmitted`` count the rest).
    `results`: the targets' full results from the incident record (the manual steps come from there)."""
    incident = incident if incident is not None else (state.get("incident") or {})
    found = shapes.branches(state)
    decision = decide(dict(state, incident=incident))
    entries = list(journal) + failure_entries(state, when or _iso(_now()))
    failures = [{k: e[k] for k in ("task", "target", "step", "api", "error", "message") if e.get(k)}
                for e in entries if e.get("status") == "failed"]
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
        "identities": list(found["identity"].get("identities") or []),
        "instances": found["instances"],
        "failures": failures[:MAX_LISTED],
        "executionId": execution_id,
    }
    if len(failures) > MAX_LISTED:
        out["failuresOmitted"] = len(failures) - MAX_LISTED
    if incident.get("record"):
        out["attempt"] = incident["record"]
    if incident.get("duplicateOf"):
        out["duplicateOf"] = incident["duplicateOf"]
    if incident.get("protectionConfigError"):
        out["protectionConfigError"] = incident["protectionConfigError"]
    if (incident.get("containment") or {}).get("level", "automatic") != "automatic":
        out["containment"] = incident["containment"]
    if "approval" in incident:
        out["approval"] = approvals.recorded(incident["approval"])
    if state.get("evidenceBeforeApproval"):
        out["evidenceBeforeApproval"] = [
            {"instanceId": i.get("instanceId"), "status": shapes.status_of(i.get("evidence") or {})}
            for i in state["evidenceBeforeApproval"] if isinstance(i, dict)][:MAX_LISTED]
    if incident.get("signal"):
        out["signal"] = incident["signal"]
    if incident.get("disposition") == "analyze":  # responder.workstation: the workstation, volumes, live response
        out["analysis"] = (state.get("analysis") or {}).get("summary") or {}
        out["analysisRequest"] = incident.get("analyze")
    if incident.get("disposition") == "release":  # responder.release: per target, released or why not
        out["release"] = (state.get("release") or {}).get("summary") or {}
        out["releaseRequest"] = dict(incident.get("release") or {}, reason=incident.get("reason"))
    if not out["identities"] and not out["instances"]:
        out["requested"] = records.targets(incident)
    for key in ("pivots", "rotation"):  # the attacker's plan (responder.pivots): counts and a few items
        if isinstance(found["identity"].get(key), dict) and found["identity"][key].get("count"):
            out[key] = found["identity"][key]
    if scope:
        out["scope"] = [{k: c[k] for k in ("principal", "status", "events", "truncated", "key", "sha256", "error")
                         if k in c} for c in scope][:MAX_LISTED]
    failure = shapes.failure_of(state.get("failure"))
    if failure:
        out["failure"] = failure
    if out["dryRun"]:
        # parallel branches append to the timeline in whatever order they finish: the plan is shown per task and
        # subject (each subject's calls in the order its task would make them), the same on every run
        planned = sorted((e for e in entries if e.get("status") == "planned"), key=_plan_order)
        plan = [{k: e[k] for k in ("task", "step", "api", "target", "params") if k in e} for e in planned]
        out["plan"], omitted = _capped(plan, MAX_PLAN_BYTES)
        if omitted:
            out["planOmitted"] = omitted
    full = [(results or {}).get(f"identity:{t.get('target')}") or {} for t in out["identities"]]
    manual = [{"target": t.get("target"), "steps": t["manualSteps"]} for t in full if t.get("manualSteps")]
    if manual:
        out["manualSteps"] = manual
    return out


MAX_ATTACKER_ITEMS = 20  # pivots / rotation items in the output and the notification (the record has them all)


def attacker_lists(item: dict[str, Any]) -> dict[str, Any]:
    """The record's pivots and rotation list (responder.pivots) as the summary and the notification carry them:
    the count and the first `MAX_ATTACKER_ITEMS`, each with its command."""
    out: dict[str, Any] = {}
    for key, fields in (("pivots", ("kind", "target", "status", "action", "eventId", "command")),
                        ("rotation", ("order", "kind", "arn", "eventId", "command"))):
        items = [i for i in item.get(key) or [] if isinstance(i, dict)]
        if items:
            out[key] = {"count": len(items), "items": [{k: i[k] for k in fields if i.get(k)}
                                                       for i in items[:MAX_ATTACKER_ITEMS]]}
            if len(items) > MAX_ATTACKER_ITEMS:
                out[key]["leftOut"] = len(items) - MAX_ATTACKER_ITEMS
            if key == "pivots":
                out[key]["statuses"] = {s: sum(1 for i in items if i.get("status") == s)
                                        for s in dict.fromkeys(i.get("status") for i in items)}
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
             execution_input: Callable[[], Any] | None = None, table_name: str = "",
             now: datetime | None = None, signer: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """The execution output, after writing the manifest and the record and publishing the notification.
    `table()`, `bucket(incident_id)`, `topic()` and `signer(incident_id)` (the custody key) build the adapters
    (None: that piece is not configured); `execution_input()` reads the raw execution input back (None: not
    available)."""
    now = now or _now()
    when = _iso(now)
    steps = _Steps()
    raw_input: dict[str, Any] = {}

    def raw() -> Any:
        if "value" not in raw_input:
            raw_input["value"] = steps.run("input", execution_input) if execution_input else None
        return raw_input["value"]

    incident = _incident(state, execution_id, raw)
    incident_id = incident.get("incidentId")
    duplicate = incident.get("disposition") == "duplicate"
    item: dict[str, Any] | None = None
    if incident_id and not duplicate and table is not None:
        item = steps.run("read record", lambda: table().get(incident_id))
    journal = records.journal(item, execution_id)
    out = summary(state, execution_id=execution_id, incident=incident, journal=journal,
                  scope=(item or {}).get("scope"), results=(item or {}).get("results"), when=when)
    if (item or {}).get("timelineOmitted"):
        out["timelineOmitted"] = item["timelineOmitted"]
    out.update(attacker_lists(item or {}))

    analysis = incident.get("disposition") == "analyze"
    released = incident.get("disposition") == "release"
    acted = incident.get("disposition") in ACTED or analysis or released
    if incident_id and acted and not incident.get("dryRun"):
        if bucket is None:
            steps.missing("manifest", "IR_EVIDENCE_BUCKET (and IR_FORENSICS_ROLE_ARN)")
        else:
            attempt = int((incident.get("record") or {}).get("attempt") or 1)

            def build(key: str) -> bytes:
                document = manifests.build(
                    incident=incident, finding=raw(), summary=out, generated_at=when, manifest_key=key,
                    attempt=None if (analysis or released) else attempt,
                    timeline=journal + failure_entries(state, when), record=item or {}, failure=out.get("failure"))
                if analysis:  # the full result the task stored: workstation, volumes, refused copies, rules
                    document["analysis"] = ((item or {}).get("results") or {}).get(
                        f"analysis:{records.execution_name(execution_id)}") or out.get("analysis")
                if released:  # the release's full result (responder.release), as the task stored it
                    document["release"] = ((item or {}).get("results") or {}).get(
                        f"release:{records.execution_name(execution_id)}") or out.get("release")
                return manifests.serialize(document)

            execution = records.execution_name(execution_id)
            names = (workstation.manifest_keys(incident_id, execution, custody.MAX_NAMES) if analysis
                     else releases.manifest_keys(incident_id, execution, custody.MAX_NAMES) if released
                     else manifests.keys(incident_id, attempt, custody.MAX_NAMES))

            def sign(body: bytes) -> tuple[str, bytes] | None:
                # chain of custody (responder.custody): the custody signer role signs; the stacks always configure
                # it. A refusal leaves this manifest unsigned (recorded here, reported first by `cli verify`); a
                # transient error retries Finalize before anything is written.
                if signer is None:
                    return None
                return steps.run("signature", lambda: signer(incident_id).sign(custody.digest(body)))

            if not (analysis or released):  # the report first: the signed manifest names its keys and digests
                written = steps.run("report", lambda: write_report(
                    bucket(incident_id), incident=incident, finding=raw(), summary=out, item=item or {},
                    journal=journal + failure_entries(state, when), attempt=attempt, when=when))
                if written:
                    out["report"] = written
            stored = steps.run("manifest", lambda: custody.write_manifest(
                bucket(incident_id), names, build, sign, signed_at=when))
            if stored:
                out["manifest"] = dict(stored) if (analysis or released) else dict(stored, attempt=attempt)

    subject, _, _ = notify.render(out)
    if incident_id:
        out["record"] = {"table": table_name or None, "incidentId": incident_id}
    if incident_id and not duplicate:
        if table is None:
            steps.missing("record", "IR_INCIDENT_TABLE")
        else:
            fields = {
                "targetStatus": _target_status(out),
                "manifest": out.get("manifest"),
                "report": out.get("report"),
                "plan": records.compact(out["plan"], execution=records.execution_name(execution_id), task="plan")
                if out.get("plan") else None,
                "manualSteps": out.get("manualSteps"),
                "error": out.get("failure"),
                "dispositionReason": incident.get("dispositionReason") or None,
                "notification": {"subject": subject, "priority": notify.PRIORITY.get(out["outcome"], "high")},
                "recordingErrors": list(steps.errors) or None,
                "containment": incident.get("containment"),
            }
            if "approval" in incident:  # the request (deadline) and the answer; the token is gone
                asked = {k: v for k, v in ((item or {}).get("approval") or {}).items() if k != "taskToken"}
                answered = out["approval"] or {}
                status = {"approve": "approved", "deny": "denied", "timed_out": "timed_out"}.get(
                    answered.get("decision"), "invalid")
                fields["approval"] = {**asked, **answered, "status": status,
                                      "decidedAt": answered.get("at") or when}
            result = steps.run("record", lambda: records.finish(
                table(), incident, execution_id=execution_id, outcome=out["outcome"],
                entries=failure_entries(state, when) + _approval_entries(out, when) + [_closing(out, when)],
                fields=fields, now=now))
            if result:
                out["record"]["result"] = result
            if analysis:  # the record's status stays the response's; the analysis is listed beside it
                steps.run("record analysis", lambda: records.note_analysis(table(), incident_id, {
                    "executionId": execution_id, "at": when, "outcome": out["outcome"],
                    "workstation": out["analysis"].get("workstation"), "manifest": out.get("manifest"),
                    "dryRun": bool(incident.get("dryRun"))}, now=now))

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


MAX_REPORT_BYTES = 24 * 1024 * 1024  # page + CSV per attempt
MAX_PAGE_BYTES = 4 * 1024 * 1024  # the page's share (responder.report bounds it: MAX_TIMELINE rows of MAX_SHOWN)


class ReportMismatch(ResponderError):
    """The report read back is not what Finalize wrote."""


def report_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


MAX_CAPTURE_READS = 50  # captures read per report (principals x Regions)


def read_captures(bucket: Any, captures: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The capture documents the record lists, each checked against its recorded SHA-256. Returns (documents,
    the ones not used with why: not written, unreadable, digest mismatch)."""
    documents, unread = [], []
    for capture in captures[:MAX_CAPTURE_READS]:
        key = capture.get("key")
        if not key or capture.get("status") in ("failed", "skipped"):
            if key:
                unread.append({"key": key, "why": f"status {capture.get('status')}"})
            continue
        try:
            body = bucket.get_bytes(key, capture.get("versionId"))
        except Exception as exc:  # noqa: BLE001 - the report says so; the capture stays where it is
            unread.append({"key": key, "why": type(exc).__name__})
            continue
        if capture.get("sha256") and report_digest(body) != capture["sha256"]:
            unread.append({"key": key, "why": "SHA-256 does not match the record"})
            continue
        try:
            documents.append(json.loads(body))
        except ValueError:
            unread.append({"key": key, "why": "not JSON"})
    return documents, unread


def report_keys(incident_id: str, attempt: int) -> tuple[str, str]:
    """Beside the attempt's manifests: `incidents/<id>/report-0003.html` and `report-0003-events.csv`."""
    base = f"incidents/{incident_id}/report-{attempt:04d}"
    return base + ".html", base + "-events.csv"


def write_report(bucket: Any, *, incident: dict[str, Any], finding: Any, summary: dict[str, Any],
                 item: dict[str, Any], journal: list[dict[str, Any]], attempt: int, when: str) -> dict[str, Any]:
    """The incident report (responder.report), written once beside the manifests (``If-None-Match: *``: a second
    run of the same attempt finds the names taken and writes no second copy), each read back and its SHA-256
    checked. The principal's CloudTrail captures (the identity task's, listed in the record's ``scope``) are read
    from the bucket and checked against the digest recorded when they were written. The page and
    CSV together stay under MAX_REPORT_BYTES: the CSV's last rows are cut to fit, which the page and the record
    say (`cutForBudget`). A failure here is a recording error; it never undoes containment."""
    html_key, csv_key = report_keys(incident["incidentId"], attempt)
    earlier = item.get("report") if isinstance(item.get("report"), dict) else {}
    if (earlier.get("html") or {}).get("key") == html_key and (earlier["html"]).get("sha256"):
        return dict(earlier, alreadyWritten=True)  # a second run of this attempt: the first copy stands
    captures = [c for c in item.get("scope") or [] if isinstance(c, dict)]
    documents, unread = read_captures(bucket, captures)
    record = dict(item, timeline=journal, incidentId=incident.get("incidentId"))
    rows, left_out = report.rows_of(documents)
    sheet = report.events_csv(rows)
    cut = 0
    while len(sheet) > MAX_REPORT_BYTES - MAX_PAGE_BYTES and rows:  # the CSV's share of the budget
        drop = max(1, len(rows) * (len(sheet) - (MAX_REPORT_BYTES - MAX_PAGE_BYTES)) // len(sheet) + 1)
        rows, cut = rows[:-drop], cut + drop
        sheet = report.events_csv(rows)
    page = report.render(record=record, incident=incident, summary=summary, finding=finding, rows=rows,
                         captures=captures, manifest=summary.get("manifest"), generated_at=when,
                         left_out=left_out + cut).encode("utf-8")
    facts: dict[str, Any] = {"events": len(rows), "eventsLeftOut": left_out + cut}
    if cut:
        facts["cutForBudget"] = cut
    if unread:  # the record says which captures the report could not use, and why
        facts["capturesUnread"] = unread
    out: dict[str, Any] = dict(facts)
    for name, key, body, kind in (("html", html_key, page, "text/html; charset=utf-8"),
                                  ("csv", csv_key, sheet, "text/csv; charset=utf-8")):
        stored = bucket.put_json_once(key, body, content_type=kind)
        if stored and report_digest(bucket.get_bytes(key, stored.get("versionId"))) != stored["sha256"]:
            raise ReportMismatch(f"s3://{bucket.bucket}/{key} read back does not match what was written")
        if stored:
            out[name] = {"key": key, "uri": stored["uri"], "sha256": stored["sha256"], "bytes": stored["bytes"],
                         "versionId": stored.get("versionId")}
        else:  # written by an earlier try of this attempt (a retried Finalize): record the copy that stands
            existing = bucket.get_bytes(key)
            out[name] = {"key": key, "uri": f"s3://{bucket.bucket}/{key}", "sha256": report_digest(existing),
                         "bytes": len(existing), "written": False, "reason": "exists (written once)"}
    return out


def _target_status(out: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{k: t.get(k) for k in ("type", "target", "status", "reason") if t.get(k)} for t in out["identities"]]
    for item in out["instances"]:
        isolation = item.get("isolation") or {}
        evidence = item.get("evidence") or {}
        rows.append({"type": "Instance", "target": item.get("instanceId"),
                     "status": shapes.status_of(isolation), "evidence": shapes.status_of(evidence)})
    return rows


def _approval_entries(out: dict[str, Any], when: str) -> list[dict[str, Any]]:
    """The approval's answer as a timeline entry (who, when, why; or the deadline that passed)."""
    answered = out.get("approval")
    if not answered:
        return []
    detail = (f"{answered.get('decision')} by {answered.get('by')} at {answered.get('at')}: {answered.get('reason')}"
              if answered.get("by") else f"{answered.get('decision')} (onTimeout {answered.get('onTimeout')})"
              if answered.get("decision") == "timed_out" else f"{answered.get('decision')}: {answered.get('output')}")
    return [{"time": answered.get("at") or when, "task": "approval", "step": "decision",
             "status": answered.get("decision"), "target": out.get("incidentId") or "incident", "detail": detail[:600]}]


def _closing(out: dict[str, Any], when: str) -> dict[str, Any]:
    return {"time": when, "task": "finalize", "step": "outcome", "status": out["outcome"],
            "target": out.get("incidentId") or "incident",
            "detail": out.get("cause") or out.get("dispositionReason") or ""}
