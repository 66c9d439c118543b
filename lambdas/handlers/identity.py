"""Task ContainIdentities: quarantine IAM users, revoke role sessions, record manual steps for the rest."""
from aws_lambda_powertools import Logger

from responder.aws.clients import member_client
from responder.aws.iam import Iam
from responder.identity import contain_all
from responder.settings import settings

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident = event["incident"]
    config = settings()

    def iam_for(journal):
        client = member_client("iam", account=incident["accountId"], region=incident["region"],
                               partition=incident["partition"], label=incident["incidentId"], settings=config)
        return Iam(client, journal)

    result = contain_all(incident, iam_for=iam_for, settings=config)
    logger.info("identities", extra={"incident": incident["incidentId"], "status": result["status"]})
    return result
