"""Task Triage: validate and normalize the input, then claim the incident before anything changes: one response
per finding, a pinned cut-off, and the record "in progress" (responder.triage.triage)."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import Clients, member_read_client
from responder.aws.dynamodb import incident_table
from responder.aws.stepfunctions import Executions
from responder.settings import settings
from responder.signals_groups import reader
from responder.triage import triage

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    config = settings()
    # member: the read-only twin of the member role (an attack sequence's Auto Scaling groups; Describe calls only)
    aws = Clients(config, member=member_read_client)
    execution_id = event.get("executionId", "")

    def status(arn: str) -> str:  # a Step Functions client only when an earlier execution must be checked
        return records.execution_status(Executions(aws.own("stepfunctions")))(arn)

    def claim(incident: dict) -> dict:
        return records.claim(incident_table(aws, config.incident_table), incident, execution_id=execution_id,
                             execution_status=status)

    incident = triage(event.get("input"), execution_name=event.get("executionName") or "",
                      execution_id=execution_id, settings=config, claim=claim,
                      groups=lambda incident: _group_reader(aws.of(incident)),
                      lookup=lambda incident_id: records.aws_call(
                          "read incident record", lambda: incident_table(aws, config.incident_table).get(incident_id)))
    logger.info("triaged", extra={"incident": incident["incidentId"], "disposition": incident["disposition"],
                                  "trigger": incident["record"]["trigger"]})
    return incident


def _group_reader(aws: Clients):
    """The reader of an attack sequence's Auto Scaling groups in the incident's account (responder.signals_groups);
    the adapters are imported here, only for such sequences: the usual cold start stays lean."""
    from responder.aws.autoscaling import AutoScaling
    from responder.aws.ec2 import Ec2
    from responder.journal import Journal

    return reader(lambda: AutoScaling(aws.member("autoscaling"), Journal()), lambda: Ec2(aws.member("ec2"), Journal()))
