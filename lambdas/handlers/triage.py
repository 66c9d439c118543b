"""Task Triage: validate and normalize the input, then claim the incident before anything changes: one response
per finding, a pinned cut-off, and the record "in progress" (responder.triage.triage)."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import client
from responder.aws.dynamodb import IncidentTable
from responder.aws.stepfunctions import Executions
from responder.settings import settings
from responder.triage import triage

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    config = settings()
    execution_id = event.get("executionId", "")

    def claim(incident: dict) -> dict:
        return records.claim(IncidentTable(client("dynamodb"), config.incident_table), incident,
                             execution_id=execution_id,
                             execution_status=records.execution_status(Executions(client("stepfunctions"))))

    incident = triage(event.get("input"), execution_name=event.get("executionName") or "",
                      execution_id=execution_id, settings=config, claim=claim)
    logger.info("triaged", extra={"incident": incident["incidentId"], "disposition": incident["disposition"],
                                  "trigger": incident["record"]["trigger"]})
    return incident
