"""Task Triage: validate and normalize the input (responder.triage), then claim the incident (responder.records)
before anything changes: one response per finding, a pinned cut-off, and the record "in progress"."""
from responder.logs import Logger

from responder import levels, records
from responder.aws.clients import client
from responder.aws.dynamodb import IncidentTable
from responder.aws.stepfunctions import Executions
from responder.scope import first_seen, window
from responder.settings import settings
from responder.triage import normalize

logger = Logger()


def containment(incident: dict, config) -> dict:
    """The incident's containment level (responder.levels); an unusable policy fails closed (approval)."""
    if config.containment_levels_error:
        return levels.fail_closed(config.containment_levels_error)
    policy = config.containment_levels or levels.parse(None)
    return levels.decide(policy, incident, requested=incident.pop("requestedLevel", None))


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    raw = event.get("input")
    config = settings()
    incident = normalize(raw, execution_name=event.get("executionName") or "", regions=config.regions or None)
    if incident.get("disposition") == "respond":
        incident["containment"] = containment(incident, config)
    if config.observe_only or incident.get("containment", {}).get("level") == "observe":
        incident["dryRun"] = True
        incident["observeOnly"] = True
    if config.protection_config_error:  # fail closed: every target ends protection_unverified; say why
        incident["protectionConfigError"] = config.protection_config_error
    execution_id = event.get("executionId", "")
    incident["executionId"] = execution_id
    if not config.incident_table:
        raise records.IncidentRecordError("IR_INCIDENT_TABLE is not configured: the incident cannot be claimed")
    incident.update(records.claim(
        IncidentTable(client("dynamodb"), config.incident_table), incident, execution_id=execution_id,
        execution_status=records.execution_status(Executions(client("stepfunctions"))),
    ))
    incident["window"] = window(incident["cutoff"], first_seen(raw))
    logger.info("triaged", extra={"incident": incident["incidentId"], "disposition": incident["disposition"],
                                  "trigger": incident["record"]["trigger"]})
    return incident
