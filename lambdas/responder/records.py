"""The incident record: one DynamoDB item per incident, claimed before anything changes.

**One response per finding.** Triage claims the incident with a conditional put (`attribute_not_exists`) before
any change. The first event of a finding creates the item and responds. A later event with the same incident id
(GuardDuty re-publishes a finding with the same `detail.id` and a higher `service.count`) meets the existing item
and is decided by `decide`:

=====================================================  ==========================================================
the existing record says                               a re-published finding...
=====================================================  ==========================================================
owned by this very execution (Triage was retried)      resumes: same attempt, same cut-off
``in_progress`` and its execution is still running     **duplicate** (two events arriving together: one response)
``in_progress`` but its execution has ended without    **takes over** (``takeover``): the earlier run died before
recording an outcome (aborted, timed out, Finalize     it could record anything; containment is idempotent
failed)
``failed``, ``partially_contained``,                   **retries** (``retry``): every action reads before it writes,
``protection_unverified``, ``not_found``               so what was done is not done twice; at most
                                                       `MAX_AUTOMATIC_ATTEMPTS` attempts, then duplicates
a target (type and name) the record has not answered   **responds** (``new_target``), cut-off UTC now
``eventLastSeen`` later than the stored cut-off        **responds** (``activity``), cut-off UTC now
an earlier dry run (observe-only) and this run is not  **responds** (``enforce``): a plan is not a response
a higher severity band than any event responded to     **responds** (``escalation``): bands are GuardDuty's Low
(Low < 4 <= Medium < 7 <= High < 9 <= Critical)        (<4), Medium, High, Critical. Same band, or lower: duplicate
anything else (contained, protected, manual action,    **duplicate**: ends at once, changes nothing, recorded on
not handled, ...)                                      the first incident's item (``duplicates``, ``lastDuplicate``)
=====================================================  ==========================================================

Manual requests (`origin` manual) are never duplicates - a person asked - but share the incident's item.

**A cut-off never older than the activity.** An attempt on an existing record reuses the stored cut-off, so a replay
of a contained incident changes nothing. It takes UTC now - later, never earlier - when the previous attempt did not
contain (failed, partially contained, protection unverified, not found, a dry run, not handled, or an execution that
died), for a new target (a manual request or a re-published finding naming a principal or instance the record has
not answered), for a severity escalation, and for a finding whose ``eventLastSeen`` is later than the stored
cut-off: sessions minted since must be revoked too. The earlier cut-offs are kept in ``previousCutoffs``; the
record's ``targets`` is every target answered so far.

**Item** (attribute: meaning): ``incidentId`` key; ``status`` ``in_progress`` or the outcome; ``origin``,
``accountId``, ``region``, ``partition``, ``reason``, ``findingId``, ``findingType``, ``findingArn``, ``severity``
(highest responded to), ``count`` (GuardDuty's count at the last attempt); ``dryRun``; ``cutoff``;
``executionId`` (the attempt that owns the record); ``attempts`` (one entry per attempt: execution, trigger,
startedAt, severity, count, dryRun); ``timeline`` (every action: time, task, step, status, api, target,
requestId or error, execution); ``targets``; ``scope`` (CloudTrail captures and the Athena query per principal);
``manifest`` (bucket, key, versionId, sha256); ``notification`` (subject); ``duplicates``/``lastDuplicate``;
``finalized`` (executions whose outcome is recorded: Finalize is idempotent); ``createdAt``/``updatedAt``.

DynamoDB items are limited to 400 KB: timeline entries are compacted (`compact`); the evidence manifest in S3
holds the complete timeline of each attempt, and its SHA-256 is in the item.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from botocore.exceptions import ClientError

from responder.errors import IncidentRecordError, TransientAwsError, best_effort, error_code, recorded

logger = logging.getLogger(__name__)

IN_PROGRESS = "in_progress"
RETRYABLE = frozenset({"failed", "partially_contained", "protection_unverified", "not_found"})
REPIN = RETRYABLE | {"dry_run_plan", "not_handled"}
MAX_AUTOMATIC_ATTEMPTS = 3
RUNNING = frozenset({"RUNNING", "UNKNOWN"})
MAX_ENTRY_BYTES = 4_000
MAX_APPEND_BYTES = 120_000
# The item's bound by design (DynamoDB items are at most 400 KB): the timeline takes at most MAX_TIMELINE_BYTES
# (counted in ``timelineBytes``; what does not fit is counted in ``timelineOmitted``), the targets' results in
# ``results`` together at most MAX_RESULTS_BYTES (each its share; a bigger one keeps its ids and digests only,
# `_bounded`).
MAX_TIMELINE_BYTES = 100_000
MAX_RESULTS_BYTES = 130_000
MAX_RESULT_BYTES = 16_000
# What a result keeps when it is larger than its share: ids, stages, digests (the chain of custody).
_KEEP = frozenset({"kind", "instanceId", "target", "status", "reason", "error", "message", "steps", "stage",
                   "volumeId", "device", "snapshots", "source", "sharingCopy", "forensicsCopy", "snapshotId",
                   "digest", "blocks", "shared", "missingVolumes", "retention", "kept", "deleted", "failed",
                   "done", "phase", "type", "name"})
_CLAIM_ROUNDS = 3


def _now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def execution_name(execution_id: str | None) -> str:
    """The execution's name: the last field of its ARN (what the console and the CLI show)."""
    return (execution_id or "").rsplit(":", 1)[-1]


