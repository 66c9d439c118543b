"""Task ContainIdentities: quarantine IAM users, revoke role sessions, record manual steps for the rest; then
contain what the attacker minted (responder.pivots) and list what to rotate (responder.rotation), from the
principal's events (event history or the trail query: responder.scope).

Returns ``{"status", "identities": [TargetSummary], "scope": {"captures", "failed"}, "pivots": {"count",
"statuses", "items"}, "rotation": {"count", "items"}}`` (responder.shapes; at most 3 items each): the journal goes
to the incident record as it happens, each identity's result into the record's ``results``, the CloudTrail
captures into its ``scope``, the full lists into ``pivots`` and ``rotation``."""
from responder.logs import Logger

from responder.aws.athena import Athena
from responder.aws.clients import Clients, forensics_client, member_client
from responder.aws.cloudtrail import CloudTrail
from responder.aws.dynamodb import incident_table
from responder.aws.iam import Iam
from responder.aws.lake import Lake
from responder.aws.kms import KeyGrants
from responder.aws.s3 import EvidenceObjects
from responder.identity import Trail as IdentityTrail, contain_all
from responder.journal import Journal
from responder import pivots, scope as scopes
from responder.rotation import summary as rotation_summary
from responder.scope import Trail, capture_all, complete_trail, summarize
from responder.settings import settings
from responder.tasks import TaskJournal, identity_summary

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident = event["incident"]
    config = settings()
    aws = Clients(config, incident, member=member_client, forensics=forensics_client)
    journals = TaskJournal(incident, task="identity", table=lambda: incident_table(aws, config.incident_table))

    def iam_for(journal):
        return Iam(aws.member("iam"), journals.watch(journal))

    # Scope before touching (runbook step 2): capture recent CloudTrail activity, or start the principal's query on
    # the organization trail (collected after containment); a failure never blocks containment.
    trail = None
    if config.trail_database and config.trail_table and config.trail_workgroup:
        trail = Trail(database=config.trail_database, table=config.trail_table, workgroup=config.trail_workgroup,
                      date_partition=config.trail_date_partition,
                      engine=lambda: Athena(aws.own("athena"), workgroup=config.trail_workgroup,  # the stack's Region
                                            database=config.trail_database))
    elif config.trail_event_data_store:
        trail = Trail(event_data_store=config.trail_event_data_store,
                      engine=lambda: Lake(aws.own("cloudtrail"), event_data_store=config.trail_event_data_store))
    sources = dict(
        cloudtrail=lambda region: CloudTrail(aws.member("cloudtrail", region)),
        bucket=lambda: EvidenceObjects(aws.forensics("s3"), config.evidence_bucket),
        role_arn=lambda name: (Iam(aws.member("iam"), Journal()).get_role(name) or {}).get("Arn"))
    scope = capture_all(incident, trail=trail, **sources)
    with journals.recorded_on_failure(first=scope.get("entries") or []):
        result = contain_all(incident, iam_for=iam_for, settings=config,
                             cloudtrail_for=lambda region: CloudTrail(aws.member("cloudtrail", region)))
    first = len(scope.get("entries") or [])
    seconds_left = lambda: context.get_remaining_time_in_millis() / 1000 - 15  # noqa: E731 - record + return
    scope = complete_trail(incident, scope, trail=trail, **sources, time_left=seconds_left,
                           budget=max(0.0, min(scopes.TRAIL_SECONDS, seconds_left() - 10)))
    captures = summarize(scope["captures"])
    identities = result["identities"]

    def cloudtrail_for(region):
        return CloudTrail(aws.member("cloudtrail", region))

    # what the attacker minted, from the same events (after its principal is contained: it cannot mint more)
    with journals.recorded_on_failure(first=scope.get("entries") or []):
        followed = pivots.run(incident, captured=scope.get("events") or {}, identities=identities, iam_for=iam_for,
                              kms_for=lambda region, journal: KeyGrants(aws.member("kms", region), journals.watch(journal)),
                              settings=config, trail=IdentityTrail(cloudtrail_for, incident),
                              cloudtrail_for=cloudtrail_for, time_left=seconds_left)
    entries = list(scope.get("entries") or [])[:first] + [dict(e, subject=t.get("target")) for t in identities
                                                           for e in t.get("entries") or []]
    entries += list(scope.get("entries") or [])[first:]
    entries += [dict(e, subject=p["target"], pivot=p["eventId"]) for p in followed["pivots"]
                for e in p.get("entries") or []]
    summaries = [identity_summary(t) for t in identities]
    rotation = followed["rotation"]
    recorded = journals.record(entries, fields={"scope": captures, "pivots": pivots.record_form(followed["pivots"]),
                                                "rotation": rotation["items"],
                                                "attackerPlan": {"principals": followed["plans"],
                                                                 "rotationIncomplete": rotation["incomplete"]}},
                               results={f"identity:{t.get('target')}": t for t in identities})
    if not recorded:
        for s in summaries:
            s["recorded"] = False
    logger.info("identities", extra={"incident": incident["incidentId"], "status": result["status"]})
    return {"status": result["status"], "identities": summaries,
            "scope": {"captures": len(captures), "failed": sum(1 for c in captures if c.get("status") == "failed")},
            "pivots": pivots.summary(followed["pivots"]), "rotation": rotation_summary(rotation)}

