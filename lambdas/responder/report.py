"""The incident report: what a person would rather look at than read. Pure (no AWS): Finalize feeds it the record,
the raw finding and the principal's captured CloudTrail events, and stores what it returns with the evidence.

Two documents per attempt:

* **the principal's events as CSV, sorted by eventName** (then time) - the field runbook's spreadsheet: "Pipe the
  result into a spreadsheet and sort by eventName. The interesting rows cluster: CreateAccessKey, AttachUserPolicy,
  AssumeRole, GetSecretValue, ListBuckets, GetObject." Every cell an attacker shaped (user agent, request
  parameters, names) that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) is
  prefixed with `'` (OWASP "CSV Injection");
* **one self-contained HTML page**: no script, no external resource (a Content-Security-Policy of `default-src
  'none'` says so to the browser too), every string HTML-escaped - the attacker's steps and the responder's actions
  on one timeline, the attacker's plan by event name, the pivots and the rotation list (`record["pivots"]`,
  `record["rotation"]`, when present), the evidence chain, and the three lessons of the runbook's after-action
  section (long-lived keys, MFA, unread findings) with what this incident showed.

Bounded whatever the incident's size: at most MAX_EVENTS events (CSV), MAX_TIMELINE rows on the page, every cell
cut to MAX_CELL characters; `facts` says what was left out.
"""
from __future__ import annotations

import csv
import hashlib
import html
import io
import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterable

MAX_EVENTS = 20_000  # CSV rows (LookupEvents capture: at most 5 pages x 50 events per principal and Region)
MAX_TIMELINE = 1_500  # rows on the page's timeline (the CSV has every event)
MAX_CELL = 2_000  # characters per CSV cell
MAX_SHOWN = 240  # characters per page cell
# The runbook's interesting rows (section 2): each is a step in the attacker's plan.
PLAN_EVENTS = ("CreateAccessKey", "AttachUserPolicy", "AssumeRole", "GetSecretValue", "ListBuckets", "GetObject")
CSV_COLUMNS = ("eventName", "eventTime", "eventSource", "awsRegion", "sourceIPAddress", "userAgent", "principal",
               "accessKeyId", "mfaAuthenticated", "readOnly", "errorCode", "errorMessage", "requestParameters",
               "resources", "eventId")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- the principal's events -----------------------------------------------------------------------------------
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def event_row(event: dict[str, Any]) -> dict[str, str]:
    """One LookupEvents record (the shape every event source yields: `EventId`, `EventName`, `EventTime`,
    `EventSource`, `Username`, `CloudTrailEvent` as JSON text or parsed) as the report's row."""
    detail = event.get("CloudTrailEvent") or {}
    if isinstance(detail, (str, bytes)):  # the captures store it parsed (responder.aws.cloudtrail), LookupEvents as text
        try:
            detail = json.loads(detail)
        except ValueError:
            detail = {}
    detail = detail if isinstance(detail, dict) else {}
    identity = detail.get("userIdentity") if isinstance(detail.get("userIdentity"), dict) else {}
    attributes = ((identity.get("sessionContext") or {}).get("attributes") or {}) if isinstance(
        identity.get("sessionContext"), dict) else {}
    mfa = attributes.get("mfaAuthenticated")
    extra = detail.get("additionalEventData") if isinstance(detail.get("additionalEventData"), dict) else {}
    if mfa is None and extra.get("MFAUsed") is not None:
        mfa = "true" if str(extra.get("MFAUsed")).lower() == "yes" else "false"
    return {
        "eventName": _text(detail.get("eventName") or event.get("EventName")),
        "eventTime": _text(detail.get("eventTime") or event.get("EventTime")),
        "eventSource": _text(detail.get("eventSource") or event.get("EventSource")),
        "awsRegion": _text(detail.get("awsRegion")),
        "sourceIPAddress": _text(detail.get("sourceIPAddress")),
        "userAgent": _text(detail.get("userAgent")),
        "principal": _text(identity.get("arn") or event.get("Username")),
        "accessKeyId": _text(identity.get("accessKeyId") or event.get("AccessKeyId")),
        "mfaAuthenticated": _text(mfa),
        "readOnly": _text(detail.get("readOnly", event.get("ReadOnly"))),
        "errorCode": _text(detail.get("errorCode")),
        "errorMessage": _text(detail.get("errorMessage")),
        "requestParameters": _text(detail.get("requestParameters")),
        "resources": _text(event.get("Resources") or detail.get("resources")),
        "eventId": _text(detail.get("eventID") or event.get("EventId")),
    }


