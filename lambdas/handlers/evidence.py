"""Task CollectEvidence: advance the evidence chain of one instance (see responder.evidence). Called in a loop by
the state machine until it returns ``done``; ``waitSeconds`` is how long Step Functions waits before the next call."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import forensics_client, member_client
from responder.aws.ebs import EbsBlocks
from responder.aws.snapshots import Snapshots, key_arn
from responder.evidence import Adapters, collect
from responder.journal import Journal
from responder.settings import settings

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident = event["incident"]
    config = settings()
    journal = Journal(dry_run=bool(incident.get("dryRun")))
    where = {"region": incident["region"], "label": incident["incidentId"], "settings": config}
    in_member = dict(where, account=incident["accountId"], partition=incident["partition"])
    forensics_account = config.forensics_account or incident["accountId"]

    adapters = Adapters(
        member=lambda: Snapshots(member_client("ec2", **in_member), journal, account=incident["accountId"],
                                 region=incident["region"], partition=incident["partition"]),
        forensics=lambda: Snapshots(forensics_client("ec2", **where), journal, account=forensics_account,
                                    region=incident["region"], partition=incident["partition"]),
        member_blocks=lambda: EbsBlocks(member_client("ebs", **in_member)),
        forensics_blocks=lambda: EbsBlocks(forensics_client("ebs", **where)),
        sharing_key=lambda: key_arn(member_client("kms", **in_member), config.sharing_key_alias),
    )
    result = collect(event, adapters=adapters, settings=config, journal=journal,
                     remaining_ms=context.get_remaining_time_in_millis)
    # the timeline entries carry forward from phase to phase: append only those not yet in the incident record
    result["recordedEntries"] = int((event.get("evidence") or {}).get("recordedEntries") or 0)
    records.append_result(incident, result, task="evidence")
    logger.info("evidence", extra={"incident": incident["incidentId"], "instance": event["instanceId"],
                                   "status": result["status"], "phase": result["phase"],
                                   "waitSeconds": result["waitSeconds"]})
    return result
