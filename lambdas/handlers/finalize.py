"""Task Finalize: decide the outcome, write the evidence manifest and the incident record, notify.
Never undoes anything (responder.finalize)."""
from responder.logs import Logger

from responder.aws.clients import Clients, forensics_client, signer_client
from responder.aws.dynamodb import incident_table
from responder.aws.kms import CustodyKey
from responder.aws.s3 import EvidenceObjects
from responder.aws.sns import Topic
from responder.aws.stepfunctions import Executions
from responder.finalize import finalize
from responder.settings import settings

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    config = settings()
    aws = Clients(config, forensics=forensics_client, signer=signer_client)
    summary = finalize(
        event["state"], execution_id=event.get("executionId", ""), table_name=config.incident_table,
        table=(lambda: incident_table(aws, config.incident_table)) if config.incident_table else None,
        bucket=(lambda incident_id: EvidenceObjects(aws.forensics("s3", label=incident_id), config.evidence_bucket))
        if config.evidence_bucket and config.forensics_role_arn else None,
        topic=(lambda: Topic(aws.own("sns"), config.topic_arn)) if config.topic_arn else None,
        execution_input=(lambda: Executions(aws.own("stepfunctions")).input(event["executionId"]))
        if event.get("executionId") else None,
        signer=(lambda incident_id: CustodyKey(aws.signer("kms", label=incident_id), config.custody_key_arn))
        if config.custody_key_arn and config.custody_signer_role_arn else None,
    )
    logger.info("finalized", extra={"incident": summary.get("incidentId"), "outcome": summary["outcome"],
                                    "recordingErrors": summary.get("recordingErrors")})
    return summary