def band(severity: Any) -> int:
    """GuardDuty's severity band: 0 Low (<4), 1 Medium (<7), 2 High (<9), 3 Critical; -1 unknown."""
    if isinstance(severity, bool) or not isinstance(severity, (int, float)):
        return -1
    return 0 if severity < 4 else 1 if severity < 7 else 2 if severity < 9 else 3


# -- decisions (pure) -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    action: str  # respond | duplicate
    trigger: str  # first, resume, manual, takeover, retry, enforce, escalation ("" for duplicates)
    cutoff: str
    reason: str = ""


def decide(existing: dict[str, Any], incident: dict[str, Any], execution_id: str, *,
           execution_status: Callable[[str], str]) -> Decision:
    """What an execution does when its incident already has a record (see the module docstring).
    `execution_status(arn)` is asked only when the record is in progress under another execution."""
    status = existing.get("status", "")
    owner = existing.get("executionId") or ""
    stored = existing.get("cutoff") or incident["cutoff"]
    fresh = max(stored, incident["cutoff"])
    attempts = len(existing.get("attempts") or [])
    if owner and owner == execution_id:
        return Decision("respond", "resume", stored, "this execution already holds the incident")
    added = new_targets(existing.get("targets"), incident)
    if incident.get("origin") == "manual":
        return Decision("respond", "manual", fresh if status in REPIN or added else stored,
                        "a person asked: manual requests are never duplicates"
                        + (f"; new target(s) {', '.join(added)}: the cut-off moves to now" if added else ""))

    def duplicate(why: str) -> Decision:
        return Decision("duplicate", "", stored, why)

    if status == IN_PROGRESS:
        state = execution_status(owner) if owner else "MISSING"
        if state == "RUNNING":
            return duplicate(f"the response {execution_name(owner)} is still running")
        if state == "UNKNOWN":
            return duplicate(f"the response {execution_name(owner)} could not be checked: treated as running")
        if attempts >= MAX_AUTOMATIC_ATTEMPTS:
            return duplicate(f"{attempts} attempts made: start a manual request to try again")
        return Decision("respond", "takeover", fresh,
                        f"the earlier execution {execution_name(owner) or '?'} ended ({state}) without an outcome")
    if status in RETRYABLE and attempts >= MAX_AUTOMATIC_ATTEMPTS:  # new names or activity do not lift the limit
        return duplicate(f"{status} after {attempts} attempts: start a manual request to try again")
    if added:
        return Decision("respond", "new_target", fresh,
                        f"the finding now names {', '.join(added)}, which the incident has not answered")
    if later_activity(incident.get("eventLastSeen"), stored):
        return Decision("respond", "activity", fresh,
                        f"activity seen at {incident['eventLastSeen']}, after the cut-off {stored}: sessions issued "
                        "since are revoked too")
    if status in RETRYABLE:
        return Decision("respond", "retry", fresh, f"the previous attempt ended {status}; every action is idempotent")
    if existing.get("dryRun") and not incident.get("dryRun"):
        return Decision("respond", "enforce", fresh, "the earlier response was a dry run: it changed nothing")
    if band(incident.get("severity")) > band(existing.get("severity")):
        return Decision("respond", "escalation", fresh,
                        f"severity rose from {existing.get('severity')} to {incident.get('severity')}")
    return duplicate(f"already answered by {execution_name(owner) or 'an earlier execution'}: {status}")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def later_activity(last_seen: Any, cutoff: Any) -> bool:
    """Is the finding's ``eventLastSeen`` later than the stored cut-off (activity after the response)? Pure."""
    seen, stored = _time(last_seen), _time(cutoff)
    return bool(seen and stored and seen > stored)


