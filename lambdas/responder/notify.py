"""Notifications: one SNS message per incident outcome, to the responder's topic (``IR_TOPIC_ARN``).

* **Subject** - triage from a phone: ASCII, at most `MAX_SUBJECT` characters (SNS requires fewer than 100), in
  the order a person reads it: what happened, to what, where, how bad, which incident::

      IR CONTAINED: user/ci-deployer in 444455556666 sev 5.3 [gd-a2c6e5f0...]
      IR FAILED - ACT NOW: i-0a1b2c3d4e5f60718 +1 in 444455556666 sev 8.0 [gd-...]
      IR PROTECTED - NOT CONTAINED: role/BreakGlass in 444455556666 sev 5.3 [IR-7]

* **Message** - the details as JSON (indented, so an e-mail subscription is readable): headline, outcome,
  finding, every target with its status, every failed step (API, target, error), manual steps, the dry-run plan
  (API and target of each change), the incident record's location, the manifest's location and SHA-256, and a
  link to the execution in the console.
* **Message attributes** - ``outcome``, ``priority`` (``high``: a person must act now - failed, partially
  contained, protection unverified, protected, manual action required; ``normal``: contained, dry-run plan;
  ``low``: duplicate, not handled), ``incidentId`` and ``accountId``, for subscription filter policies (e.g. page
  only on ``{"priority": ["high"]}``).
"""
from __future__ import annotations

import json
import re
from typing import Any

from responder import shapes

MAX_SUBJECT = 99
MAX_MESSAGE_BYTES = 200_000
MAX_LISTED = 100

LABELS = {
    "contained": "CONTAINED",
    "partially_contained": "PARTIAL - ACT NOW",
    "failed": "FAILED - ACT NOW",
    "protected": "PROTECTED - NOT CONTAINED",
    "protection_unverified": "NOT CONTAINED - PROTECTION UNVERIFIED",
    "not_found": "NOT FOUND - NOT CONTAINED",
    "manual_action_required": "MANUAL ACTION REQUIRED",
    "dry_run_plan": "DRY RUN",
    "not_handled": "NOT HANDLED",
    "duplicate": "DUPLICATE",
    "approval_required": "APPROVAL REQUIRED",
    "approval_denied": "DENIED - NOT CONTAINED",
    "approval_timed_out": "NO APPROVAL - NOT CONTAINED",
    "analysis_ready": "DISKS ON WORKSTATION",
    "analysis_incomplete": "ANALYSIS INCOMPLETE",
    "analysis_refused": "ANALYSIS REFUSED",
    "analysis_failed": "ANALYSIS FAILED",
    "released": "RELEASED",
    "already_released": "ALREADY RELEASED",
    "release_planned": "RELEASE PLAN",
    "release_refused": "RELEASE REFUSED",
    "release_failed": "RELEASE FAILED - CHECK",
}
PRIORITY = {
    "failed": "high", "partially_contained": "high", "protection_unverified": "high", "protected": "high",
    "manual_action_required": "high", "not_found": "high", "contained": "normal", "dry_run_plan": "normal", "duplicate": "low",
    "not_handled": "low", "approval_denied": "normal", "approval_timed_out": "high",
    "analysis_ready": "normal", "analysis_incomplete": "normal", "analysis_refused": "normal", "analysis_failed": "normal",
    "released": "normal", "already_released": "low", "release_planned": "normal", "release_refused": "normal",
    "release_failed": "high",
}
_KIND = {"IAMUser": "user", "AssumedRole": "role", "FederatedUser": "federated"}


def ascii_line(text: str) -> str:
    """Printable ASCII on one line (SNS subjects allow no line breaks or control characters)."""
    text = text.encode("ascii", "replace").decode()
    return re.sub(r"\s+", " ", re.sub(r"[\x00-\x1f\x7f]", " ", text)).strip()


