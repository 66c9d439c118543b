"""Task Triage: validate and normalize the input, then claim the incident before anything changes: one response
per finding, a pinned cut-off, and the record "in progress" (responder.triage.triage)."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import Clients
from responder.aws.dynamodb import incident_table
from responder.aws.stepfunctions import Executions
from responder.settings import settings
from responder.triage import triage

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    config = settings()
    aws = Clients(config)
    execution_id = event.get("executionId", "")

    def status(arn: str) -> str:  # a Step Functions client only when an earlier execution must be checked
        return records.execution_status(Executions(aws.own("stepfunctions")))(arn)

    def claim(incident: dict) -> dict:
        return records.claim(incident_table(aws, config.incident_table), incident, execution_id=execution_id,
                             execution_status=status)

    incident = triage(event.get("input"), execution_name=event.get("executionName") or "",
                      execution_id=execution_id, settings=config, claim=claim)
    logger.info("triaged", extra={"incident": incident["incidentId"], "disposition": incident["disposition"],
                                  "trigger": incident["record"]["trigger"]})
    return incident