def _identity_key(identity: dict[str, Any]) -> str:
    """A target is its type and name (IAM names are case-insensitive); a nameless one is its access key."""
    return f"{identity.get('type')}:{identity.get('name') or identity.get('accessKeyId') or ''}".lower()


def _target_keys(found: dict[str, Any] | None) -> set[str]:
    keys = {_identity_key(i) for i in (found or {}).get("identities") or [] if isinstance(i, dict)}
    return keys | {f"instance:{i}" for i in (found or {}).get("instances") or []}


def new_targets(stored: dict[str, Any] | None, incident: dict[str, Any]) -> list[str]:
    """The incident's targets the record has not answered yet (labels), none when the record lists no targets."""
    if not stored:
        return []
    known, mine = _target_keys(stored), targets(incident)
    out = [f"{i['type']} {i.get('name') or i.get('accessKeyId') or '?'}" for i in mine["identities"]
           if _identity_key(i) not in known]
    return out + [i for i in mine["instances"] if f"instance:{i}" not in known]


# -- items and timeline entries (pure) ----------------------------------------------------------------------
FINDING_FIELDS = ("findingId", "findingType", "findingArn", "severity", "count")
TARGET_FIELDS = ("identities", "instances")


def targets(incident: dict[str, Any]) -> dict[str, Any]:
    return {"identities": [{k: v for k, v in i.items() if k in ("type", "name", "accessKeyId")}
                           for i in incident.get("identities") or []],
            "instances": list(incident.get("instances") or [])}


def merged_targets(stored: dict[str, Any] | None, incident: dict[str, Any]) -> dict[str, Any]:
    """Every target the incident has answered so far: the record's, then this attempt's new ones."""
    out = {"identities": list((stored or {}).get("identities") or []),
           "instances": list((stored or {}).get("instances") or [])}
    mine, known = targets(incident), _target_keys(stored)
    out["identities"] += [i for i in mine["identities"] if _identity_key(i) not in known]
    out["instances"] += [i for i in mine["instances"] if f"instance:{i}" not in known]
    return out


def attempt(incident: dict[str, Any], execution_id: str, trigger: str, now: datetime) -> dict[str, Any]:
    found = {"execution": execution_name(execution_id), "executionId": execution_id, "trigger": trigger,
             "startedAt": stamp(now), "dryRun": bool(incident.get("dryRun")), "cutoff": incident.get("cutoff")}
    for key in ("severity", "count"):
        if incident.get(key) is not None:
            found[key] = incident[key]
    return found


def new_item(incident: dict[str, Any], execution_id: str, now: datetime) -> dict[str, Any]:
    item = {
        "incidentId": incident["incidentId"], "status": IN_PROGRESS, "origin": incident.get("origin"),
        "accountId": incident.get("accountId"), "region": incident.get("region"),
        "partition": incident.get("partition"), "reason": incident.get("reason"),
        "disposition": incident.get("disposition"), "dispositionReason": incident.get("dispositionReason"),
        "dryRun": bool(incident.get("dryRun")), "cutoff": incident["cutoff"], "executionId": execution_id,
        "createdAt": stamp(now), "updatedAt": stamp(now), "targets": targets(incident),
        "attempts": [attempt(incident, execution_id, "first", now)], "timeline": [], "duplicates": 0,
        "results": {}, "timelineBytes": 0,
    }
    item.update({k: incident[k] for k in FINDING_FIELDS if incident.get(k) not in (None, "")})
    if incident.get("signal"):  # what the signal named beside the targets: buckets, groups, what was left out
        item["signal"] = incident["signal"]
    return {k: v for k, v in item.items() if v is not None}