def target_names(summary: dict[str, Any]) -> list[str]:
    names = []
    for identity in summary.get("identities") or []:
        kind = identity.get("type", "")
        if kind == "Root":
            names.append("root")
        else:
            names.append(f"{_KIND.get(kind, kind.lower() or 'principal')}/{identity.get('name') or '?'}")
    names += [item.get("instanceId") or "?" for item in summary.get("instances") or []]
    if not names:
        incident = summary.get("requested") or {}
        names = [f"{_KIND.get(i.get('type'), 'principal')}/{i.get('name')}" for i in incident.get("identities", [])]
        names += list(incident.get("instances", []))
    return names


def subject(summary: dict[str, Any]) -> str:
    outcome = summary.get("outcome") or "unknown"
    label = LABELS.get(outcome, outcome.upper())
    if outcome == "dry_run_plan":
        label += f" ({len(summary.get('plan') or []) + int(summary.get('planOmitted') or 0)} changes planned)"
    if outcome == "duplicate":
        label += f" ({(summary.get('duplicateOf') or {}).get('status') or '?'})"
    names = target_names(summary)
    what = names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "") if names else (
        summary.get("findingType") or "finding")
    where = f" in {summary.get('accountId')}" if summary.get("accountId") else ""
    sev = f" sev {summary['severity']:g}" if isinstance(summary.get("severity"), (int, float)) else ""
    incident = str(summary.get("incidentId") or "?")
    head, tail = ascii_line(f"IR {label}:") + " ", " " + ascii_line(f"{where}{sev}").strip()
    what = ascii_line(what)
    room = MAX_SUBJECT - len(head) - len(tail) - 3
    ident = incident if len(incident) <= max(room - len(what), 12) else incident[:max(room - len(what), 12) - 3] + "..."
    room -= len(ident)
    if len(what) > room:
        what = what[:max(room - 3, 1)] + "..."
    return ascii_line(f"{head}{what}{tail} [{ident}]")[:MAX_SUBJECT]


def missing(summary: dict[str, Any]) -> list[str]:
    """What was looked for and not found, and where (the targets' reasons)."""
    found = [t.get("reason") or str(t.get("target")) for t in summary.get("identities") or []
             if t.get("status") == "not_found"]
    return found + [f"instance {i.get('instanceId')} does not exist (any longer)" for i in summary.get("instances") or []
                    if isinstance(i.get("isolation"), dict) and i["isolation"].get("status") == "not_found"]


def headline(summary: dict[str, Any]) -> str:
    outcome = summary.get("outcome")
    names = ", ".join(target_names(summary)) or "nothing"
    where = f"account {summary.get('accountId')} ({summary.get('region')})"
    failures = len(summary.get("failures") or [])
    return {
        "contained": f"Contained {names} in {where}.",
        "partially_contained": f"Partially contained {names} in {where}: {failures} step(s) failed. Nothing was "
                               "undone. Finish the failed steps by hand.",
        "failed": f"Containment of {names} in {where} failed. Nothing was undone. Act by hand now.",
        "protected": f"{names} in {where} is protected: nothing was changed. A person must decide.",
        "protection_unverified": f"Protection of {names} in {where} could not be verified: nothing destructive "
                                 "was done. Check by hand and contain if it is not protected.",
        "manual_action_required": f"IAM cannot contain {names} in {where}: follow the manual steps.",
        "not_found": f"Not found in {where}, so not contained: {'; '.join(missing(summary)) or names}. Find where "
                     "the credentials or the instance went (renamed, deleted, another account) and contain it by hand.",
        "dry_run_plan": f"Dry run for {names} in {where}: "
                        f"{len(summary.get('plan') or []) + int(summary.get('planOmitted') or 0)} change(s) would be "
                        "made. Nothing changed.",
        "approval_denied": f"Containment of {names} in {where} was not approved ({_decision(summary)}): nothing "
                           "was contained.",
        "approval_timed_out": f"Nobody approved containment of {names} in {where} before the deadline: nothing was "
                              "contained (onTimeout stand_down). Start a manual request to contain now.",
        "not_handled": f"Not acted on: {summary.get('dispositionReason') or 'not handled'}.",
        "duplicate": f"Re-published finding, already handled by {(summary.get('duplicateOf') or {}).get('executionId')}"
                     f": {summary.get('dispositionReason')}. Nothing changed.",
    }.get(outcome, f"Outcome {outcome} for {names} in {where}.")