def rows_of(documents: Iterable[dict[str, Any]]) -> tuple[list[dict[str, str]], int]:
    """Every event of the CloudTrail capture documents (responder.scope), once each (by event id), at most
    MAX_EVENTS. Returns (rows, how many were left out)."""
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    left_out = 0
    for document in documents:
        for event in (document or {}).get("events") or []:
            if not isinstance(event, dict):
                continue
            row = event_row(event)
            key = row["eventId"] or json.dumps(row, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            if len(rows) >= MAX_EVENTS:
                left_out += 1
                continue
            rows.append(row)
    return rows, left_out


def _cell(value: str) -> str:
    value = value[:MAX_CELL]
    return "'" + value if value.startswith(FORMULA_START) else value


def events_csv(rows: list[dict[str, str]]) -> bytes:
    """The runbook's spreadsheet: one row per event, sorted by eventName, then time. UTF-8 with a BOM (so a
    spreadsheet reads it as UTF-8), formulas neutralized."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in sorted(rows, key=lambda r: (r["eventName"], r["eventTime"], r["eventId"])):
        writer.writerow([_cell(row.get(c, "")) for c in CSV_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# -- what this incident showed (runbook section 6) ---------------------------------------------------------------
def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value or "").strip().replace(" ", "T", 1)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _finding_detail(finding: Any) -> dict[str, Any]:
    """The GuardDuty finding's detail from the raw input (EventBridge event, get-findings output, bare finding)."""
    if not isinstance(finding, dict):
        return {}
    if isinstance(finding.get("detail"), dict):
        return finding["detail"]
    if isinstance(finding.get("Findings"), list) and finding["Findings"] and isinstance(finding["Findings"][0], dict):
        return finding["Findings"][0]
    return finding if "service" in finding or "Service" in finding else {}


def _duration(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _first_change(timeline: list[dict[str, Any]]) -> datetime | None:
    times = [_when(e.get("time")) for e in timeline if e.get("status") in ("done", "changed") and e.get("api")]
    times = [t for t in times if t]
    return min(times) if times else None


def after_action(incident: dict[str, Any], finding: Any, rows: list[dict[str, str]],
                 record: dict[str, Any]) -> list[dict[str, Any]]:
    """The runbook's three lessons ("Service accounts had long-lived keys, MFA was not enforced on the root account
    of a sub-org, GuardDuty was on but the findings went to an inbox nobody read"), each with what this incident
    showed (`seen`: True / False / None when the data cannot say) and the control the runbook ships for it."""
    identities = incident.get("identities") or []
    keys = sorted({i.get("accessKeyId") for i in identities if i.get("accessKeyId")})
    long_lived = [k for k in keys if str(k).startswith("AKIA")]
    created = [r for r in rows if r["eventName"] == "CreateAccessKey"]
    used = sorted({r["accessKeyId"] for r in rows if r["accessKeyId"].startswith("AKIA")})
    timeline = record.get("timeline") or []
    deactivated = sorted({e.get("target") for e in timeline if e.get("step") == "deactivate_access_keys"
                          and e.get("api") == "iam:UpdateAccessKey" and e.get("status") in ("done", "changed")})
    pivots = record.get("pivots") or []
    minted = [p for p in pivots if p.get("kind") == "created_key"]
    showed = []
    if long_lived:
        showed.append(f"the credentials in the finding were a long-term access key ({', '.join(long_lived)})")
    elif keys:
        showed.append(f"the credentials in the finding were temporary ({', '.join(keys)})")
    if used:
        showed.append(f"{len(used)} long-term key(s) signed the principal's calls in the window")
    if created or minted:
        showed.append(f"the attacker created {max(len(created), len(minted))} new access key(s) (CreateAccessKey)")
    if deactivated:
        showed.append(f"the responder deactivated {len(deactivated)} key(s): {', '.join(map(str, deactivated))}")
    keys_seen = True if (long_lived or used or created or minted) else (False if keys or rows else None)
    lessons = [{
        "lesson": "Long-lived keys",
        "seen": keys_seen,
        "showed": "; ".join(showed) or "no access key was involved in what the responder saw",
        "control": "An SCP that denies iam:CreateAccessKey to human users; workloads on roles (temporary "
                   "credentials) instead of user keys; rotate what the rotation list names.",
    }]

    mfa_false = [r for r in rows if r["mfaAuthenticated"] == "false"]
    mfa_true = [r for r in rows if r["mfaAuthenticated"] == "true"]
    console = [r for r in rows if r["eventName"] == "ConsoleLogin"]
    mfa_changes = [r for r in rows if r["eventName"] in ("CreateVirtualMFADevice", "EnableMFADevice",
                                                          "DeactivateMFADevice", "DeleteVirtualMFADevice")]
    root = [i for i in identities if i.get("type") == "Root"]
    showed = []
    if root:
        showed.append("root credentials were used: MFA on the root user of every account is the first control")
    if mfa_false:
        showed.append(f"{len(mfa_false)} event(s) from sessions without MFA")
    if console:
        showed.append(f"{len(console)} console sign-in(s) (ConsoleLogin)")
    if mfa_changes or [p for p in pivots if p.get("kind") == "mfa_device"]:
        showed.append(f"the attacker changed MFA devices ({len(mfa_changes)} event(s))")
    if used and not mfa_true:
        showed.append("calls signed with a long-term key carry no MFA at all")
    if mfa_true and not mfa_false:
        showed.append(f"{len(mfa_true)} event(s), all from MFA-authenticated sessions")
    mfa_seen = True if (root or mfa_false or mfa_changes or (used and not mfa_true)) else (False if rows else None)
    lessons.append({
        "lesson": "MFA",
        "seen": mfa_seen,
        "showed": "; ".join(showed) or "the captured events say nothing about MFA",
        "control": "MFA enforced on the root user of every account (and sub-organization), and "
                   "aws:MultiFactorAuthPresent on sensitive actions; IAM Access Analyzer policy validation in CI.",
    })

    detail = _finding_detail(finding)
    service = detail.get("service") or detail.get("Service")
    if not isinstance(service, dict):  # an AWS Health event's `service` is a name ("IAM"), not GuardDuty's block
        service = {}
    first = _when(service.get("eventFirstSeen") or service.get("EventFirstSeen"))
    count = service.get("count") or service.get("Count")
    if isinstance(count, bool) or not isinstance(count, int):  # the finding's field, shown only as a number
        count = None
    acted = _first_change(timeline)
    showed = []
    seen: bool | None = None
    if not detail:
        showed.append("no GuardDuty finding: a person started this response")
    if first and acted:
        gap = (acted - first).total_seconds()
        showed.append(f"GuardDuty first saw the activity at {first.isoformat()}; the responder's first change was "
                      f"{_duration(gap)} later ({acted.isoformat()})")
        seen = gap > 3600
    elif first:
        showed.append(f"GuardDuty first saw the activity at {first.isoformat()}; the responder changed nothing")
    if count:
        showed.append(f"the finding had been published {count} time(s)")
    if record.get("duplicates"):
        showed.append(f"{record['duplicates']} duplicate execution(s) of the same finding")
    lessons.append({
        "lesson": "Unread findings",
        "seen": seen,
        "showed": "; ".join(showed) or "no timing to compare",
        "control": "High-priority notifications to a pager, not an inbox (a subscription with the priority filter); a "
                   "daily Athena query for ConsoleLogin from unexpected ASNs.",
    })
    return lessons


# -- the page ---------------------------------------------------------------------------------------------------
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d232a;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c9d1d9}main{padding:12px 28px 40px}section{background:#fff;border:1px solid #dde1e6;
border-radius:6px;margin:16px 0;padding:12px 16px}h2{font-size:16px;margin:4px 0 10px}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{text-align:left;padding:4px 6px;
border-bottom:1px solid #eceff2;vertical-align:top;word-break:break-word}th{background:#f0f2f5}
.attacker{border-left:4px solid #c62828}.responder{border-left:4px solid #1565c0}.who{font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;background:#eceff2;font-weight:600}
.bad{background:#fde0e0;color:#8e1b1b}.good{background:#dff3e3;color:#1b5e20}.warn{background:#fff3cd;color:#7a5b00}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{flex:1 1 150px;background:#f0f2f5;border-radius:6px;padding:8px 12px}
.card b{display:block;font-size:20px}code{font:12px ui-monospace,Menlo,Consolas,monospace}.muted{color:#5f6b76}
"""


def esc(value: Any, limit: int = MAX_SHOWN) -> str:
    """Any value as safe HTML text (attacker-shaped strings included), cut to `limit` characters."""
    text = _text(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return html.escape(text, quote=True)


def _table(headers: list[str], rows: list[list[Any]], row_class: list[str] | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{esc(row_class[i])}"' if row_class else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def merged_timeline(rows: list[dict[str, str]], timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attacker's events and the responder's actions, oldest first."""
    items = [{"time": _when(r["eventTime"]), "raw": r["eventTime"], "who": "attacker", "what": r["eventName"],
              "where": r["eventSource"], "detail": " ".join(x for x in (r["sourceIPAddress"], r["userAgent"], r["requestParameters"]) if x),
              "result": r["errorCode"] or "ok", "ref": r["eventId"]} for r in rows]
    for e in timeline:
        items.append({"time": _when(e.get("time")), "raw": _text(e.get("time")), "who": "responder",
                      "what": " ".join(x for x in (_text(e.get("task")), _text(e.get("step"))) if x),
                      "where": _text(e.get("api")), "detail": _text(e.get("target")),
                      "result": _text(e.get("status")) + (f" {_text(e.get('error'))}" if e.get("error") else ""),
                      "ref": _text(e.get("requestId") or e.get("eventId"))})
    floor = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(items, key=lambda i: (i["time"] or floor, i["who"] != "attacker"))


def _badge(seen: bool | None) -> str:
    if seen is True:
        return '<span class="badge bad">seen in this incident</span>'
    if seen is False:
        return '<span class="badge good">not seen</span>'
    return '<span class="badge warn">cannot tell</span>'


def _evidence(record: dict[str, Any], manifest: dict[str, Any] | None, captures: list[dict[str, Any]]) -> str:
    parts = []
    if manifest:
        signature = manifest.get("signature") or {}
        parts.append(_table(["document", "where", "SHA-256", "signature"], [[
            "evidence manifest", f"<code>{esc(manifest.get('uri') or manifest.get('key'), 400)}</code>",
            f"<code>{esc(manifest.get('sha256'), 100)}</code>",
            (f"<code>{esc(signature.get('key'), 400)}</code> by <code>{esc(signature.get('keyId'), 200)}</code>"
             if signature else '<span class="badge bad">unsigned</span>')]]))
    if captures:
        parts.append("<h3>CloudTrail captures</h3>" + _table(
            ["principal", "object", "events", "SHA-256", "read back"],
            [[esc(c.get("principal")), f"<code>{esc(c.get('key'), 400)}</code> {esc(c.get('versionId'), 80)}",
              esc(c.get("events")), f"<code>{esc(c.get('sha256'), 100)}</code>", esc(c.get("readBack"))]
             for c in captures]))
    snapshots = []
    for name, result in sorted((record.get("results") or {}).items()):
        if not name.startswith("evidence:"):
            continue
        for snap in (result or {}).get("snapshots") or []:
            copy = snap.get("forensicsCopy") or {}
            lock = copy.get("lock") or {}
            snapshots.append([esc(name.split(":", 1)[1]), esc(snap.get("volumeId")),
                              esc((snap.get("source") or {}).get("snapshotId")), esc(copy.get("snapshotId")),
                              f"<code>{esc(copy.get('digest') or (snap.get('source') or {}).get('digest'), 100)}</code>",
                              esc(f"{lock.get('LockState', '')} {lock.get('LockExpiresOn', '')}".strip() or "-")])
    if snapshots:
        parts.append("<h3>Snapshots</h3>" + _table(
            ["instance", "volume", "source snapshot", "forensics copy", "block-list digest", "lock"], snapshots))
    if not parts:
        parts.append('<p class="muted">No evidence was written by this attempt.</p>')
    parts.append('<p class="muted">Check the chain: <code>python -m cli verify ' + esc(record.get("incidentId"))
                 + "</code> with credentials of the forensics account (every manifest signed and written once, "
                   "every snapshot's hash and lock).</p>")
    return "".join(parts)


def render(*, record: dict[str, Any], incident: dict[str, Any], summary: dict[str, Any], finding: Any,
           rows: list[dict[str, str]], captures: list[dict[str, Any]], manifest: dict[str, Any] | None,
           generated_at: str, left_out: int = 0) -> str:
    """The self-contained HTML page (text)."""
    timeline = list(record.get("timeline") or [])
    items = merged_timeline(rows, timeline)
    shown = items[:MAX_TIMELINE]
    incident_id = summary.get("incidentId") or record.get("incidentId") or incident.get("incidentId")
    outcome = summary.get("outcome") or record.get("status")
    css = "good" if outcome in ("contained", "isolated") else "bad" if outcome in (
        "failed", "partially_contained", "protection_unverified", "not_found") else ""
    pivots = record.get("pivots") or []
    rotation = sorted(record.get("rotation") or [], key=lambda r: (r.get("order") is None, r.get("order") or 0))
    changes = [e for e in timeline if e.get("status") in ("done", "changed") and e.get("api")]
    names = Counter(r["eventName"] for r in rows)
    sections = []
    sections.append('<section><div class="cards">' + "".join(
        f'<div class="card"><b>{esc(v)}</b>{esc(k)}</div>' for k, v in (
            ("attacker events", len(rows) + left_out), ("distinct event names", len(names)),
            ("responder changes", len(changes)), ("pivots", len(pivots)), ("to rotate", len(rotation)))) + "</div>"
        + (f'<p class="muted">{esc(left_out)} event(s) beyond {MAX_EVENTS} are not in this report; the '
           "CloudTrail captures hold them.</p>" if left_out else "") + "</section>")
    note = (f'<p class="muted">First {MAX_TIMELINE} of {len(items)} rows; the CSV has every event.</p>'
            if len(items) > MAX_TIMELINE else "")
    sections.append("<section><h2>Timeline: the attacker's steps and the responder's actions</h2>" + note + _table(
        ["time (UTC)", "who", "what", "where", "detail", "result", "reference"],
        [[esc(i["raw"], 40), f'<span class="who">{esc(i["who"])}</span>', esc(i["what"]), esc(i["where"]),
          esc(i["detail"]), esc(i["result"]), f"<code>{esc(i['ref'], 80)}</code>"] for i in shown],
        [i["who"] for i in shown]) + "</section>")
    if names:
        sections.append("<section><h2>The attacker's plan, by event name</h2>" + _table(
            ["eventName", "events", "first", "last"],
            [[("<b>" + esc(n) + "</b>") if n in PLAN_EVENTS else esc(n), esc(c),
              esc(min(r["eventTime"] for r in rows if r["eventName"] == n), 40),
              esc(max(r["eventTime"] for r in rows if r["eventName"] == n), 40)]
             for n, c in sorted(names.items())]) + '<p class="muted">In bold: the rows the runbook names as steps '
            "of an attacker's plan. The CSV beside this report is the same list, one row per event.</p></section>")
    if pivots:
        sections.append("<section><h2>What the attacker minted (pivots)</h2>" + _table(
            ["kind", "target", "account", "event", "time", "action", "status", "manual step"],
            [[esc(p.get("kind")), esc(p.get("target")), esc(p.get("account")),
              esc(f"{_text(p.get('eventName'))} {_text(p.get('eventId'))}".strip()), esc(p.get("eventTime"), 40),
              esc(p.get("action")), esc(p.get("status")), f"<code>{esc(p.get('command'), 600)}</code>"]
             for p in pivots]) + "</section>")
    if rotation:
        sections.append("<section><h2>Rotate, in this order</h2>" + _table(
            ["#", "kind", "ARN", "why", "event", "command"],
            [[esc(r.get("order")), esc(r.get("kind")), f"<code>{esc(r.get('arn'), 400)}</code>", esc(r.get("reason")),
              f"<code>{esc(r.get('eventId'), 80)}</code>", f"<code>{esc(r.get('command'), 600)}</code>"]
             for r in rotation]) + '<p class="muted">Nothing was rotated automatically.</p></section>')
    sections.append("<section><h2>Evidence chain</h2>" + _evidence(dict(record, incidentId=incident_id), manifest,
                                                                      captures) + "</section>")
    lessons = after_action(incident, finding, rows, record)
    sections.append("<section><h2>After action: the three lessons, and what this incident showed</h2>" + _table(
        ["lesson", "this incident", "what it showed", "control"],
        [[f"<b>{esc(x['lesson'])}</b>", _badge(x["seen"]), esc(x["showed"], 1000), esc(x["control"], 1000)]
         for x in lessons]) + "</section>")
    facts = [("incident", incident_id), ("outcome", outcome), ("finding", summary.get("findingType") or "manual"),
             ("severity", summary.get("severity")), ("account", summary.get("accountId")),
             ("region", summary.get("region")), ("cut-off", summary.get("cutoff")), ("generated", generated_at)]
    header = ('<header><h1>Incident ' + esc(incident_id) + ' <span class="badge ' + css + '">' + esc(outcome)
              + "</span></h1><p>" + " &middot; ".join(f"{esc(k)}: {esc(v)}" for k, v in facts if v not in (None, ""))
              + "</p></header>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Incident {esc(incident_id)}</title><style>{STYLE}</style></head><body>{header}<main>"
            + "".join(sections)
            + '<p class="muted">Generated by the responder from the incident record, the finding and the captured '
              "CloudTrail events. The signed evidence manifest is the record of what happened; this page is a view "
              "of it.</p></main></body></html>\n")


def build(*, record: dict[str, Any], incident: dict[str, Any], summary: dict[str, Any], finding: Any,
          documents: list[dict[str, Any]], captures: list[dict[str, Any]], manifest: dict[str, Any] | None,
          generated_at: str) -> tuple[bytes, bytes, dict[str, Any]]:
    """(HTML bytes, CSV bytes, facts: events, leftOut, sha256 of each)."""
    rows, left_out = rows_of(documents)
    page = render(record=record, incident=incident, summary=summary, finding=finding, rows=rows, captures=captures,
                  manifest=manifest, generated_at=generated_at, left_out=left_out).encode("utf-8")
    sheet = events_csv(rows)
    return page, sheet, {"events": len(rows), "eventsLeftOut": left_out,
                         "htmlSha256": "sha256:" + hashlib.sha256(page).hexdigest(),
                         "csvSha256": "sha256:" + hashlib.sha256(sheet).hexdigest()}