def _size(value: Any) -> int:
    return len(json.dumps(value, default=str))


def compact(entries: list[dict[str, Any]], *, execution: str, task: str,
            subject: str | None = None) -> list[dict[str, Any]]:
    """Timeline entries as stored in the item: tagged with execution and task, each at most `MAX_ENTRY_BYTES`
    (planned call parameters and long messages are cut: the manifest keeps them whole), all together at most
    `MAX_APPEND_BYTES` (failures are kept first; a marker says how many were left out)."""
    out: list[dict[str, Any]] = []
    for entry in entries:
        item = {k: v for k, v in entry.items() if v is not None}
        item.setdefault("task", task)
        if subject:
            item.setdefault("subject", subject)
        item["execution"] = execution
        if _size(item) > MAX_ENTRY_BYTES:
            if isinstance(item.get("params"), dict):
                item["params"] = {k: "..." if _size(v) > 200 else v for k, v in item["params"].items()}
            if isinstance(item.get("message"), str):
                item["message"] = item["message"][:300]
            if _size(item) > MAX_ENTRY_BYTES:
                item = {k: item[k] for k in ("time", "task", "step", "status", "api", "target", "requestId",
                                             "error", "execution") if k in item}
        out.append(item)
    if _size(out) <= MAX_APPEND_BYTES:
        return out
    kept, total = [], 0
    for item in sorted(out, key=lambda e: e.get("status") != "failed"):
        total += _size(item)
        if total > MAX_APPEND_BYTES:
            break
        kept.append(item)
    kept.sort(key=lambda e: e.get("time") or "")
    kept.append({"time": kept[-1].get("time") if kept else None, "task": task, "execution": execution,
                 "status": "truncated", "target": "timeline",
                 "detail": f"{len(out) - len(kept)} entries left out of the record: the manifest has them all"})
    return kept


