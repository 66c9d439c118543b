"""Scope before touching (field runbook, step 2): what did the principal do? Captured before it is contained.

For every identity of an incident, before the identity branch changes anything:

1. **capture** its recent management events from CloudTrail event history in the member account
   (`LookupEvents`, one lookup attribute):

   ==================================  ===============================================================
   identity                            lookup
   ==================================  ===============================================================
   any, with the finding's access key  ``AccessKeyId`` = the key (exactly the stolen credentials)
   IAM user                            ``Username`` = the user name (all its keys, console sessions)
   role (manual request, no key)       ``ResourceName`` = the role's ARN (AssumeRole and other events
                                       naming the role: who obtained sessions of it)
   root                                ``Username`` = ``root``
   federated user                      ``Username`` = the federated user's name
   ==================================  ===============================================================

   in the incident's Region and in the partition's global-events Region (`GLOBAL_REGIONS`: IAM and other global
   services record their events there - a stolen key's CreateAccessKey or AttachUserPolicy is only found there),
   bounded: the window (below), at most `MAX_PAGES` pages of 50 events per principal and Region, and
   `BUDGET_SECONDS` for all principals together (LookupEvents allows two requests per second per account and
   Region). The events (newest first, each naming its Region in ``CloudTrailEvent.awsRegion``) go
   to the forensics evidence bucket as ``incidents/<incidentId>/cloudtrail/<principal>.json``, with their
   SHA-256 in the result;
2. **write down** the Athena query a responder runs over the organization trail for the same window (the
   runbook's query shape, table `ATHENA_TABLE`): the event history covers 90 days of management events in one
   Region; the organization trail has everything, in every account and Region.

**On a real engine.** When the deployment names the organization trail's Athena table (database, table,
workgroup: `Trail`), the trail is the source instead: `capture_all` *starts* each principal's saved query
(responder/trail_query.py: the named query of its kind, values only as execution parameters) and captures nothing
else for it, so containment is not delayed by the query; `complete_trail`, called after containment, waits for the
queries within `TRAIL_SECONDS`, reads the rows (at most `trail_query.MAX_ROWS` per principal), turns them into the
records LookupEvents returns and stores them at the same evidence key with their SHA-256 (``source``: ``athena``).
A principal whose query cannot be started (a value AWS would never issue, no permission, the active-query quota),
fails, or does not finish in time is captured from event history instead (``source``: ``lookup_events``), with
the query's outcome recorded in ``trail``. Either way the capture never blocks containment.

Window: from the finding's first sighting (``service.eventFirstSeen``) or 24 h before the cut-off, whichever is
earlier, to the incident's cut-off; at most `MAX_WINDOW_DAYS` days. A capture that fails (no permission, throttled
after retries, bucket unreachable) is recorded as ``failed`` and **never blocks containment**. In a dry run nothing
is looked up or written: the plan lists the ``s3:PutObject`` that would store each capture.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass
from typing import Any, Callable

from responder import trail_query
from responder.errors import best_effort, error_code
from responder.journal import Journal

ATHENA_TABLE = "cloudtrail_logs"
WINDOW_HOURS = 24
MAX_WINDOW_DAYS = 7
MAX_PAGES = 5
BUDGET_SECONDS = 20.0
TRAIL_SECONDS = 40.0  # waiting for the trail queries after containment (the identity task has 90 s)
GLOBAL_REGIONS = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@=,+-]")


# -- pure decisions ----------------------------------------------------------------------------------------
def _parse(ts: Any) -> datetime | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def first_seen(incident: dict[str, Any]) -> str | None:
    """The finding's first sighting (``service.eventFirstSeen``, kept by triage in the normalized incident);
    None for manual requests, or when absent or not a time."""
    value = incident.get("eventFirstSeen")
    return value if _parse(value) else None


def window(cutoff: str, seen: str | None = None) -> dict[str, str]:
    """[start, end] of the activity to capture: end = the cut-off; start = the earlier of first sighting and
    24 h before the cut-off, never more than `MAX_WINDOW_DAYS` before the end."""
    end = _parse(cutoff) or datetime.now(timezone.utc)
    start = end - timedelta(hours=WINDOW_HOURS)
    sighted = _parse(seen)
    if sighted and sighted < start:
        start = max(sighted, end - timedelta(days=MAX_WINDOW_DAYS))
    return {"start": start.strftime(_FORMAT), "end": end.strftime(_FORMAT)}


def principal_label(identity: dict[str, Any]) -> str:
    """A file-name-safe label: ``user-ci-deployer``, ``role-app``, ``root``, ``federated-bob``."""
    kind = {"IAMUser": "user", "AssumedRole": "role", "Root": "root", "FederatedUser": "federated"}.get(
        identity.get("type", ""), "principal")
    name = identity.get("name") or identity.get("accessKeyId") or identity.get("principalId") or ""
    if kind == "root":
        return "root"
    return _UNSAFE.sub("_", f"{kind}-{name}")[:120] if name else kind


def object_key(incident_id: str, identity: dict[str, Any]) -> str:
    return f"incidents/{incident_id}/cloudtrail/{principal_label(identity)}.json"


def lookup_for(identity: dict[str, Any], role_arn: str | None = None) -> tuple[str, str] | None:
    """The one LookupEvents attribute for this identity (see the module docstring), or None."""
    if identity.get("accessKeyId"):
        return "AccessKeyId", identity["accessKeyId"]
    kind, name = identity.get("type"), identity.get("name")
    if kind == "Root":
        return "Username", "root"
    if kind in ("IAMUser", "FederatedUser") and name:
        return "Username", name
    if kind == "AssumedRole" and role_arn:
        return "ResourceName", role_arn
    return None


def lookup_regions(incident: dict[str, Any]) -> list[str]:
    """The incident's Region, then the partition's global-events Region if that is another one."""
    regions = [incident["region"]]
    extra = GLOBAL_REGIONS.get(incident.get("partition") or "aws")
    if extra and extra not in regions:
        regions.append(extra)
    return regions


def _q(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def athena_query(identity: dict[str, Any], incident: dict[str, Any], span: dict[str, str],
                 table: str = ATHENA_TABLE) -> str | None:
    """The runbook's Athena query over the organization trail for this principal and window, or None."""
    account, kind, name = incident.get("accountId", ""), identity.get("type"), identity.get("name")
    if kind == "IAMUser" and name:
        who = (f"useridentity.type = 'IAMUser' AND useridentity.accountid = {_q(account)} "
               f"AND useridentity.username = {_q(name)}")
    elif kind == "AssumedRole" and name:
        who = (f"useridentity.type = 'AssumedRole' AND useridentity.sessioncontext.sessionissuer.accountid = "
               f"{_q(account)} AND useridentity.sessioncontext.sessionissuer.username = {_q(name)}")
    elif kind == "Root":
        who = f"useridentity.type = 'Root' AND useridentity.accountid = {_q(account)}"
    elif kind == "FederatedUser" and name:
        who = (f"useridentity.type = 'FederatedUser' AND useridentity.accountid = {_q(account)} "
               f"AND useridentity.arn LIKE {_q('%:federated-user/' + name)}")
    elif identity.get("accessKeyId"):
        who = f"useridentity.accesskeyid = {_q(identity['accessKeyId'])}"
    elif identity.get("principalId"):
        who = f"useridentity.principalid = {_q(identity['principalId'])}"
    else:
        return None
    return (f"SELECT eventTime, eventName, sourceIPAddress, userAgent, requestParameters FROM {table} "
            f"WHERE {who} AND eventTime BETWEEN {_q(span['start'])} AND {_q(span['end'])} ORDER BY eventTime")


