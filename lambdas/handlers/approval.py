"""Task AwaitApproval (``lambda:invoke.waitForTaskToken``): store the task token in the incident record and notify
how to approve or deny (responder.approval). Returns at once; the state waits for the answer or its deadline."""
from datetime import datetime, timezone

from responder.logs import Logger

from responder import approval, records
from responder.aws.clients import Clients
from responder.aws.dynamodb import incident_table
from responder.aws.sns import Topic
from responder.errors import IncidentRecordError
from responder.settings import settings

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident, token = event["incident"], event["taskToken"]
    config = settings()
    aws = Clients(config, incident)
    if not config.incident_table:
        raise IncidentRecordError("IR_INCIDENT_TABLE is not configured: the approval cannot be requested")
    pending = approval.request(incident, token=token, execution_id=event.get("executionId") or "",
                               now=datetime.now(timezone.utc), entered_at=event.get("enteredAt"))
    table = incident_table(aws, config.incident_table)
    records.request_approval(table, incident["incidentId"], pending)
    message_id = None
    if config.topic_arn:
        subject, text, attributes = approval.notification(incident, pending)
        message_id = records.aws_call("notify the approvers",
                                      lambda: Topic(aws.own("sns"), config.topic_arn).publish(subject, text, attributes))
    logger.info("approval requested", extra={"incident": incident["incidentId"], "deadline": pending["deadline"]})
    return {"requested": True, "deadline": pending["deadline"], "messageId": message_id}
