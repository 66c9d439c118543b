"""Task ContainIdentities: quarantine IAM users, revoke role sessions, record manual steps for the rest."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import forensics_client, member_client
from responder.aws.cloudtrail import CloudTrail
from responder.aws.iam import Iam
from responder.aws.s3 import EvidenceObjects
from responder.identity import contain_all
from responder.journal import Journal
from responder.scope import capture_all, summarize
from responder.settings import settings

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident = event["incident"]
    config = settings()

    def member(service, region=incident["region"]):
        return member_client(service, account=incident["accountId"], region=region,
                             partition=incident["partition"], label=incident["incidentId"], settings=config)

    def iam_for(journal):
        return Iam(member("iam"), journal)

    # Scope before touching (runbook step 2): capture recent CloudTrail activity; a failure never blocks containment.
    scope = capture_all(
        incident, cloudtrail=lambda region: CloudTrail(member("cloudtrail", region)),
        bucket=lambda: EvidenceObjects(forensics_client("s3", region=None, label=incident["incidentId"],
                                                       settings=config), config.evidence_bucket),
        role_arn=lambda name: (Iam(member("iam"), Journal()).get_role(name) or {}).get("Arn"))
    result = contain_all(incident, iam_for=iam_for, settings=config,
                         cloudtrail_for=lambda region: CloudTrail(member("cloudtrail", region)))
    result["scope"] = scope
    records.append_result(incident, result, task="identity", entries=records.identity_entries(result),
                          fields={"scope": summarize(scope["captures"])})
    logger.info("identities", extra={"incident": incident["incidentId"], "status": result["status"]})
    return result