# -- update expressions ------------------------------------------------------------------------------------
class _Update:
    """Builds one UpdateItem: every attribute name goes through a placeholder (DynamoDB has 570 reserved words)."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.adds: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def n(self, attribute: str) -> str:
        key = f"#{attribute}"
        self.names[key] = attribute
        return key

    def v(self, value: Any) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = value
        return key

    def set(self, attribute: str, value: Any) -> "_Update":
        self.sets.append(f"{self.n(attribute)} = {self.v(value)}")
        return self

    def set_if_absent(self, attribute: str, value: Any) -> "_Update":
        a = self.n(attribute)
        self.sets.append(f"{a} = if_not_exists({a}, {self.v(value)})")
        return self

    def append(self, attribute: str, items: list) -> "_Update":
        a = self.n(attribute)
        self.sets.append(f"{a} = list_append(if_not_exists({a}, {self.v([])}), {self.v(items)})")
        return self

    def add(self, attribute: str, value: Any) -> "_Update":
        self.adds.append(f"{self.n(attribute)} {self.v(value)}")
        return self

    def remove(self, attribute: str) -> "_Update":
        self.removes.append(self.n(attribute))
        return self

    @property
    def expression(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.adds:
            parts.append("ADD " + ", ".join(self.adds))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        return " ".join(parts)

    def run(self, table: Any, incident_id: str, condition: str | None = None) -> bool:
        return table.update(incident_id, self.expression, self.values, names=self.names, condition=condition)


# -- claim (Triage) ----------------------------------------------------------------------------------------
def _aws_call(what: str, fn: Callable[[], Any]) -> Any:
    """Run one record call: transient AWS errors become TransientAwsError (the Task is retried), others
    IncidentRecordError (Triage fails before anything changed; Finalize records and notifies)."""
    try:
        return fn()
    except Exception as exc:
        code = recorded(exc, what, "dynamodb")
        raise IncidentRecordError(f"{what}: {code}: {str(exc)[:300]}") from exc


aws_call = _aws_call


def request_approval(table: Any, incident_id: str, pending: dict[str, Any], now: datetime | None = None) -> None:
    """Store the pending approval (responder.approval.request: the task token, the deadline) on the incident's
    item, where `python -m cli approve|deny` finds it. Only while this execution owns the record."""
    update = _Update().set("approval", pending).set("updatedAt", stamp(now or _now()))
    condition = f"{update.n('executionId')} = {update.v(pending['executionId'])}"
    if not _aws_call("store the approval request", lambda: update.run(table, incident_id, condition)):
        raise IncidentRecordError(f"incident record {incident_id} is owned by another execution: no approval "
                                  "requested")


def execution_status(executions: Any) -> Callable[[str], str]:
    """`executions.status` for `claim`: transient errors retry Triage; any other error answers ``UNKNOWN``
    (treated as still running: a duplicate, never a second concurrent response)."""
    def status(arn: str) -> str:
        try:
            return executions.status(arn)
        except Exception as exc:
            code = recorded(exc, "states:DescribeExecution", "stepfunctions")
            logger.warning("cannot check execution %s: %s", arn, code)
            return "UNKNOWN"
    return status


def claim(table: Any, incident: dict[str, Any], *, execution_id: str, execution_status: Callable[[str], str],
          now: datetime | None = None) -> dict[str, Any]:
    """Claim the incident for this execution (or find it answered). Returns the fields to merge into the
    incident: ``cutoff`` (pinned), ``record`` ({trigger, attempt}), and for a duplicate ``disposition``
    ``duplicate``, ``dispositionReason`` and ``duplicateOf``."""
    now = now or _now()
    incident_id = incident["incidentId"]
    for _ in range(_CLAIM_ROUNDS):
        existing = _aws_call("claim incident record", lambda: table.create(new_item(incident, execution_id, now)))
        if existing is None:
            return {"cutoff": incident["cutoff"], "record": {"trigger": "first", "attempt": 1}}
        decision = decide(existing, incident, execution_id, execution_status=execution_status)
        attempts = len(existing.get("attempts") or [])
        if decision.action == "duplicate":
            first = {"incidentId": incident_id, "executionId": existing.get("executionId"),
                     "status": existing.get("status"), "createdAt": existing.get("createdAt")}
            note = {"executionId": execution_id, "at": stamp(now), "count": incident.get("count"),
                    "severity": incident.get("severity"), "reason": decision.reason}
            _aws_call("record duplicate", lambda: _Update().add("duplicates", 1).set("lastDuplicate", note)
                      .set("updatedAt", stamp(now)).run(table, incident_id))
            return {"cutoff": decision.cutoff, "disposition": "duplicate", "dispositionReason": decision.reason,
                    "duplicateOf": first, "record": {"trigger": "duplicate", "attempt": attempts}}
        if decision.trigger == "resume":
            return {"cutoff": decision.cutoff, "record": {"trigger": "resume", "attempt": attempts}}
        taken = dict(incident, cutoff=decision.cutoff)
        update = (_Update().set("status", IN_PROGRESS).set("executionId", execution_id)
                  .set("cutoff", decision.cutoff).set("updatedAt", stamp(now)).set("dryRun", bool(incident.get("dryRun")))
                  .set("disposition", incident.get("disposition"))
                  .set("targets", merged_targets(existing.get("targets"), incident))
                  .set("results", {})
                  .append("attempts", [attempt(taken, execution_id, decision.trigger, now)]))
        severities = [s for s in (existing.get("severity"), incident.get("severity")) if isinstance(s, (int, float))]
        if severities:
            update.set("severity", max(severities))
        if incident.get("count") is not None:
            update.set("count", incident["count"])
        if decision.cutoff != existing.get("cutoff") and existing.get("cutoff"):
            update.append("previousCutoffs", [existing["cutoff"]])
        if decision.trigger == "manual":
            condition = "attribute_exists(incidentId)"
        else:  # only if nobody else moved the record since we read it
            condition = f"{update.n('status')} = {update.v(existing.get('status'))} AND " + (
                f"{update.n('executionId')} = {update.v(existing['executionId'])}" if existing.get("executionId")
                else f"attribute_not_exists({update.n('executionId')})")
        if _aws_call("take over incident record", lambda: update.run(table, incident_id, condition)):
            return {"cutoff": decision.cutoff, "record": {"trigger": decision.trigger, "attempt": attempts + 1,
                                                          "reason": decision.reason}}
    raise TransientAwsError(f"incident record {incident_id} changed {_CLAIM_ROUNDS} times while claiming it")


# -- progress (any task) -----------------------------------------------------------------------------------
# Shares of MAX_RESULTS_BYTES: an instance's evidence (ids and digests per volume) weighs four times the others.
_WEIGHT = {"evidence": 4}


def share(incident: dict[str, Any], key: str = "") -> int:
    """The bytes the result `key` (``<task>:<target>``) may take in ``results``: its weighted share of
    MAX_RESULTS_BYTES over every result the incident can write (isolation and evidence per instance, one per
    identity), at most MAX_RESULT_BYTES."""
    instances = len(incident.get("instances") or [])
    units = instances * (1 + _WEIGHT["evidence"]) + len(incident.get("identities") or [])
    weight = _WEIGHT.get(key.split(":", 1)[0], 1)
    return max(400, min(MAX_RESULT_BYTES, MAX_RESULTS_BYTES * weight // max(units, 1)))


def _essentials(value: Any, nested: bool = False) -> Any:
    """The ids, stages and digests of a result; inside a snapshot part only its id (the verified digest is the
    volume's own ``digest``)."""
    if isinstance(value, dict):
        if nested and "snapshotId" in value:
            return {"snapshotId": value["snapshotId"]}
        return {k: _essentials(v, True) for k, v in value.items() if k in _KEEP and k != "sharingCopy"}
    if isinstance(value, list):
        return [_essentials(v, nested) for v in value]
    return value


def _bounded(value: dict[str, Any], limit: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """A target's result as stored in ``results``: at most `limit` bytes. A bigger one keeps its ids, stages and
    digests (`_KEEP`), and if that is still too big its short fields, and says so (``truncated``); the journal
    entries are in the timeline, the snapshots are tagged and described with the incident."""
    value = {k: v for k, v in value.items() if k != "entries" and v is not None}
    if _size(value) <= limit:
        return value
    size = _size(value)
    small = _essentials(value)
    if _size(small) > limit:
        small = {k: v for k, v in small.items() if _size(v) <= 300}
    small["truncated"] = f"{size} bytes: larger than its share of the record"
    return small


def append(table: Any, incident: dict[str, Any], entries: list[dict[str, Any]], *, task: str,
           fields: dict[str, Any] | None = None, results: dict[str, dict[str, Any]] | None = None,
           subject: str | None = None, now: datetime | None = None) -> bool:
    """Append timeline entries, set `fields` and ``results[key] = value`` for each of `results`, on the
    incident's item while the execution runs. The timeline stays within MAX_TIMELINE_BYTES: entries that do not fit
    are counted in ``timelineOmitted`` instead. False when the item does not exist (never creates one). Raises the
    AWS error; use `record_task` from a task."""
    now = now or _now()
    batch = compact(entries, execution=execution_name(incident.get("executionId")), task=task, subject=subject)
    size = _size(batch)

    def run(with_timeline: bool, with_result: bool) -> bool:
        update = _Update().set("updatedAt", stamp(now))
        condition = "attribute_exists(incidentId)"
        if batch and with_timeline:
            update.append("timeline", batch).add("timelineBytes", size)
            used = update.n("timelineBytes")
            condition += f" AND (attribute_not_exists({used}) OR {used} <= {update.v(MAX_TIMELINE_BYTES - size)})"
        elif batch:
            update.add("timelineOmitted", len(batch))
        for key, value in (fields or {}).items():
            update.set(key, value)
        for number, (key, value) in enumerate((results or {}).items() if with_result else ()):
            update.sets.append(f"{update.n('results')}.#r{number} = {update.v(_bounded(value, share(incident, key)))}")
            update.names[f"#r{number}"] = key
        return update.run(table, incident["incidentId"], condition)

    with_result = True
    try:
        if run(True, with_result):
            return True
    except ClientError as exc:  # a record without ``results`` (written before it existed): keep the journal
        if not results or error_code(exc) != "ValidationException":
            raise
        logger.warning("incident record %s: result not stored (%s)", incident.get("incidentId"), str(exc)[:200])
        with_result = False
        if run(True, with_result):
            return True
    return bool(batch) and run(False, with_result)  # the timeline is full (or the item does not exist)


def record_task(incident: dict[str, Any], *, task: str, entries: list[dict[str, Any]], table: Any,
                subject: str | None = None, results: dict[str, dict[str, Any]] | None = None,
                fields: dict[str, Any] | None = None) -> bool:
    """Best effort, for a task's handler: append the journal entries of this invocation (and the target's result)
    as they happen. A failure is logged, never raised: the record is bookkeeping and must not fail containment;
    the summary then says ``recorded: false`` and Finalize reports it. Skipped for duplicates (their record belongs
    to the first execution). `table`: the incident table, or a zero-argument factory of it (made only when there
    is something to write; a table that cannot be made is a write that failed)."""
    if incident.get("disposition") == "duplicate":
        return False
    if not entries and not fields and not results:
        return True
    try:
        if not append(table() if callable(table) else table, incident, entries, task=task, fields=fields, results=results,
                      subject=subject):
            logger.warning("incident record %s does not exist: not updated (%s)", incident.get("incidentId"), task)
            return False
    except Exception as exc:
        if not best_effort(exc):
            raise
        logger.warning("incident record not updated (%s): %s", task, error_code(exc))
        return False
    return True


def journal(item: dict[str, Any] | None, execution_id: str | None) -> list[dict[str, Any]]:
    """This execution's timeline entries in the record (what its tasks appended as they ran), in order."""
    me = execution_name(execution_id)
    return [e for e in (item or {}).get("timeline") or [] if e.get("execution") == me]


def note_analysis(table: Any, incident_id: str, entry: dict[str, Any], now: datetime | None = None) -> bool:
    """List an analyze execution (responder.workstation) on the incident's item (``analyses``): its outcome,
    workstation and manifest. The status and the results of the response are left as they are."""
    update = _Update().append("analyses", [{k: v for k, v in entry.items() if v is not None}]).set(
        "updatedAt", stamp(now or _now()))
    return _aws_call("record the analysis", lambda: update.run(table, incident_id, "attribute_exists(incidentId)"))


# -- outcome (Finalize) ------------------------------------------------------------------------------------
def finish(table: Any, incident: dict[str, Any], *, execution_id: str, outcome: str, entries: list[dict[str, Any]],
           fields: dict[str, Any], now: datetime | None = None) -> str:
    """Record the outcome of this execution: append its remaining timeline entries, set status and `fields`.
    Idempotent per execution (``finalized``). Returns ``recorded``, ``timeline_only`` (another execution owns the
    record now: its status is left alone) or ``already`` (this execution was recorded before). Raises AWS errors."""
    now = now or _now()
    incident_id = incident["incidentId"]
    me = execution_id or "unknown"
    stored = compact(entries, execution=execution_name(me), task="finalize")

    def build(with_status: bool, timeline: list) -> _Update:
        update = _Update().append("timeline", timeline).add("finalized", {me}).set("updatedAt", stamp(now))
        for key in ("accountId", "region", "partition", "origin", "reason", "cutoff"):
            if incident.get(key) is not None:
                update.set_if_absent(key, incident[key])
        update.set_if_absent("createdAt", stamp(now))
        if with_status:
            update.set("status", outcome).set("outcome", outcome).set("executionId", me)
            for key, value in fields.items():
                if value is None:
                    update.remove(key)
                else:
                    update.set(key, value)
        return update

    def not_finalized(update: _Update) -> str:
        f = update.n("finalized")
        return f"(attribute_not_exists({f}) OR NOT contains({f}, {update.v(me)}))"

    def run(with_status: bool, timeline: list) -> bool:
        update = build(with_status, timeline)
        condition = not_finalized(update)
        if with_status:
            e = update.n("executionId")
            condition += f" AND (attribute_not_exists({e}) OR {e} = {update.v(me)})"
        return update.run(table, incident_id, condition)

    for timeline in (stored, [_overflow(me, now)]):
        try:
            if run(True, timeline):
                return "recorded"
            current = table.get(incident_id) or {}
            if me in (current.get("finalized") or []):
                return "already"
            return "timeline_only" if run(False, timeline) else "already"
        except ClientError as exc:
            if error_code(exc) != "ValidationException" or "size" not in str(exc).lower():
                raise
    raise IncidentRecordError(f"incident record {incident_id} is full")


def _overflow(execution_id: str, now: datetime) -> dict[str, Any]:
    return {"time": stamp(now), "task": "finalize", "execution": execution_name(execution_id), "status": "truncated",
            "target": "timeline", "detail": "the record reached DynamoDB's item size: the manifest has the timeline"}
