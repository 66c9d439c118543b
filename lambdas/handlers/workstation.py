"""Task AnalyzeEvidence: open an incident's forensics copies on a forensic workstation (responder.workstation).
Called in a loop by the state machine until it returns ``done``; ``waitSeconds`` is how long Step Functions waits.

Returns ``{"done", "waitSeconds", "summary", "state"}``: the journal goes to the incident record as it happens, the
full result into the record's ``results`` (``analysis:<execution name>``)."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import Clients, forensics_client, member_client
from responder.aws.dynamodb import incident_table
from responder.aws.ec2 import Ec2
from responder.aws.workstation import Workstations
from responder.journal import Journal
from responder.settings import settings
from responder.tasks import TaskJournal
from responder.workstation import analyze, summary

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident = event["incident"]
    config = settings()
    aws = Clients(config, incident, member=member_client, forensics=forensics_client)
    table = (lambda: incident_table(aws, config.incident_table))
    journals = TaskJournal(incident, task="analysis", subject=incident["incidentId"], table=table)
    journal = journals.watch(Journal(dry_run=bool(incident.get("dryRun"))))
    forensics_account = config.forensics_account or incident["accountId"]
    # The copies, the workstation and its volumes are in the forensics Region (README "Every region"); live
    # response acts on the member's quarantine groups in the incident's own Region.
    region, partition = aws.forensics_region or incident["region"], incident["partition"]
    with journals.recorded_on_failure():
        state = analyze(event, forensics=Workstations(aws.forensics("ec2", region), journal, account=forensics_account,
                                                      region=region, partition=partition),
                        member=lambda: Ec2(aws.member("ec2"), journal),
                        record=lambda: records.aws_call("read the incident record",
                                                        lambda: table().get(incident["incidentId"])),
                        journal=journal, forensics_account=forensics_account)
    entries = state.pop("entries", None) or []
    short = summary(state)
    key = f"analysis:{records.execution_name(incident.get('executionId'))}"
    if not journals.record(entries, results={key: state}):
        short["recorded"] = False
    logger.info("analysis", extra={"incident": incident["incidentId"], "status": state["status"],
                                   "waitSeconds": state["waitSeconds"]})
    return {"done": bool(state["done"]), "waitSeconds": int(state.get("waitSeconds") or 0), "summary": short,
            "state": state}
