"""Task CollectEvidence: advance the evidence chain of one instance (see responder.evidence). Called in a loop by
the state machine until it returns ``done``; ``waitSeconds`` is how long Step Functions waits before the next call.

Returns ``{"done", "waitSeconds", "summary": TargetSummary, "state": the chain's state for the next call}``
(responder.shapes); the journal goes to the incident record as it happens, the state into the record's ``results``."""
from responder.logs import Logger

from responder.adapters import Adapters
from responder.aws.clients import Clients, forensics_client, member_client
from responder.aws.dynamodb import incident_table
from responder.aws.ebs import EbsBlocks
from responder.aws.snapshots import Snapshots, key_arn
from responder.evidence import collect
from responder.journal import Journal
from responder.settings import settings
from responder.tasks import TaskJournal, evidence_summary

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident, instance_id = event["incident"], event["instanceId"]
    config = settings()
    aws = Clients(config, incident, member=member_client, forensics=forensics_client)
    journals = TaskJournal(incident, task="evidence", subject=instance_id,
                           table=lambda: incident_table(aws, config.incident_table))
    journal = journals.watch(Journal(dry_run=bool(incident.get("dryRun"))))
    region, partition = incident["region"], incident["partition"]
    forensics_account = config.forensics_account or incident["accountId"]
    # the forensics side acts in the forensics region (the source's region when none is set): a snapshot of another
    # region is copied there (CopySnapshot with SourceRegion, responder.evidence)
    forensics_region = aws.forensics_region or region

    adapters = Adapters(
        member=lambda: Snapshots(aws.member("ec2"), journal, account=incident["accountId"], region=region,
                                 partition=partition),
        forensics=lambda: Snapshots(aws.forensics("ec2", forensics_region), journal, account=forensics_account,
                                    region=forensics_region, partition=partition),
        member_blocks=lambda: EbsBlocks(aws.member("ebs")),
        forensics_blocks=lambda: EbsBlocks(aws.forensics("ebs", forensics_region)),
        sharing_key=lambda: key_arn(aws.member("kms"), config.sharing_key_alias),
    )
    previous = (event.get("evidence") or {}).get("state") or {}
    isolation = event.get("isolation") or {}
    task = {"incident": incident, "instanceId": instance_id, "evidence": dict(previous),
            "isolation": {"status": (isolation.get("summary") or {}).get("status"),
                          "metadata": {"volumes": isolation.get("volumes") or [], "tags": isolation.get("tags") or {}}}}
    with journals.recorded_on_failure():
        state = collect(task, adapters=adapters, settings=config, journal=journal,
                        remaining_ms=context.get_remaining_time_in_millis)
    entries = state.pop("entries", None) or []
    summary = evidence_summary(state, entries, changes_before=int(previous.get("changes") or 0))
    state["changes"] = summary["changes"]
    if not journals.record(entries, results={f"evidence:{instance_id}": state}):
        summary["recorded"] = False
    logger.info("evidence", extra={"incident": incident["incidentId"], "instance": instance_id,
                                   "status": state["status"], "phase": state["phase"],
                                   "waitSeconds": state["waitSeconds"]})
    return {"done": bool(state["done"]), "waitSeconds": int(state.get("waitSeconds") or 0), "summary": summary,
            "state": state}