def _decision(summary: dict[str, Any]) -> str:
    approval = summary.get("approval") or {}
    if approval.get("decision") == "deny":
        return f"denied by {approval.get('by') or '?'}: {approval.get('reason') or 'no reason given'}"
    return f"the answer was not an approval: {approval.get('output') or approval.get('decision')}"
def left_out(signal: dict[str, Any]) -> list[str]:
    """What the signal named that this response did not act on, in words (over the target cap, groups not read)."""
    out = [f"{count} {kind} over the limit of targets per incident: contain them with a manual request"
           for kind, count in sorted((signal.get("omitted") or {}).items())]
    unread = signal.get("groupsUnread") or {}
    if unread:
        out.append(f"Auto Scaling group(s) {', '.join(unread.get('groups') or [])} could not be read "
                   f"({unread.get('error')}): isolate their instances by hand")
    if signal.get("groupsNotFound"):
        out.append(f"Auto Scaling group(s) {', '.join(signal['groupsNotFound'])} not found")
    out += [f"not acted on: {e}" for e in signal.get("elsewhere") or []]
    out += list(signal.get("skipped") or [])
    return out[:MAX_LISTED]


def console_link(execution_arn: str | None) -> str | None:
    parts = (execution_arn or "").split(":")
    if len(parts) < 8 or parts[1] != "aws":
        return None
    region = parts[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def message(summary: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "headline": headline(summary),
        "outcome": summary.get("outcome"),
        "incidentId": summary.get("incidentId"),
        "priority": PRIORITY.get(summary.get("outcome") or "", "high"),
        "accountId": summary.get("accountId"),
        "region": summary.get("region"),
        "origin": summary.get("origin"),
        "finding": {k: summary.get(k) for k in ("findingType", "severity", "count") if summary.get(k) is not None},
        "dryRun": summary.get("dryRun"),
        "targets": [{k: t.get(k) for k in ("type", "name", "target", "status", "reason") if t.get(k)}
                    for t in summary.get("identities") or []]
        + [{"instanceId": i.get("instanceId"),
            "isolation": shapes.status_of(i.get("isolation") or {}),
            "evidence": shapes.status_of(i.get("evidence") or {})} for i in summary.get("instances") or []],
        "failures": (summary.get("failures") or [])[:MAX_LISTED],
        "nothingUndone": True,
    }
    for key in ("approval", "containment", "evidenceBeforeApproval", "attempt", "manualSteps", "duplicateOf", "dispositionReason", "protectionConfigError", "cutoff",
                "record", "manifest",
                "recordingErrors", "failure", "scope", "signal", "pivots", "rotation", "release", "releaseRequest"):
        if summary.get(key):
            out[key] = summary[key]
    left = left_out(summary.get("signal") or {})
    if left:
        out["leftOut"] = left
    if summary.get("plan") is not None:
        plan = summary["plan"]
        out["plan"] = [{k: e.get(k) for k in ("api", "target") if e.get(k)} for e in plan[:MAX_LISTED]]
        if len(plan) > MAX_LISTED:
            out["planLeftOut"] = len(plan) - MAX_LISTED
    execution = summary.get("executionId")
    if execution:
        out["execution"] = {"arn": execution, "console": console_link(execution)}
    if summary.get("incidentId"):
        out["cli"] = f"python -m cli status {summary['incidentId']}"
    return out


def render(summary: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """(subject, message text, message attributes) for the incident summary."""
    body = message(summary)
    text = json.dumps(body, indent=2, sort_keys=False, default=str)
    for key in ("scope", "plan", "targets", "failures"):
        if len(text.encode()) <= MAX_MESSAGE_BYTES:
            break
        body[key] = f"left out (message size): see the incident record"
        text = json.dumps(body, indent=2, default=str)
    attributes = {"outcome": str(summary.get("outcome") or "unknown"), "priority": body["priority"],
                  "incidentId": str(summary.get("incidentId") or ""), "accountId": str(summary.get("accountId") or "")}
    return subject(summary), text, attributes
