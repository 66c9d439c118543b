"""Task Triage: validate and normalize the input (responder.triage), then claim the incident (responder.records)
before anything changes: one response per finding, a pinned cut-off, and the record "in progress"."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import client, member_client
from responder.aws.dynamodb import IncidentTable
from responder.aws.stepfunctions import Executions
from responder.scope import first_seen, window
from responder.settings import settings
from responder.signals_groups import expand, reader
from responder.triage import MAX_TARGETS, normalize

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    raw = event.get("input")
    config = settings()
    incident = normalize(raw, execution_name=event.get("executionName") or "", regions=config.regions or None)
    if config.observe_only:
        incident["dryRun"] = True
        incident["observeOnly"] = True
    if config.protection_config_error:  # fail closed: every target ends protection_unverified; say why
        incident["protectionConfigError"] = config.protection_config_error
    if incident.get("autoScalingGroups"):  # an attack sequence's groups: their instances as Auto Scaling has them
        incident = expand(incident, _group_reader(incident, config), MAX_TARGETS)
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


def _group_reader(incident: dict, config):
    # only for attack sequences: the usual cold start stays lean
    from responder.aws.autoscaling import AutoScaling
    from responder.aws.ec2 import Ec2
    from responder.journal import Journal

    def member(service: str):
        return member_client(service, account=incident["accountId"], region=incident["region"],
                             partition=incident["partition"], label=incident["incidentId"], settings=config)

    return reader(lambda: AutoScaling(member("autoscaling"), Journal()), lambda: Ec2(member("ec2"), Journal()))
