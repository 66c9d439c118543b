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

Window: from the finding's first sighting (``service.eventFirstSeen``) or 24 h before the cut-off, whichever is
earlier, to the incident's cut-off; at most `MAX_WINDOW_DAYS` days. A capture that fails (no permission, throttled
after retries, bucket unreachable) is recorded as ``failed`` and **never blocks containment**. In a dry run nothing
is looked up or written: the plan lists the ``s3:PutObject`` that would store each capture.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from responder.errors import best_effort, error_code
from responder.journal import Journal

ATHENA_TABLE = "cloudtrail_logs"
WINDOW_HOURS = 24
MAX_WINDOW_DAYS = 7
MAX_PAGES = 5
BUDGET_SECONDS = 20.0
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


def summarize(captures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The captures as the incident record, the execution output and the notification show them."""
    return [{k: v for k, v in c.items() if v is not None} for c in captures]


# -- capture -----------------------------------------------------------------------------------------------
def capture_all(incident: dict[str, Any], *, cloudtrail: Callable[[str], Any], bucket: Callable[[], Any],
                role_arn: Callable[[str], str | None], dry_run: bool | None = None,
                monotonic: Callable[[], float] = time.monotonic, budget: float = BUDGET_SECONDS) -> dict[str, Any]:
    """Capture every identity's recent activity. Adapters are built lazily by the callables
    (`cloudtrail(region)`, `bucket()`, `role_arn(name)`), so a failure to reach an account fails only the
    capture. Returns
    ``{"status", "captures": [...], "entries": [...]}``; never raises an AWS error."""
    dry_run = bool(incident.get("dryRun")) if dry_run is None else dry_run
    journal = Journal(dry_run=dry_run)
    span = incident.get("window") or window(incident["cutoff"])
    deadline = monotonic() + budget
    adapters: dict[str, Any] = {}

    def adapter(name: str, make: Callable[[], Any]) -> Any:
        if name not in adapters:
            adapters[name] = make()
        return adapters[name]

    captures = []
    for identity in incident.get("identities") or []:
        target = principal_label(identity)
        found: dict[str, Any] = {"principal": target, "type": identity.get("type"), "name": identity.get("name"),
                                 "window": span, "athenaQuery": athena_query(identity, incident, span)}
        captures.append(found)
        try:
            arn = None
            if identity.get("type") == "AssumedRole" and identity.get("name") and not identity.get("accessKeyId"):
                arn = (f"arn:{incident.get('partition') or 'aws'}:iam::{incident.get('accountId')}:role/"
                       f"{identity['name']}") if dry_run else role_arn(identity["name"])
            lookup = lookup_for(identity, arn)
            if lookup is None:
                found["status"] = "skipped"
                found["detail"] = ("no such role" if identity.get("type") == "AssumedRole"
                                   else "no CloudTrail lookup attribute for this identity")
                journal.note("skipped", target, detail=found["detail"])
                continue
            found["lookup"] = {"AttributeKey": lookup[0], "AttributeValue": lookup[1]}
            store = adapter("bucket", bucket)
            key = object_key(incident["incidentId"], identity)
            if dry_run:
                found.update(store.put_evidence(journal, key, b""), status="planned")
                continue
            if monotonic() > deadline:
                found["status"] = "skipped"
                found["detail"] = f"scope time budget ({budget:.0f} s) spent: use the Athena query"
                journal.note("skipped", target, detail=found["detail"])
                continue
            with journal.step("capture_cloudtrail", target):
                events, regions = [], {}
                for region in lookup_regions(incident):
                    got = adapter(f"cloudtrail:{region}", lambda r=region: cloudtrail(r)).lookup(
                        lookup[0], lookup[1], start=_parse(span["start"]), end=_parse(span["end"]),
                        max_pages=MAX_PAGES, deadline=deadline)
                    events += got["events"]
                    regions[region] = {"events": len(got["events"]), "pages": got["pages"],
                                       "truncated": got["truncated"]}
                events.sort(key=lambda e: str(e.get("EventTime") or ""), reverse=True)
                truncated = any(r["truncated"] for r in regions.values())
                document = {"incidentId": incident["incidentId"], "accountId": incident.get("accountId"),
                            "principal": identity, "lookup": found["lookup"], "window": span, "regions": regions,
                            "truncated": truncated, "events": events}
                body = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()
                found.update(store.put_evidence(journal, key, body), events=len(events), regions=regions,
                             truncated=truncated, status="captured")
            if found.get("status") != "captured":
                found["status"] = "failed"
                found["error"] = (journal.failures[-1].get("error") if journal.failures else "unknown")
        except Exception as exc:  # reaching an account failed: record, go on (a bug is raised)
            if not best_effort(exc):
                raise
            found["status"] = "failed"
            found["error"] = error_code(exc)
            journal.note("failed", target, step="capture_cloudtrail", error=error_code(exc), message=str(exc)[:400])
    statuses = {c["status"] for c in captures}
    status = ("failed" if "failed" in statuses else "planned" if "planned" in statuses
              else "captured" if "captured" in statuses else "skipped" if captures else "nothing_to_do")
    entries = [dict(e, task="scope") for e in journal.entries]
    return {"status": status, "window": span, "captures": captures, "entries": entries}
