"""Task Triage: validate and normalize the input into one incident (see responder.triage)."""
from aws_lambda_powertools import Logger

from responder.settings import settings
from responder.triage import normalize

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident = normalize(event.get("input"), execution_name=event.get("executionName") or "")
    if settings().observe_only:
        incident["dryRun"] = True
        incident["observeOnly"] = True
    incident["executionId"] = event.get("executionId", "")
    logger.info("triaged", extra={"incident": incident["incidentId"], "disposition": incident["disposition"]})
    return incident
