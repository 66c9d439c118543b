"""Approval with a deadline: the state machine waits on a task token (``lambda:invoke.waitForTaskToken``) until a
person approves or denies, or the containment level's ``approvalTimeoutSeconds`` pass (then its ``onTimeout``
decides: contain, or stand down and notify). Pure decisions plus the two sides of the token:

* RequestApproval (handlers/approval.py) stores the token in the incident record's ``approval`` attribute
  (``status`` pending, ``taskToken``, ``requestedAt``, ``deadline``, ``onTimeout``, ``executionId``) and publishes
  the notification (`notification`): who, what, the deadline, and exactly how to answer;
* the operator answers with `answer` (``python -m cli approve|deny``, `state_machines.local.approve|deny`): it
  reads the record, refuses a decided or expired request clearly (`ApprovalRefused`), calls
  ``states:SendTaskSuccess`` with the decision ``{"decision": "approve"|"deny", "by": <caller ARN>, "at", "reason"}``
  and marks the record decided (so the token cannot be used twice). Step Functions refuses a token whose task has
  ended (``TaskTimedOut``, ``TaskDoesNotExist``, ``InvalidToken``): said plainly too.

``by`` is the ARN ``sts:GetCallerIdentity`` returns for the operator's credentials; CloudTrail's SendTaskSuccess
event in the security account is the authoritative record of who called it. Only principals allowed
``states:SendTaskSuccess`` (README "Approval") can answer at all.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

DECISIONS = ("approve", "deny")
MAX_REASON = 1024
OPERATOR_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "states:SendTaskSuccess", "sts:GetCallerIdentity")
STALE_CODES = {"TaskTimedOut": "the approval's deadline passed or the execution ended",
               "TaskDoesNotExist": "the waiting task no longer exists (the execution ended or moved on)",
               "InvalidToken": "Step Functions does not know this token (already used, or the execution ended)"}


class ApprovalRefused(Exception):
    """The answer cannot be given: no pending approval, already decided, expired, or the token is stale."""


def _iso(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def request(incident: dict[str, Any], *, token: str, execution_id: str, now: datetime,
            entered_at: str | None = None) -> dict[str, Any]:
    """The record's ``approval`` attribute for a new request. The deadline counts from when the state was entered
    (Step Functions' clock for TimeoutSecondsPath), not from this call."""
    containment = incident.get("containment") or {}
    start = _when(entered_at) or now
    seconds = int(containment.get("approvalTimeoutSeconds") or 0)
    return {"status": "pending", "taskToken": token, "executionId": execution_id, "requestedAt": _iso(now),
            "deadline": _iso(start + timedelta(seconds=seconds)), "timeoutSeconds": seconds,
            "onTimeout": containment.get("onTimeout"), "rule": containment.get("rule")}


def commands(incident_id: str, token: str) -> dict[str, str]:
    """Exactly how to answer: the CLI lines and the equivalent AWS CLI lines."""
    def aws(decision: str) -> str:
        output = json.dumps({"decision": decision, "by": "<your ARN>", "reason": "<why>"})
        return f"aws stepfunctions send-task-success --task-token '{token}' --task-output '{output}'"
    return {"approve": f'python -m cli approve {incident_id} --reason "<why>"',
            "deny": f'python -m cli deny {incident_id} --reason "<why>"',
            "awsApprove": aws("approve"), "awsDeny": aws("deny")}


def targets(incident: dict[str, Any]) -> list[str]:
    names = [f"{i.get('type')} {i.get('name') or i.get('accessKeyId') or '?'}" for i in incident.get("identities") or []]
    return names + [f"instance {i}" for i in incident.get("instances") or []]


def notification(incident: dict[str, Any], pending: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """(subject, message, attributes) of the approval request."""
    incident_id = incident.get("incidentId") or "?"
    where = f"account {incident.get('accountId')} ({incident.get('region')})"
    default = ("contain" if pending.get("onTimeout") == "contain" else "stand down (nothing is contained)")
    body = {
        "headline": f"APPROVAL REQUIRED: contain {', '.join(targets(incident)) or 'nothing'} in {where}? Nothing is "
                    f"contained until a person approves. Deadline {pending['deadline']}; then: {default}.",
        "outcome": "approval_required",
        "incidentId": incident_id,
        "priority": "high",
        "accountId": incident.get("accountId"),
        "region": incident.get("region"),
        "finding": {k: incident.get(k) for k in ("findingType", "severity", "count") if incident.get(k) is not None},
        "reason": incident.get("reason"),
        "rule": pending.get("rule"),
        "deadline": pending["deadline"],
        "onTimeout": pending.get("onTimeout"),
        "answer": commands(incident_id, pending["taskToken"]),
        "execution": pending.get("executionId"),
        "cli": f"python -m cli status {incident_id}",
    }
    from responder.notify import subject as subject_of

    subject = subject_of({"outcome": "approval_required", "incidentId": incident_id,
                          "accountId": incident.get("accountId"), "severity": incident.get("severity"),
                          "findingType": incident.get("findingType"),
                          "identities": incident.get("identities") or [],
                          "instances": [{"instanceId": i} for i in incident.get("instances") or []]})
    attributes = {"outcome": "approval_required", "priority": "high", "incidentId": str(incident_id),
                  "accountId": str(incident.get("accountId") or "")}
    return subject, json.dumps(body, indent=2), attributes


def pending_of(item: dict[str, Any] | None, incident_id: str, now: datetime) -> dict[str, Any]:
    """The pending approval of the record, or ApprovalRefused saying why there is none to answer."""
    if item is None:
        raise ApprovalRefused(f"no incident {incident_id}")
    approval = item.get("approval") or {}
    if not approval:
        raise ApprovalRefused(f"incident {incident_id} has no approval request (its containment level is "
                              f"{(item.get('containment') or {}).get('level') or 'automatic'})")
    if approval.get("status") != "pending" or not approval.get("taskToken"):
        by = f" by {approval['by']}" if approval.get("by") else ""
        raise ApprovalRefused(f"incident {incident_id}: the approval request is already {approval.get('status')}"
                              f"{by} at {approval.get('decidedAt') or approval.get('at') or '?'}: the token is used")
    deadline = _when(approval.get("deadline"))
    if deadline is not None and now > deadline:
        raise ApprovalRefused(f"incident {incident_id}: the approval's deadline {approval['deadline']} has passed; "
                              f"its default applied ({approval.get('onTimeout')})")
    return approval


def output(decision: str, *, by: str, reason: str, now: datetime) -> dict[str, Any]:
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    reason = (reason or "").strip()
    if not reason:
        raise ApprovalRefused("--reason is required: say why (it goes into the record and the manifest)")
    return {"decision": decision, "by": by, "at": _iso(now), "reason": reason[:MAX_REASON]}


def answer(*, table: Any, sfn: Any, caller_arn: str, incident_id: str, decision: str, reason: str,
           now: datetime | None = None) -> dict[str, Any]:
    """Approve or deny the pending approval of `incident_id`: `table` an IncidentTable, `sfn` a Step Functions
    client, `caller_arn` the operator's identity. Returns the decision sent; ApprovalRefused when it cannot be."""
    from botocore.exceptions import ClientError

    now = now or datetime.now(timezone.utc)
    approval = pending_of(table.get(incident_id), incident_id, now)
    sent = output(decision, by=caller_arn, reason=reason, now=now)
    try:
        sfn.send_task_success(taskToken=approval["taskToken"], output=json.dumps(sent))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in STALE_CODES:
            mark(table, incident_id, approval["taskToken"], {"status": "stale", "error": code, "at": _iso(now)})
            raise ApprovalRefused(f"incident {incident_id}: the token is stale: {STALE_CODES[code]} ({code})") from None
        raise
    mark(table, incident_id, approval["taskToken"],
         {"status": "approved" if decision == "approve" else "denied", **sent, "decidedAt": sent["at"]})
    return sent


def mark(table: Any, incident_id: str, token: str, fields: dict[str, Any]) -> bool:
    """Record the answer on the pending request (only if it is still this token's): the token is cleared."""
    sets = ", ".join(f"#a.#f{i} = :f{i}" for i in range(len(fields)))
    names = {"#a": "approval", "#t": "taskToken", "#s": "status", **{f"#f{i}": k for i, k in enumerate(fields)}}
    values = {":tok": token, ":pending": "pending", **{f":f{i}": v for i, v in enumerate(fields.values())}}
    return table.update(incident_id, f"SET {sets} REMOVE #a.#t", values, names=names,
                        condition="#a.#t = :tok AND #a.#s = :pending")


def recorded(approval: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the record and the manifest keep of the state's ``incident.approval`` (never the token)."""
    if not isinstance(approval, dict):
        return None if approval is None else {"decision": "invalid", "output": str(approval)[:200]}
    keep = {k: approval[k] for k in ("decision", "by", "at", "reason", "onTimeout", "timeoutSeconds", "error")
            if k in approval}
    if approval.get("decision") not in ("approve", "deny", "timed_out"):
        keep["decision"] = "invalid"
        keep["output"] = json.dumps(approval, default=str)[:200]
    for k in ("by", "reason"):
        if k in keep:
            keep[k] = str(keep[k])[:MAX_REASON]
    return keep
