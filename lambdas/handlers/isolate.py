"""Task IsolateInstance: capture metadata, protect, detach, isolate the network, swap credentials, deregister, tag."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import forensics_client, member_client
from responder.isolation import Adapters, isolate
from responder.settings import settings

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident, instance_id = event["incident"], event["instanceId"]
    config = settings()

    def member(service: str):
        return member_client(service, account=incident["accountId"], region=incident["region"],
                             partition=incident["partition"], label=incident["incidentId"], settings=config)

    def forensics(service: str):
        # the evidence bucket lives in the responder's region (region None: the function's own region)
        return forensics_client(service, region=None, label=incident["incidentId"], settings=config)

    def adapters_for(journal):
        return Adapters(journal, member, config, forensics=forensics if config.forensics_role_arn else None)

    result = isolate(instance_id, incident, adapters_for=adapters_for, settings=config,
                     time_left=lambda: context.get_remaining_time_in_millis() / 1000 - 20)  # 20 s: record + return
    records.append_result(incident, result, task="isolation")  # the incident's timeline, as it happens
    logger.info("isolation", extra={"incident": incident["incidentId"], "instance": instance_id,
                                    "status": result["status"], "steps": result.get("steps")})
    return result
