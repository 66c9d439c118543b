"""Task ContainIdentities: quarantine IAM users, revoke role sessions, record manual steps for the rest.

Returns ``{"status", "identities": [TargetSummary], "scope": {"captures", "failed"}}`` (responder.shapes): the
journal goes to the incident record as it happens, each identity's result into the record's ``results`` and the
CloudTrail captures into its ``scope``."""
from responder.logs import Logger

from responder.aws.athena import Athena
from responder.aws.clients import client, forensics_client, member_client
from responder.aws.cloudtrail import CloudTrail
from responder.aws.lake import Lake
from responder.aws.iam import Iam
from responder.aws.s3 import EvidenceObjects
from responder.identity import contain_all
from responder.journal import Journal
from responder import scope as scopes
from responder.scope import Trail, capture_all, complete_trail, summarize
from responder.settings import settings
from responder.tasks import TaskJournal, identity_summary

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident = event["incident"]
    config = settings()
    journals = TaskJournal(incident, task="identity")

    def member(service, region=incident["region"]):
        return member_client(service, account=incident["accountId"], region=region,
                             partition=incident["partition"], label=incident["incidentId"], settings=config)

    def iam_for(journal):
        return Iam(member("iam"), journals.watch(journal))

    # Scope before touching (runbook step 2): capture recent CloudTrail activity, or start the principal's query on
    # the organization trail (collected after containment); a failure never blocks containment.
    trail = None
    if config.trail_database and config.trail_table and config.trail_workgroup:
        trail = Trail(database=config.trail_database, table=config.trail_table, workgroup=config.trail_workgroup,
                      date_partition=config.trail_date_partition,
                      engine=lambda: Athena(client("athena"), workgroup=config.trail_workgroup,  # the stack's Region
                                            database=config.trail_database))
    elif config.trail_event_data_store:
        trail = Trail(event_data_store=config.trail_event_data_store,
                      engine=lambda: Lake(client("cloudtrail"), event_data_store=config.trail_event_data_store))
    sources = dict(
        cloudtrail=lambda region: CloudTrail(member("cloudtrail", region)),
        bucket=lambda: EvidenceObjects(forensics_client("s3", region=None, label=incident["incidentId"],
                                                       settings=config), config.evidence_bucket),
        role_arn=lambda name: (Iam(member("iam"), Journal()).get_role(name) or {}).get("Arn"))
    scope = capture_all(incident, trail=trail, **sources)
    with journals.recorded_on_failure(first=scope.get("entries") or []):
        result = contain_all(incident, iam_for=iam_for, settings=config,
                             cloudtrail_for=lambda region: CloudTrail(member("cloudtrail", region)))
    first = len(scope.get("entries") or [])
    seconds_left = lambda: context.get_remaining_time_in_millis() / 1000 - 15  # noqa: E731 - record + return
    scope = complete_trail(incident, scope, trail=trail, **sources, time_left=seconds_left,
                           budget=max(0.0, min(scopes.TRAIL_SECONDS, seconds_left() - 10)))
    captures = summarize(scope["captures"])
    identities = result["identities"]
    entries = list(scope.get("entries") or [])[:first] + [dict(e, subject=t.get("target")) for t in identities
                                                           for e in t.get("entries") or []]
    entries += list(scope.get("entries") or [])[first:]
    summaries = [identity_summary(t) for t in identities]
    recorded = journals.record(entries, fields={"scope": captures},
                               results={f"identity:{t.get('target')}": t for t in identities})
    if not recorded:
        for s in summaries:
            s["recorded"] = False
    logger.info("identities", extra={"incident": incident["incidentId"], "status": result["status"]})
    return {"status": result["status"], "identities": summaries,
            "scope": {"captures": len(captures), "failed": sum(1 for c in captures if c.get("status") == "failed")}}

