"""Task Finalize: decide the outcome, record the incident, notify. Never undoes anything."""
from aws_lambda_powertools import Logger

from responder.finalize import finalize

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    summary = finalize(event["state"], execution_id=event.get("executionId", ""))
    logger.info("finalized", extra={"incident": summary.get("incidentId"), "outcome": summary["outcome"]})
    return summary