@dataclass(frozen=True)
class Trail:
    """The organization trail's Athena table, or its CloudTrail Lake event data store (`event_data_store`), as the
    deployment names it (responder.settings)."""
    database: str = ""
    table: str = ""
    workgroup: str = ""
    date_partition: str = ""
    engine: Callable[[], Any] | None = None  # builds the aws/athena.py (or aws/lake.py) adapter
    event_data_store: str = ""  # set: CloudTrail Lake instead of Athena

    @property
    def kind(self) -> str:
        return "lake" if self.event_data_store else "athena"


def _event_document(incident: dict[str, Any], identity: dict[str, Any], span: dict[str, str],
                    events: list[dict[str, Any]], **about: Any) -> bytes:
    events = sorted(events, key=lambda e: str(e.get("EventTime") or ""), reverse=True)
    document = {"incidentId": incident["incidentId"], "accountId": incident.get("accountId"),
                "principal": identity, "window": span, **about, "events": events}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def summarize(captures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The captures as the incident record, the execution output and the notification show them."""
    return [{k: v for k, v in c.items() if v is not None} for c in captures]


# -- capture -----------------------------------------------------------------------------------------------
def _status(captures: list[dict[str, Any]]) -> str:
    statuses = {c["status"] for c in captures}
    return ("failed" if "failed" in statuses else "started" if "started" in statuses
            else "planned" if "planned" in statuses else "captured" if "captured" in statuses
            else "skipped" if captures else "nothing_to_do")


class _Capture:
    """One run of the scope capture: the adapters (built once each, lazily), the journal, the deadline."""

    def __init__(self, incident: dict[str, Any], *, cloudtrail: Callable[[str], Any] | None,
                 bucket: Callable[[], Any] | None, role_arn: Callable[[str], str | None] | None,
                 dry_run: bool, monotonic: Callable[[], float], budget: float):
        self.incident = incident
        self.journal = Journal(dry_run=dry_run)
        self.dry_run = dry_run
        self.deadline = monotonic() + budget
        self.budget = budget
        self.monotonic = monotonic
        self._cloudtrail, self._bucket, self._role_arn = cloudtrail, bucket, role_arn
        self._adapters: dict[str, Any] = {}

    def adapter(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self._adapters:
            self._adapters[name] = make()
        return self._adapters[name]

    def bucket(self) -> Any:
        return self.adapter("bucket", self._bucket)

    def failed(self, found: dict[str, Any], exc: BaseException, step: str) -> None:
        if not best_effort(exc):
            raise exc
        found["status"] = "failed"
        found["error"] = error_code(exc)
        self.journal.note("failed", found["principal"], step=step, error=error_code(exc), message=str(exc)[:400])

    def lookup(self, identity: dict[str, Any], found: dict[str, Any]) -> None:
        """Capture from CloudTrail event history (LookupEvents) into `found`."""
        incident, span, target = self.incident, found["window"], found["principal"]
        try:
            arn = None
            if identity.get("type") == "AssumedRole" and identity.get("name") and not identity.get("accessKeyId"):
                arn = (f"arn:{incident.get('partition') or 'aws'}:iam::{incident.get('accountId')}:role/"
                       f"{identity['name']}") if self.dry_run else self._role_arn(identity["name"])
            lookup = lookup_for(identity, arn)
            if lookup is None:
                found["status"] = "skipped"
                found["detail"] = ("no such role" if identity.get("type") == "AssumedRole"
                                   else "no CloudTrail lookup attribute for this identity")
                self.journal.note("skipped", target, detail=found["detail"])
                return
            found["lookup"] = {"AttributeKey": lookup[0], "AttributeValue": lookup[1]}
            store = self.bucket()
            key = object_key(incident["incidentId"], identity)
            if self.dry_run:
                found.update(store.put_evidence(self.journal, key, b""), status="planned")
                return
            if self.monotonic() > self.deadline:
                found["status"] = "skipped"
                found["detail"] = f"scope time budget ({self.budget:.0f} s) spent: use the Athena query"
                self.journal.note("skipped", target, detail=found["detail"])
                return
            with self.journal.step("capture_cloudtrail", target):
                events, regions = [], {}
                for region in lookup_regions(incident):
                    got = self.adapter(f"cloudtrail:{region}", lambda r=region: self._cloudtrail(r)).lookup(
                        lookup[0], lookup[1], start=_parse(span["start"]), end=_parse(span["end"]),
                        max_pages=MAX_PAGES, deadline=self.deadline)
                    events += got["events"]
                    regions[region] = {"events": len(got["events"]), "pages": got["pages"],
                                       "truncated": got["truncated"]}
                truncated = any(r["truncated"] for r in regions.values())
                body = _event_document(incident, identity, span, events, source="lookup_events",
                                       lookup=found["lookup"], regions=regions, truncated=truncated)
                found.update(store.put_evidence(self.journal, key, body), events=len(events), regions=regions,
                             truncated=truncated, source="lookup_events", status="captured")
            if found.get("status") != "captured":
                found["status"] = "failed"
                found["error"] = (self.journal.failures[-1].get("error") if self.journal.failures else "unknown")
        except Exception as exc:  # reaching an account failed: record, go on (a bug is raised)
            self.failed(found, exc, "capture_cloudtrail")

    def result(self, captures: list[dict[str, Any]], span: dict[str, str]) -> dict[str, Any]:
        entries = [dict(e, task="scope") for e in self.journal.entries]
        return {"status": _status(captures), "window": span, "captures": captures, "entries": entries}


def _start_trail(run: _Capture, trail: Trail, identity: dict[str, Any], found: dict[str, Any]) -> bool:
    """Start this principal's trail query; True when it runs (then nothing else is captured for it now)."""
    incident, span = run.incident, found["window"]
    try:
        if trail.kind == "lake":
            query = trail_query.lake_query(identity, incident, span, event_data_store=trail.event_data_store)
        else:
            query = trail_query.principal_query(identity, incident, span, database=trail.database,
                                                table=trail.table, date_partition=trail.date_partition)
    except trail_query.UnsafeValue as exc:
        found["trail"] = {"engine": trail.kind, "status": "refused", "detail": str(exc)}
        run.journal.note("refused", found["principal"], step="start_trail_query", detail=str(exc))
        return False
    if query is None:
        return False
    where = ({"eventDataStore": trail.event_data_store, "statement": query["query"]} if trail.kind == "lake" else
             {"namedQuery": query["name"], "workgroup": trail.workgroup, "database": trail.database,
              "table": trail.table})
    found["trail"] = {"engine": trail.kind, **where, "parameters": query["parameters"]}
    if run.dry_run:
        found["trail"]["status"] = "planned"
        run.journal.note("planned", found["principal"], step="start_trail_query", namedQuery=query["name"])
        return False
    try:
        token = request_token(incident["incidentId"], found["principal"], span["start"], span["end"])
        execution = run.adapter("athena", trail.engine).start(query["query"], query["parameters"], token=token)
    except Exception as exc:  # no permission, quota, engine unreachable: event history instead
        if not best_effort(exc):
            raise
        found["trail"].update(status="failed", error=error_code(exc), message=str(exc)[:400])
        run.journal.note("failed", found["principal"], step="start_trail_query", error=error_code(exc))
        return False
    found["trail"].update(status="started", queryExecutionId=execution)
    found["status"] = "started"
    run.journal.note("started", found["principal"], step="start_trail_query", queryExecutionId=execution,
                     namedQuery=query["name"])
    return True


def capture_all(incident: dict[str, Any], *, cloudtrail: Callable[[str], Any], bucket: Callable[[], Any],
                role_arn: Callable[[str], str | None], dry_run: bool | None = None,
                monotonic: Callable[[], float] = time.monotonic, budget: float = BUDGET_SECONDS,
                trail: Trail | None = None) -> dict[str, Any]:
    """Capture every identity's recent activity. Adapters are built lazily by the callables
    (`cloudtrail(region)`, `bucket()`, `role_arn(name)`, `trail.engine()`), so a failure to reach an account
    fails only the capture. With a `trail`, each principal's query is started and its capture left ``started``
    for `complete_trail`. Returns ``{"status", "captures": [...], "entries": [...]}``; never raises an AWS
    error."""
    dry_run = bool(incident.get("dryRun")) if dry_run is None else dry_run
    run = _Capture(incident, cloudtrail=cloudtrail, bucket=bucket, role_arn=role_arn, dry_run=dry_run,
                   monotonic=monotonic, budget=budget)
    span = incident.get("window") or window(incident["cutoff"])
    captures = []
    for identity in incident.get("identities") or []:
        found: dict[str, Any] = {"principal": principal_label(identity), "type": identity.get("type"),
                                 "name": identity.get("name"), "window": span,
                                 "athenaQuery": athena_query(identity, incident, span)}
        captures.append(found)
        if trail is not None and _start_trail(run, trail, identity, found):
            continue
        run.lookup(identity, found)
    return run.result(captures, span)


def complete_trail(incident: dict[str, Any], scope: dict[str, Any], *, trail: Trail | None,
                   cloudtrail: Callable[[str], Any], bucket: Callable[[], Any],
                   role_arn: Callable[[str], str | None], monotonic: Callable[[], float] = time.monotonic,
                   budget: float = TRAIL_SECONDS,
                   time_left: Callable[[], float] | None = None) -> dict[str, Any]:
    """After containment: wait for the started trail queries (all of them within `budget`), store each one's
    events like a LookupEvents capture, fall back to event history for any that failed or did not finish (within
    `BUDGET_SECONDS`, or what `time_left()` still allows). Returns the scope with the captures completed and the
    new journal entries appended."""
    started = [c for c in scope.get("captures") or [] if c.get("status") == "started"]
    if not started or trail is None:
        return scope
    run = _Capture(incident, cloudtrail=cloudtrail, bucket=bucket, role_arn=role_arn, dry_run=False,
                   monotonic=monotonic, budget=budget)
    identities = {principal_label(i): i for i in incident.get("identities") or []}
    for found in started:
        identity, about = identities[found["principal"]], found["trail"]
        try:
            engine = run.adapter("athena", trail.engine)
            with run.journal.step("capture_trail", found["principal"]):
                waited = engine.wait(about["queryExecutionId"], deadline=run.deadline)
                about.update({k: v for k, v in waited.items() if v is not None})
                if waited["state"] != "SUCCEEDED":
                    about["status"] = "timed_out" if waited["state"] == "TIMED_OUT" else "failed"
                else:
                    got = engine.rows(about["queryExecutionId"], max_rows=trail_query.MAX_ROWS,
                                      deadline=run.deadline)
                    events = [trail_query.event_from_row(r) for r in got["rows"]]
                    query = {k: about.get(k) for k in ("queryExecutionId", "namedQuery", "workgroup", "database",
                                                       "table", "eventDataStore", "statement", "parameters")
                             if k in about}
                    body = _event_document(incident, identity, found["window"], events, source=trail.kind,
                                           query=query, truncated=got["truncated"])
                    key = object_key(incident["incidentId"], identity)
                    found.update(run.bucket().put_evidence(run.journal, key, body), events=len(events),
                                 truncated=got["truncated"], source=trail.kind, status="captured")
                    about.update(status="captured", rows=len(events), pages=got["pages"])
            if found["status"] != "captured" and about.get("status") not in ("timed_out", "failed"):
                about["status"] = "failed"
                about["error"] = run.journal.failures[-1].get("error") if run.journal.failures else "unknown"
        except Exception as exc:  # the engine failed: event history instead (a bug is raised)
            if not best_effort(exc):
                raise
            about.update(status="failed", error=error_code(exc))
    # the fallback's own budget, as a capture without a trail has, within what the task still has
    run.deadline = monotonic() + max(0.0, min(BUDGET_SECONDS, time_left() if time_left else BUDGET_SECONDS))
    for found in started:
        if found["status"] != "captured":
            found["status"] = "fallback"
            run.lookup(identities[found["principal"]], found)
    entries = list(scope.get("entries") or []) + [dict(e, task="scope") for e in run.journal.entries]
    captures = scope["captures"]
    return {**scope, "status": _status(captures), "captures": captures, "entries": entries}


def request_token(*parts: str) -> str:
    """Athena's ClientRequestToken for one principal's query of one incident and window: a retried task gets the
    query it already started instead of a second one."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
