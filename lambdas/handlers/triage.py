"""Task Triage: validate and normalize the input, then claim the incident before anything changes: one response
per finding, a pinned cut-off, and the record "in progress" (responder.triage.triage)."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import client, member_client
from responder.aws.dynamodb import IncidentTable
from responder.aws.stepfunctions import Executions
from responder.settings import settings
from responder.signals_groups import reader
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
                      execution_id=execution_id, settings=config, claim=claim,
                      groups=lambda incident: _group_reader(incident, config))
    logger.info("triaged", extra={"incident": incident["incidentId"], "disposition": incident["disposition"],
                                  "trigger": incident["record"]["trigger"]})
    return incident


def _group_reader(incident: dict, config):
    """The reader of an attack sequence's Auto Scaling groups in the incident's account (responder.signals_groups);
    the adapters are imported here, only for such sequences: the usual cold start stays lean."""
    from responder.aws.autoscaling import AutoScaling
    from responder.aws.ec2 import Ec2
    from responder.journal import Journal

    def member(service: str):
        return member_client(service, account=incident["accountId"], region=incident["region"],
                             partition=incident["partition"], label=incident["incidentId"], settings=config)

    return reader(lambda: AutoScaling(member("autoscaling"), Journal()), lambda: Ec2(member("ec2"), Journal()))
